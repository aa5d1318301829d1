/// Decodes rtnetlink datagrams into `NetlinkMessage`s.
///
/// A datagram holds one or more messages, each a `nlmsghdr` followed by its payload and
/// padded to 4 bytes (NLMSG_ALIGN). Every read is bounds-checked: malformed, truncated or
/// hostile input never traps. A broken header ends the walk (no length to skip by); a broken
/// payload skips only its own message. Both are reported in `errors`, and every message
/// decoded before and after is returned.
public enum NetlinkParser {
    /// Interface names are at most IFNAMSIZ-1 (15) bytes; anything much longer is not one.
    static let maxNameBytes = 64

    public static func parse(_ bytes: [UInt8]) -> NetlinkParseResult {
        bytes.withUnsafeBytes { parse($0) }
    }

    public static func parse(_ buffer: UnsafeRawBufferPointer) -> NetlinkParseResult {
        let data = NetlinkBytes(buffer: buffer)
        var result = NetlinkParseResult()
        var offset = 0
        while offset < data.count {
            guard data.count - offset >= Netlink.headerSize,
                let length = data.u32(offset), let type = data.u16(offset + 4), let flags = data.u16(offset + 6),
                let sequence = data.u32(offset + 8), let portID = data.u32(offset + 12)
            else {
                result.errors.append(.truncatedHeader(offset: offset))
                break
            }
            guard Int(length) >= Netlink.headerSize, Int(length) <= data.count - offset else {
                result.errors.append(.badMessageLength(offset: offset, length: length))
                break
            }
            let header = NetlinkHeader(length: length, type: type, flags: flags, sequence: sequence, portID: portID)
            let payload = (offset + Netlink.headerSize)..<(offset + Int(length))
            switch decodePayload(header: header, payload: payload, in: data) {
            case .success(let decoded):
                result.messages.append(NetlinkMessage(header: header, payload: decoded))
            case .failure(let error):
                result.errors.append(error)
            }
            offset = Netlink.align(offset + Int(length))
        }
        return result
    }

    private static func decodePayload(header: NetlinkHeader, payload: Range<Int>, in data: NetlinkBytes)
        -> Result<NetlinkMessage.Payload, NetlinkParseError>
    {
        let truncated = NetlinkParseError.truncatedPayload(offset: payload.lowerBound - Netlink.headerSize, type: header.type)
        switch header.type {
        case Netlink.MessageType.noop:
            return .success(.noop)
        case Netlink.MessageType.error:
            guard payload.count >= Netlink.PayloadSize.error, let raw = data.i32(payload.lowerBound) else {
                return .failure(truncated)
            }
            // The echoed request header follows the error code; its sequence is 8 bytes in.
            let echoed = payload.count >= Netlink.PayloadSize.error + Netlink.headerSize
                ? data.u32(payload.lowerBound + Netlink.PayloadSize.error + 8) : nil
            // Negate without trapping on Int32.min from a hostile peer.
            return .success(.error(errno: 0 &- raw, requestSequence: echoed))
        case Netlink.MessageType.done:
            // Old kernels may send an empty DONE; the status int is optional.
            return .success(.done(status: payload.count >= 4 ? data.i32(payload.lowerBound) ?? 0 : 0))
        case Netlink.MessageType.overrun:
            return .success(.overrun)
        case Netlink.MessageType.newLink, Netlink.MessageType.delLink:
            return decodeLink(header: header, payload: payload, in: data, truncated: truncated).map { .link($0) }
        case Netlink.MessageType.newAddress, Netlink.MessageType.delAddress:
            return decodeAddress(header: header, payload: payload, in: data, truncated: truncated).map { .address($0) }
        case Netlink.MessageType.newRoute, Netlink.MessageType.delRoute:
            return decodeRoute(header: header, payload: payload, in: data, truncated: truncated).map { .route($0) }
        default:
            return .success(.other)
        }
    }

    // MARK: links

    private static func decodeLink(header: NetlinkHeader, payload: Range<Int>, in data: NetlinkBytes,
                                   truncated: NetlinkParseError) -> Result<LinkMessage, NetlinkParseError>
    {
        let base = payload.lowerBound
        guard payload.count >= Netlink.PayloadSize.ifinfomsg, let family = data.u8(base),
            let hardwareType = data.u16(base + 2), let index = data.i32(base + 4), let flags = data.u32(base + 8)
        else { return .failure(truncated) }
        var message = LinkMessage(isDelete: header.type == Netlink.MessageType.delLink, family: family,
                                  hardwareType: hardwareType, index: index, flags: flags)
        var badType: UInt16 = 0
        let attributes = (base + Netlink.PayloadSize.ifinfomsg)..<payload.upperBound
        let ok = data.forEachAttribute(in: attributes) { type, value in
            badType = type
            switch type {
            case Netlink.LinkAttribute.name:
                guard let name = string(value, in: data) else { return false }
                message.name = name
            case Netlink.LinkAttribute.operState:
                guard let state = data.u8(value.lowerBound), value.count >= 1 else { return false }
                message.operState = state
            case Netlink.LinkAttribute.linkInfo:
                return data.forEachAttribute(in: value) { nestedType, nestedValue in
                    guard nestedType == Netlink.LinkAttribute.infoKind else { return true }
                    guard let kind = string(nestedValue, in: data) else { return false }
                    message.linkKind = kind
                    return true
                }
            default:
                break
            }
            return true
        }
        guard ok else { return .failure(.badAttribute(offset: payload.lowerBound - Netlink.headerSize, type: badType)) }
        return .success(message)
    }

    // MARK: addresses

    private static func decodeAddress(header: NetlinkHeader, payload: Range<Int>, in data: NetlinkBytes,
                                      truncated: NetlinkParseError) -> Result<AddressMessage, NetlinkParseError>
    {
        let base = payload.lowerBound
        guard payload.count >= Netlink.PayloadSize.ifaddrmsg, let family = data.u8(base),
            let prefixLength = data.u8(base + 1), let shortFlags = data.u8(base + 2), let scope = data.u8(base + 3),
            let index = data.i32(base + 4)
        else { return .failure(truncated) }
        var address: IPAddress?
        var local: IPAddress?
        var longFlags: UInt32?
        var badType: UInt16 = 0
        let attributes = (base + Netlink.PayloadSize.ifaddrmsg)..<payload.upperBound
        let ok = data.forEachAttribute(in: attributes) { type, value in
            badType = type
            switch type {
            case Netlink.AddressAttribute.address, Netlink.AddressAttribute.local:
                guard let decoded = ipAddress(value, family: family, in: data) else { return false }
                if type == Netlink.AddressAttribute.local { local = decoded } else { address = decoded }
            case Netlink.AddressAttribute.flags:
                guard value.count >= 4, let flags = data.u32(value.lowerBound) else { return false }
                longFlags = flags
            default:
                break
            }
            return true
        }
        guard ok else { return .failure(.badAttribute(offset: payload.lowerBound - Netlink.headerSize, type: badType)) }
        // Prefix lengths past the family's width cannot be real.
        if family == Netlink.Family.inet && prefixLength > 32 || family == Netlink.Family.inet6 && prefixLength > 128 {
            return .failure(.badAttribute(offset: payload.lowerBound - Netlink.headerSize, type: 0))
        }
        return .success(AddressMessage(isDelete: header.type == Netlink.MessageType.delAddress, family: family,
                                       prefixLength: prefixLength, flags: longFlags ?? UInt32(shortFlags),
                                       scope: scope, index: index, address: local ?? address))
    }

    // MARK: routes

    private static func decodeRoute(header: NetlinkHeader, payload: Range<Int>, in data: NetlinkBytes,
                                    truncated: NetlinkParseError) -> Result<RouteMessage, NetlinkParseError>
    {
        let base = payload.lowerBound
        guard payload.count >= Netlink.PayloadSize.rtmsg, let family = data.u8(base),
            let destinationLength = data.u8(base + 1), let tos = data.u8(base + 3), let shortTable = data.u8(base + 4),
            let protocolID = data.u8(base + 5), let scope = data.u8(base + 6), let type = data.u8(base + 7)
        else { return .failure(truncated) }
        var table = UInt32(shortTable)
        var destination: IPAddress?
        var priority: UInt32 = 0
        var outputInterface: Int32?
        var gateway: IPAddress?
        var multipath: [RouteNexthop]?
        var badType: UInt16 = 0
        let attributes = (base + Netlink.PayloadSize.rtmsg)..<payload.upperBound
        let ok = data.forEachAttribute(in: attributes) { attributeType, value in
            badType = attributeType
            switch attributeType {
            case Netlink.RouteAttribute.table:
                guard value.count >= 4, let t = data.u32(value.lowerBound) else { return false }
                table = t
            case Netlink.RouteAttribute.outputInterface:
                guard value.count >= 4, let i = data.i32(value.lowerBound) else { return false }
                outputInterface = i
            case Netlink.RouteAttribute.priority:
                guard value.count >= 4, let p = data.u32(value.lowerBound) else { return false }
                priority = p
            case Netlink.RouteAttribute.gateway:
                guard let decoded = ipAddress(value, family: family, in: data) else { return false }
                gateway = decoded
            case Netlink.RouteAttribute.destination:
                guard let decoded = ipAddress(value, family: family, in: data) else { return false }
                destination = decoded
            case Netlink.RouteAttribute.multipath:
                guard let hops = nexthops(value, family: family, in: data) else { return false }
                multipath = hops
            default:
                break
            }
            return true
        }
        guard ok else { return .failure(.badAttribute(offset: payload.lowerBound - Netlink.headerSize, type: badType)) }
        if family == Netlink.Family.inet && destinationLength > 32
            || family == Netlink.Family.inet6 && destinationLength > 128
        {
            return .failure(.badAttribute(offset: payload.lowerBound - Netlink.headerSize, type: 0))
        }
        var hops = multipath ?? []
        if multipath == nil, let oif = outputInterface {
            hops = [RouteNexthop(interfaceIndex: oif, gateway: gateway)]
        }
        let isNew = header.type == Netlink.MessageType.newRoute
        return .success(RouteMessage(isDelete: !isNew, isReplace: isNew && header.flags & Netlink.Flag.replace != 0,
                                     family: family, destinationLength: destinationLength, tos: tos, table: table,
                                     protocolID: protocolID, scope: scope, type: type, destination: destination,
                                     priority: priority, nexthops: hops))
    }

    /// RTA_MULTIPATH: a run of `struct rtnexthop { len, flags, hops, ifindex }`, each followed
    /// by its own attributes (RTA_GATEWAY) inside `len`.
    private static func nexthops(_ range: Range<Int>, family: UInt8, in data: NetlinkBytes) -> [RouteNexthop]? {
        var result: [RouteNexthop] = []
        var offset = range.lowerBound
        while range.upperBound - offset >= Netlink.PayloadSize.rtnexthop {
            guard let length = data.u16(offset), let index = data.i32(offset + 4) else { return nil }
            let len = Int(length)
            guard len >= Netlink.PayloadSize.rtnexthop, len <= range.upperBound - offset else { return nil }
            var gateway: IPAddress?
            let ok = data.forEachAttribute(in: (offset + Netlink.PayloadSize.rtnexthop)..<(offset + len)) { type, value in
                guard type == Netlink.RouteAttribute.gateway else { return true }
                guard let decoded = ipAddress(value, family: family, in: data) else { return false }
                gateway = decoded
                return true
            }
            guard ok else { return nil }
            result.append(RouteNexthop(interfaceIndex: index, gateway: gateway))
            offset += Netlink.align(len)
        }
        return result
    }

    // MARK: values

    /// An address attribute of `family`. The outer nil means malformed (wrong size for
    /// IPv4/IPv6); an inner nil means a family tether does not read, which is not an error.
    private static func ipAddress(_ range: Range<Int>, family: UInt8, in data: NetlinkBytes) -> IPAddress?? {
        let expected: Int
        switch family {
        case Netlink.Family.inet: expected = 4
        case Netlink.Family.inet6: expected = 16
        default: return .some(nil)
        }
        guard range.count == expected, let bytes = data.slice(range) else { return nil }
        return .some(IPAddress(bytes: bytes))
    }

    /// A NUL-terminated attribute string (the NUL is optional, as in the kernel's nla_strscpy).
    private static func string(_ range: Range<Int>, in data: NetlinkBytes) -> String? {
        guard let bytes = data.slice(range) else { return nil }
        let end = bytes.firstIndex(of: 0) ?? bytes.endIndex
        guard end - bytes.startIndex <= maxNameBytes else { return nil }
        return String(decoding: bytes[bytes.startIndex..<end], as: UTF8.self)
    }
}
