/// `struct nlmsghdr`, decoded.
public struct NetlinkHeader: Sendable, Equatable {
    public var length: UInt32
    public var type: UInt16
    public var flags: UInt16
    public var sequence: UInt32
    /// The sending socket's port: 0 for kernel notifications, ours for replies to our
    /// requests, another process's for notifications caused by its request.
    public var portID: UInt32

    public init(length: UInt32, type: UInt16, flags: UInt16, sequence: UInt32, portID: UInt32) {
        self.length = length
        self.type = type
        self.flags = flags
        self.sequence = sequence
        self.portID = portID
    }

    /// The kernel saw the table change under a dump: its result may be inconsistent.
    public var dumpInterrupted: Bool { flags & Netlink.Flag.dumpInterrupted != 0 }
}

/// One decoded netlink message: the header and what tether understands of the payload.
public struct NetlinkMessage: Sendable, Equatable {
    public var header: NetlinkHeader
    public var payload: Payload

    public init(header: NetlinkHeader, payload: Payload) {
        self.header = header
        self.payload = payload
    }

    public enum Payload: Sendable, Equatable {
        /// End of a multipart dump. `status` is 0, or a negative errno if the dump failed.
        case done(status: Int32)
        /// NLMSG_ERROR: `errno` is positive (0 means an acknowledgement). `requestSequence`
        /// is the sequence number of the request it answers, when the echoed header fits.
        case error(errno: Int32, requestSequence: UInt32?)
        /// The kernel could not fit its reply: the data is lost.
        case overrun
        case noop
        case link(LinkMessage)
        case address(AddressMessage)
        case route(RouteMessage)
        /// A type tether does not read; kept so that a dump's bookkeeping still sees it.
        case other
    }
}

/// RTM_NEWLINK / RTM_DELLINK: `struct ifinfomsg` and the attributes that matter.
public struct LinkMessage: Sendable, Equatable {
    public var isDelete: Bool
    /// `ifi_family`: AF_UNSPEC for the interface itself, AF_BRIDGE for bridge-port news.
    public var family: UInt8
    /// `ifi_type`: an ARPHRD_* value (1 is Ethernet, and also Wi-Fi).
    public var hardwareType: UInt16
    public var index: Int32
    public var flags: UInt32
    public var name: String?
    public var operState: UInt8?
    /// IFLA_INFO_KIND for virtual links ("veth", "bridge", "wireguard", ...).
    public var linkKind: String?

    public init(isDelete: Bool, family: UInt8 = Netlink.Family.unspecified, hardwareType: UInt16 = 1, index: Int32,
                flags: UInt32, name: String? = nil, operState: UInt8? = nil, linkKind: String? = nil) {
        self.isDelete = isDelete
        self.family = family
        self.hardwareType = hardwareType
        self.index = index
        self.flags = flags
        self.name = name
        self.operState = operState
        self.linkKind = linkKind
    }

    public var isUp: Bool { flags & Netlink.InterfaceFlag.up != 0 }
    public var isRunning: Bool { flags & Netlink.InterfaceFlag.running != 0 }
    public var hasCarrier: Bool { flags & Netlink.InterfaceFlag.lowerUp != 0 }
    public var isLoopback: Bool { flags & Netlink.InterfaceFlag.loopback != 0 }
}

/// RTM_NEWADDR / RTM_DELADDR: `struct ifaddrmsg` and the address.
public struct AddressMessage: Sendable, Equatable {
    public var isDelete: Bool
    public var family: UInt8
    public var prefixLength: UInt8
    /// IFA_FLAGS when present (32 bits), else `ifa_flags`.
    public var flags: UInt32
    public var scope: UInt8
    public var index: Int32
    /// IFA_LOCAL when present (on point-to-point links IFA_ADDRESS is the peer), else
    /// IFA_ADDRESS; nil for families other than IPv4 and IPv6.
    public var address: IPAddress?

    public init(isDelete: Bool, family: UInt8, prefixLength: UInt8, flags: UInt32, scope: UInt8, index: Int32,
                address: IPAddress?) {
        self.isDelete = isDelete
        self.family = family
        self.prefixLength = prefixLength
        self.flags = flags
        self.scope = scope
        self.index = index
        self.address = address
    }
}

/// One way out of a route: an interface and, unless on-link, a gateway.
public struct RouteNexthop: Sendable, Hashable {
    public var interfaceIndex: Int32
    public var gateway: IPAddress?

    public init(interfaceIndex: Int32, gateway: IPAddress? = nil) {
        self.interfaceIndex = interfaceIndex
        self.gateway = gateway
    }
}

/// RTM_NEWROUTE / RTM_DELROUTE: `struct rtmsg` and the attributes that matter.
public struct RouteMessage: Sendable, Equatable {
    public var isDelete: Bool
    /// Only set for RTM_NEWROUTE with NLM_F_REPLACE: it supersedes a route with the same key.
    public var isReplace: Bool
    public var family: UInt8
    public var destinationLength: UInt8
    public var tos: UInt8
    /// RTA_TABLE when present (tables above 255 only fit there), else `rtm_table`.
    public var table: UInt32
    public var protocolID: UInt8
    public var scope: UInt8
    public var type: UInt8
    public var destination: IPAddress?
    /// RTA_PRIORITY, the metric; 0 when absent (as the kernel means it).
    public var priority: UInt32
    /// RTA_OIF + RTA_GATEWAY, or each entry of RTA_MULTIPATH.
    public var nexthops: [RouteNexthop]

    public init(isDelete: Bool, isReplace: Bool = false, family: UInt8, destinationLength: UInt8, tos: UInt8 = 0,
                table: UInt32, protocolID: UInt8 = 0, scope: UInt8 = 0, type: UInt8 = Netlink.RouteType.unicast,
                destination: IPAddress? = nil, priority: UInt32 = 0, nexthops: [RouteNexthop]) {
        self.isDelete = isDelete
        self.isReplace = isReplace
        self.family = family
        self.destinationLength = destinationLength
        self.tos = tos
        self.table = table
        self.protocolID = protocolID
        self.scope = scope
        self.type = type
        self.destination = destination
        self.priority = priority
        self.nexthops = nexthops
    }
}
