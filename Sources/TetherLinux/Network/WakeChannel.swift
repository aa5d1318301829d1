import Glibc

/// Wakes a thread blocked in poll(2) from another thread: `stop()` writes a byte, the loop
/// sees its read end readable. A socketpair rather than eventfd because Glibc's Swift
/// module does not export eventfd; SOCK_CLOEXEC keeps it out of spawned children atomically.
final class WakeChannel: Sendable {
    let readDescriptor: Int32
    private let writeDescriptor: Int32

    init() throws(NetlinkSocketError) {
        var fds: [Int32] = [-1, -1]
        let type = Int32(SOCK_DGRAM.rawValue | SOCK_CLOEXEC.rawValue | SOCK_NONBLOCK.rawValue)
        guard socketpair(AF_UNIX, type, 0, &fds) == 0 else { throw NetlinkSocketError("socketpair", errno) }
        readDescriptor = fds[0]
        writeDescriptor = fds[1]
    }

    deinit {
        Glibc.close(readDescriptor)
        Glibc.close(writeDescriptor)
    }

    /// Never blocks: if the queue is full a wake-up is already pending.
    func wake() {
        var byte: UInt8 = 1
        _ = Glibc.send(writeDescriptor, &byte, 1, Int32(MSG_DONTWAIT | MSG_NOSIGNAL))
    }

    func drain() {
        var sink = [UInt8](repeating: 0, count: 64)
        while Glibc.recv(readDescriptor, &sink, sink.count, Int32(MSG_DONTWAIT)) > 0 {}
    }
}
