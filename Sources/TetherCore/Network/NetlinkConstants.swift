/// The rtnetlink numbers tether needs, from `<linux/netlink.h>`, `<linux/rtnetlink.h>`,
/// `<linux/if_link.h>`, `<linux/if_addr.h>` and `<net/if.h>`. They are kernel ABI and never
/// change, so TetherCore spells them out instead of importing Glibc: the parser stays pure
/// Swift over bytes and runs the same in unit tests as on the robot.
public enum Netlink {
    /// `sizeof(struct nlmsghdr)`.
    public static let headerSize = 16
    /// `NLMSG_ALIGNTO`: every message and attribute starts on a 4-byte boundary.
    public static let alignment = 4

    /// `NLMSG_ALIGN(len)`, saturating instead of trapping on absurd lengths.
    @inlinable
    public static func align(_ length: Int) -> Int {
        let (sum, overflow) = length.addingReportingOverflow(alignment - 1)
        return overflow ? Int.max & ~(alignment - 1) : sum & ~(alignment - 1)
    }

    /// `nlmsg_type` values.
    public enum MessageType {
        public static let noop: UInt16 = 1
        public static let error: UInt16 = 2
        public static let done: UInt16 = 3
        public static let overrun: UInt16 = 4
        public static let newLink: UInt16 = 16
        public static let delLink: UInt16 = 17
        public static let getLink: UInt16 = 18
        public static let newAddress: UInt16 = 20
        public static let delAddress: UInt16 = 21
        public static let getAddress: UInt16 = 22
        public static let newRoute: UInt16 = 24
        public static let delRoute: UInt16 = 25
        public static let getRoute: UInt16 = 26
    }

    /// `nlmsg_flags` bits.
    public enum Flag {
        public static let request: UInt16 = 0x01
        public static let multi: UInt16 = 0x02
        public static let ack: UInt16 = 0x04
        /// The kernel changed the table while dumping it: the dump may be inconsistent.
        public static let dumpInterrupted: UInt16 = 0x10
        public static let root: UInt16 = 0x100
        public static let match: UInt16 = 0x200
        public static let dump: UInt16 = root | match
        /// On RTM_NEWROUTE notifications: this route replaced one with the same key.
        public static let replace: UInt16 = 0x100
    }

    /// Multicast group bitmasks for `sockaddr_nl.nl_groups` (the legacy `RTMGRP_*` masks).
    public enum Group {
        public static let link: UInt32 = 0x1
        public static let ipv4Address: UInt32 = 0x10
        public static let ipv4Route: UInt32 = 0x40
        public static let ipv6Address: UInt32 = 0x100
        public static let ipv6Route: UInt32 = 0x400
        /// Everything the network monitor listens to.
        public static let monitor: UInt32 = link | ipv4Address | ipv6Address | ipv4Route | ipv6Route
    }

    /// Address families (`AF_*`).
    public enum Family {
        public static let unspecified: UInt8 = 0
        public static let inet: UInt8 = 2
        /// Bridge port notifications on RTMGRP_LINK: not the interface itself.
        public static let bridge: UInt8 = 7
        public static let inet6: UInt8 = 10
    }

    /// `ifi_flags` bits (`IFF_*`).
    public enum InterfaceFlag {
        public static let up: UInt32 = 0x1
        public static let loopback: UInt32 = 0x8
        public static let running: UInt32 = 0x40
        public static let lowerUp: UInt32 = 0x10000
    }

    /// `IFLA_*` link attributes.
    public enum LinkAttribute {
        public static let name: UInt16 = 3
        public static let operState: UInt16 = 16
        public static let linkInfo: UInt16 = 18
        /// Nested in IFLA_LINKINFO.
        public static let infoKind: UInt16 = 1
    }

    /// `IFA_*` address attributes.
    public enum AddressAttribute {
        public static let address: UInt16 = 1
        public static let local: UInt16 = 2
        public static let flags: UInt16 = 8
    }

    /// `IFA_F_*` address flags (8 bits in `ifa_flags`, 32 in IFA_FLAGS).
    public enum AddressFlag {
        public static let secondary: UInt32 = 0x01
        /// IPv6 privacy address (same bit as `secondary`).
        public static let temporary: UInt32 = 0x01
        public static let dadFailed: UInt32 = 0x08
        public static let deprecated: UInt32 = 0x20
        public static let tentative: UInt32 = 0x40
        public static let permanent: UInt32 = 0x80
    }

    /// `RT_SCOPE_*`.
    public enum Scope {
        public static let universe: UInt8 = 0
        public static let link: UInt8 = 253
        public static let host: UInt8 = 254
    }

    /// `RTA_*` route attributes.
    public enum RouteAttribute {
        public static let destination: UInt16 = 1
        public static let outputInterface: UInt16 = 4
        public static let gateway: UInt16 = 5
        public static let priority: UInt16 = 6
        public static let multipath: UInt16 = 9
        public static let table: UInt16 = 15
    }

    /// `RT_TABLE_*`.
    public enum Table {
        public static let main: UInt32 = 254
    }

    /// `RTN_*` route types.
    public enum RouteType {
        public static let unicast: UInt8 = 1
    }

    /// `IF_OPER_*` (RFC 2863 operational states carried in IFLA_OPERSTATE).
    public enum OperState {
        public static let unknown: UInt8 = 0
        public static let down: UInt8 = 2
        public static let lowerLayerDown: UInt8 = 3
        public static let dormant: UInt8 = 5
        public static let up: UInt8 = 6
    }

    /// Fixed payload sizes of the rtnetlink family headers.
    public enum PayloadSize {
        /// `struct nlmsgerr` starts with `int error`, then the offending `nlmsghdr`.
        public static let error = 4
        public static let ifinfomsg = 16
        public static let ifaddrmsg = 8
        public static let rtmsg = 12
        /// `struct rtnexthop`.
        public static let rtnexthop = 8
    }
}
