import Glibc

/// The control socket's file: replaced only when it is a stale socket (nobody answers), never
/// when it is some other kind of file or a live daemon still owns it; created under a
/// temporary name and renamed into place once its mode and group are set, so there is never a
/// moment when the socket exists with looser permissions than configured.
enum ControlSocketFile {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    static func checkReplaceable(_ path: String) throws(Failure) {
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        guard (st.st_mode & S_IFMT) == S_IFSOCK else {
            throw Failure(description: "\(path) exists and is not a socket; refusing to replace it")
        }
        if isAnswered(path) {
            throw Failure(description: "another process is serving \(path) (is tetherd already running?)")
        }
    }

    /// True when something accepts connections on the socket.
    static func isAnswered(_ path: String) -> Bool {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        return result == 0
    }

    static func applyPermissions(_ path: String, mode: UInt32, groupID: UInt32?) throws(Failure) {
        // A file we create already has our own group (the unit's `Group=`): only another
        // group needs a chown, which the unit's system call filter forbids (socket
        // activation, `tether.socket` with `SocketGroup=`, is the way there).
        if let groupID, groupID != getegid(), chown(path, uid_t.max, groupID) != 0 {
            let reason = String(cString: strerror(errno))
            throw Failure(description: "cannot give \(path) to group \(groupID): \(reason) (let systemd make the socket: tether.socket with SocketGroup=)")
        }
        guard chmod(path, mode_t(mode)) == 0 else {
            throw Failure(description: "cannot set mode of \(path): \(String(cString: strerror(errno)))")
        }
    }

    static func moveIntoPlace(_ temporary: String, _ path: String) throws(Failure) {
        guard rename(temporary, path) == 0 else {
            throw Failure(description: "cannot move the control socket into \(path): \(String(cString: strerror(errno)))")
        }
    }

    static func remove(_ path: String) {
        var st = stat()
        if lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFSOCK { unlink(path) }
    }
}
