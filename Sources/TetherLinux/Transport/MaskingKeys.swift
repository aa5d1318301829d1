import Glibc
import NIOWebSocket

/// Masking keys for client frames (RFC 6455 §5.3: fresh, unpredictable, from a strong source
/// of entropy). They come from the kernel's random source like `.random()` would, but 128 at
/// a time: a system call per frame was a measurable share of the audio path's cost.
struct MaskingKeys {
    private var pool = PooledRandom()

    mutating func key() -> WebSocketMaskingKey { .random(using: &pool) }
}

/// Kernel randomness read 512 bytes at a time from /dev/urandom.
struct PooledRandom: RandomNumberGenerator {
    private var pool = [UInt64](repeating: 0, count: 64)
    private var index = 64

    mutating func next() -> UInt64 {
        if index == pool.count { refill() }
        defer { index += 1 }
        return pool[index]
    }

    private mutating func refill() {
        var filled = 0
        let fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC)
        if fd >= 0 {
            pool.withUnsafeMutableBytes { raw in
                while filled < raw.count {
                    let n = read(fd, raw.baseAddress! + filled, raw.count - filled)
                    if n > 0 { filled += n } else if n < 0 && errno == EINTR { continue } else { break }
                }
            }
            close(fd)
        }
        if filled < pool.count * 8 {
            // Without /dev/urandom (a very odd sandbox), fall back to the stdlib's source.
            var system = SystemRandomNumberGenerator()
            for i in 0..<pool.count { pool[i] = system.next() }
        }
        index = 0
    }
}
