/// What sort of link the default route leaves through, for `network.change` and `status`:
/// a robot on Wi-Fi is expected to blip, one on a cable is not.
public enum InterfaceKind: String, Sendable, Equatable, CaseIterable {
    case wifi
    case ethernet
    case other
}

/// What the kind lookup is told about an interface. The kind itself comes from outside the
/// snapshot (on Linux, from /sys/class/net), so the lookup is injected.
public struct InterfaceIdentity: Sendable, Hashable {
    public var index: Int32
    public var name: String
    /// ARPHRD_* from `ifi_type` (1: Ethernet, which Wi-Fi also reports).
    public var hardwareType: UInt16
    /// IFLA_INFO_KIND for virtual links ("veth", "bridge", ...), nil for hardware.
    public var linkKind: String?

    public init(index: Int32, name: String, hardwareType: UInt16 = 1, linkKind: String? = nil) {
        self.index = index
        self.name = name
        self.hardwareType = hardwareType
        self.linkKind = linkKind
    }
}
