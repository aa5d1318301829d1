import Glibc

/// Who is on the other end of a control connection (from `SO_PEERCRED`), and whether they
/// may use it: root, the daemon's own user, and members of `control.group`.
public struct PeerCredentials: Sendable, Equatable {
    public var pid: Int32
    public var uid: UInt32
    public var gid: UInt32
}

public struct PeerAccessPolicy: Sendable {
    let ownUID: UInt32
    let groupID: UInt32?
    let groupMembers: Set<String>

    public init(groupName: String?) {
        ownUID = geteuid()
        guard let groupName, let group = getgrnam(groupName) else {
            groupID = nil
            groupMembers = []
            return
        }
        groupID = group.pointee.gr_gid
        var members = Set<String>()
        var cursor = group.pointee.gr_mem
        while let member = cursor?.pointee {
            members.insert(String(cString: member))
            cursor = cursor?.advanced(by: 1)
        }
        groupMembers = members
    }

    public var resolvedGroupID: UInt32? { groupID }

    /// Root and the daemon's own user: always allowed, never crowded out by others.
    public func isPrivileged(_ peer: PeerCredentials) -> Bool { peer.uid == 0 || peer.uid == ownUID }

    public func allows(_ peer: PeerCredentials) -> Bool {
        if isPrivileged(peer) { return true }
        guard let groupID else { return false }
        if peer.gid == groupID { return true }
        if Self.supplementaryGroups(of: peer.pid).contains(groupID) { return true }
        if let name = Self.userName(peer.uid), groupMembers.contains(name) { return true }
        return false
    }

    /// The peer process's supplementary groups, from /proc (the kernel's own view, covering
    /// groups granted after the group database was read).
    static func supplementaryGroups(of pid: Int32) -> [UInt32] {
        guard pid > 0, let file = fopen("/proc/\(pid)/status", "r") else { return [] }
        defer { fclose(file) }
        var line: UnsafeMutablePointer<CChar>?
        var capacity = 0
        defer { free(line) }
        while getline(&line, &capacity, file) > 0 {
            guard let line else { break }
            let text = String(cString: line)
            if text.hasPrefix("Groups:") {
                return text.dropFirst(7).split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).compactMap { UInt32($0) }
            }
        }
        return []
    }

    static func userName(_ uid: UInt32) -> String? {
        guard let pw = getpwuid(uid) else { return nil }
        return String(cString: pw.pointee.pw_name)
    }
}
