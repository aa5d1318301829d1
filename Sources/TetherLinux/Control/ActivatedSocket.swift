import Glibc

/// The control socket systemd created for us (`tether.socket`: socket activation). systemd
/// makes the file with `SocketGroup=` and `SocketMode=` itself, so the daemon needs no `chown`
/// (its own unit forbids it), and clients can connect before the daemon is up: their
/// connections wait in the listen queue.
enum ActivatedSocket {
    struct Passed: Sendable {
        var descriptor: Int32
        var path: String
    }

    /// The listening Unix stream socket systemd passed, preferring the one bound to
    /// `expectedPath`; nil when tetherd was started by hand.
    static func take(expectedPath: String) -> Passed? {
        let candidates = ListenFDs.take().compactMap { descriptor -> Passed? in
            guard isListeningStream(descriptor), let path = boundUnixPath(descriptor) else { return nil }
            return Passed(descriptor: descriptor, path: path)
        }
        return candidates.first { $0.path == expectedPath } ?? candidates.first
    }

    static func isListeningStream(_ descriptor: Int32) -> Bool {
        intOption(descriptor, SO_TYPE) == Int32(SOCK_STREAM.rawValue) && intOption(descriptor, SO_ACCEPTCONN) == 1
    }

    private static func intOption(_ descriptor: Int32, _ name: Int32) -> Int32? {
        var value: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        return getsockopt(descriptor, SOL_SOCKET, name, &value, &length) == 0 ? value : nil
    }

    /// The file name a Unix socket is bound to; nil for any other kind of socket.
    static func boundUnixPath(_ descriptor: Int32) -> String? {
        var address = sockaddr_un()
        var length = socklen_t(MemoryLayout<sockaddr_un>.size)
        let result = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        guard result == 0, address.sun_family == sa_family_t(AF_UNIX) else { return nil }
        return withUnsafeBytes(of: &address.sun_path) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
    }
}
