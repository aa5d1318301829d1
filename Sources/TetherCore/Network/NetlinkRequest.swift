/// The three tables a full resync reads, in the order it reads them: links first, so that
/// addresses and routes arrive for interfaces already known (the snapshot copes with any
/// order, but this keeps the fresh view complete as early as possible).
public enum NetlinkDumpKind: Sendable, CaseIterable, Equatable {
    case links, addresses, routes

    public var requestType: UInt16 {
        switch self {
        case .links: return Netlink.MessageType.getLink
        case .addresses: return Netlink.MessageType.getAddress
        case .routes: return Netlink.MessageType.getRoute
        }
    }

    /// The request carries the family header of its table, zeroed: AF_UNSPEC asks for every
    /// family, and kernels with strict checking reject the short `rtgenmsg` form.
    var familyHeaderSize: Int {
        switch self {
        case .links: return Netlink.PayloadSize.ifinfomsg
        case .addresses: return Netlink.PayloadSize.ifaddrmsg
        case .routes: return Netlink.PayloadSize.rtmsg
        }
    }
}

/// Builds the bytes of rtnetlink requests. Pure byte building, in host byte order as the
/// kernel expects; the socket layer only sends them.
public enum NetlinkRequest {
    /// RTM_GETLINK / RTM_GETADDR / RTM_GETROUTE with NLM_F_REQUEST | NLM_F_DUMP.
    public static func dump(_ kind: NetlinkDumpKind, sequence: UInt32) -> [UInt8] {
        let length = Netlink.headerSize + kind.familyHeaderSize
        var bytes: [UInt8] = []
        bytes.reserveCapacity(length)
        append(UInt32(length), to: &bytes)
        append(kind.requestType, to: &bytes)
        append(Netlink.Flag.request | Netlink.Flag.dump, to: &bytes)
        append(sequence, to: &bytes)
        // nlmsg_pid 0: the message is for the kernel.
        append(UInt32(0), to: &bytes)
        bytes.append(contentsOf: repeatElement(0, count: kind.familyHeaderSize))
        return bytes
    }

    private static func append<T: FixedWidthInteger>(_ value: T, to bytes: inout [UInt8]) {
        withUnsafeBytes(of: value) { bytes.append(contentsOf: $0) }
    }
}
