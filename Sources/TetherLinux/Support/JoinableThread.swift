import Glibc
import Synchronization

/// A dedicated OS thread for a loop that blocks in system calls (poll, ALSA), kept off the
/// Swift concurrency pool so it can never starve it. Unlike Foundation's `Thread` it can
/// be joined, so `stop()` knows the loop is gone before it closes the loop's descriptors.
final class JoinableThread: Sendable {
    private final class Body {
        let name: String
        let run: @Sendable () -> Void
        init(name: String, _ run: @escaping @Sendable () -> Void) {
            self.name = name
            self.run = run
        }
    }

    private let handle: pthread_t
    private let joined = Mutex(false)

    /// Starts the thread at once. `name` shows in `top -H` and core dumps (15 bytes kept).
    init(name: String, _ body: @escaping @Sendable () -> Void) throws(ThreadStartError) {
        let context = Unmanaged.passRetained(Body(name: name, body)).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, { raw in
            guard let raw else { return nil }
            let body = Unmanaged<Body>.fromOpaque(raw).takeRetainedValue()
            JoinableThread.nameCurrentThread(body.name)
            body.run()
            return nil
        }, context)
        guard rc == 0 else {
            Unmanaged<Body>.fromOpaque(context).release()
            throw ThreadStartError(errno: rc)
        }
        handle = thread
    }

    /// Names the calling thread (shown by `top -H`, `ps -L` and in core dumps). Glibc's
    /// Swift module does not export pthread_setname_np, and prctl is variadic, so this goes
    /// through procfs; the kernel keeps the first 15 bytes.
    private static func nameCurrentThread(_ name: String) {
        let fd = open("/proc/thread-self/comm", O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        defer { close(fd) }
        let bytes = Array(name.utf8.prefix(15))
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    }

    /// Waits for the thread to end. Safe to call more than once and from several callers.
    func join() {
        joined.withLock { done in
            guard !done else { return }
            pthread_join(handle, nil)
            done = true
        }
    }

    /// Whether the caller is this thread (joining itself would deadlock).
    var isCurrent: Bool { pthread_equal(pthread_self(), handle) != 0 }
}

struct ThreadStartError: Error, CustomStringConvertible {
    var errno: Int32
    var description: String { "pthread_create failed: \(String(cString: strerror(errno)))" }
}
