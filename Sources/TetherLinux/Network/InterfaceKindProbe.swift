import Glibc
import Synchronization
import TetherCore

/// Tells Wi-Fi from Ethernet the way the kernel exposes it in sysfs: an interface is Wi-Fi
/// when `/sys/class/net/NAME/wireless` or `.../phy80211` exists (cfg80211 and wireless
/// extensions drivers); Ethernet when `.../type` is 1 (ARPHRD_ETHER) and it is not Wi-Fi,
/// which Wi-Fi also reports; anything else is `other`.
///
/// Read lazily, when a link first appears or is renamed, and cached per (ifindex, name).
/// sysfs shows the network namespace it was mounted in: an interface it does not list
/// is `other` and is not cached, so a later lookup can still find it.
public final class InterfaceKindProbe: Sendable {
    private let root: String
    private let cache = Mutex<[InterfaceIdentity: InterfaceKind]>([:])
    private static let maxCached = 256

    public init(sysClassNet: String = "/sys/class/net") {
        self.root = sysClassNet
    }

    public func kind(of identity: InterfaceIdentity) -> InterfaceKind {
        var key = identity
        key.linkKind = nil
        if let known = cache.withLock({ $0[key] }) { return known }
        // The name comes from the kernel, but it still must not walk out of the directory.
        let name = identity.name
        guard !name.isEmpty, name != ".", name != "..", !name.contains("/") else { return .other }
        let directory = root + "/" + name
        guard access(directory, F_OK) == 0 else { return .other }
        let kind: InterfaceKind
        if access(directory + "/wireless", F_OK) == 0 || access(directory + "/phy80211", F_OK) == 0 {
            kind = .wifi
        } else if InterfaceKindProbe.readSmallFile(directory + "/type") == "1" {
            kind = .ethernet
        } else {
            kind = .other
        }
        cache.withLock { entries in
            if entries.count >= InterfaceKindProbe.maxCached { entries.removeAll() }
            entries[key] = kind
        }
        return kind
    }

    /// The trimmed first line of a sysfs attribute, or nil.
    static func readSmallFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: 64)
        let count = read(fd, &bytes, bytes.count)
        guard count > 0 else { return nil }
        let text = String(decoding: bytes[0..<count], as: UTF8.self)
        return text.split(whereSeparator: { $0 == "\n" || $0 == " " }).first.map(String.init)
    }
}
