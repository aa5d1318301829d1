import CSystemd
import Glibc

/// The control socket systemd created for us (`tether.socket`: socket activation, passed with
/// `sd_listen_fds`). systemd makes the file with `SocketGroup=` and `SocketMode=` itself, so
/// the daemon needs no `chown` (its own unit forbids it), and clients can connect before the
/// daemon is up: their connections wait in the listen queue.
enum ActivatedSocket {
    struct Passed: Sendable {
        var descriptor: Int32
        var path: String
    }

    /// The listening Unix stream socket systemd passed, preferring the one bound to
    /// `expectedPath`; nil when tetherd was started by hand. The environment variables are
    /// consumed, so no child process inherits them.
    static func take(expectedPath: String) -> Passed? {
        let count = sd_listen_fds(1)
        guard count > 0 else { return nil }
        var candidates: [Passed] = []
        for descriptor in SD_LISTEN_FDS_START..<(SD_LISTEN_FDS_START + count) {
            guard sd_is_socket_unix(descriptor, Int32(SOCK_STREAM.rawValue), 1, nil, 0) > 0 else { continue }
            candidates.append(Passed(descriptor: descriptor, path: boundPath(descriptor) ?? ""))
        }
        return candidates.first { $0.path == expectedPath } ?? candidates.first
    }

    /// The file name a Unix socket is bound to.
    static func boundPath(_ descriptor: Int32) -> String? {
        var address = sockaddr_un()
        var length = socklen_t(MemoryLayout<sockaddr_un>.size)
        let result = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        guard result == 0 else { return nil }
        return withUnsafeBytes(of: &address.sun_path) { raw in
            let bytes = raw.prefix(while: { $0 != 0 })
            return bytes.isEmpty ? nil : String(decoding: bytes, as: UTF8.self)
        }
    }
}
