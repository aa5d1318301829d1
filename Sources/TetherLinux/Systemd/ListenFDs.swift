import CSystemd

/// The file descriptors systemd passed for socket activation (`sd_listen_fds`), consuming the
/// `LISTEN_*` variables so no child inherits them.
///
/// This file touches no socket constants: a file that imports CSystemd (whose header pulls in
/// <sys/socket.h>) and also names SOCK_STREAM made that name vanish from Glibc for the whole
/// module, depending on build order. The socket checks live in ActivatedSocket.swift.
enum ListenFDs {
    static func take() -> [Int32] {
        let count = sd_listen_fds(1)
        guard count > 0 else { return [] }
        return Array(SD_LISTEN_FDS_START..<(SD_LISTEN_FDS_START + count))
    }
}
