/// One interface as the snapshot knows it, from the latest RTM_NEWLINK.
public struct NetworkInterface: Sendable, Equatable {
    public var index: Int32
    public var name: String
    /// `ifi_flags` (IFF_*).
    public var flags: UInt32
    public var operState: UInt8?
    public var hardwareType: UInt16
    public var linkKind: String?
    public var kind: InterfaceKind

    public init(index: Int32, name: String, flags: UInt32, operState: UInt8? = nil, hardwareType: UInt16 = 1,
                linkKind: String? = nil, kind: InterfaceKind = .other) {
        self.index = index
        self.name = name
        self.flags = flags
        self.operState = operState
        self.hardwareType = hardwareType
        self.linkKind = linkKind
        self.kind = kind
    }

    /// Administratively up (IFF_UP).
    public var isUp: Bool { flags & Netlink.InterfaceFlag.up != 0 }
    /// The physical link is there (IFF_LOWER_UP): cable plugged, Wi-Fi associated.
    public var hasCarrier: Bool { flags & Netlink.InterfaceFlag.lowerUp != 0 }
    /// Operationally up (IFF_RUNNING). Differs from carrier while DORMANT: Wi-Fi that is
    /// associated but still in its WPA handshake, which cannot carry traffic yet.
    public var isRunning: Bool { flags & Netlink.InterfaceFlag.running != 0 }
    public var isLoopback: Bool { flags & Netlink.InterfaceFlag.loopback != 0 }

    /// Can carry traffic now.
    public var isUsable: Bool { isUp && hasCarrier && isRunning && !isLoopback }

    public var identity: InterfaceIdentity {
        InterfaceIdentity(index: index, name: name, hardwareType: hardwareType, linkKind: linkKind)
    }
}

/// An address on an interface, from the latest RTM_NEWADDR.
public struct InterfaceAddress: Sendable, Hashable {
    public var address: IPAddress
    public var prefixLength: UInt8
    /// IFA_F_* flags.
    public var flags: UInt32
    public var scope: UInt8

    public init(address: IPAddress, prefixLength: UInt8, flags: UInt32 = Netlink.AddressFlag.permanent,
                scope: UInt8 = Netlink.Scope.universe) {
        self.address = address
        self.prefixLength = prefixLength
        self.flags = flags
        self.scope = scope
    }

    /// An address that can reach beyond the link: global scope, not loopback, link-local,
    /// multicast or unspecified, and (IPv6) past duplicate address detection. Everything
    /// else is noise for deciding whether the brain is reachable.
    public var isGlobal: Bool {
        scope == Netlink.Scope.universe && !address.isLoopback && !address.isLinkLocal && !address.isMulticast
            && !address.isUnspecified
            && flags & (Netlink.AddressFlag.tentative | Netlink.AddressFlag.dadFailed) == 0
    }

    var isDeprecated: Bool { flags & Netlink.AddressFlag.deprecated != 0 }
    /// IPv4 secondary or IPv6 temporary (privacy) address: same bit, same meaning here,
    /// "not the address this interface is known by".
    var isSecondary: Bool { flags & Netlink.AddressFlag.secondary != 0 }
}

/// A default route (dst_len 0) in the main table, with its ways out.
public struct DefaultRoute: Sendable, Hashable {
    public var family: UInt8
    public var tos: UInt8
    /// RTA_PRIORITY: lower wins.
    public var metric: UInt32
    public var nexthops: [RouteNexthop]

    public init(family: UInt8, tos: UInt8 = 0, metric: UInt32, nexthops: [RouteNexthop]) {
        self.family = family
        self.tos = tos
        self.metric = metric
        self.nexthops = nexthops
    }

    /// The kernel's identity of a route within a table: the same key with another nexthop is
    /// an append (IPv6 ECMP), the same key under NLM_F_REPLACE is a replacement.
    func sameKey(_ other: DefaultRoute) -> Bool {
        family == other.family && tos == other.tos && metric == other.metric
    }
}
