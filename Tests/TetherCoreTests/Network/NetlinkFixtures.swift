@testable import TetherCore

/// Builds rtnetlink messages byte by byte, the way the kernel lays them out, so that parser
/// and snapshot tests run on the real wire format without a socket.
enum NL {
    static let permanent = Netlink.AddressFlag.permanent
    static let upRunning = Netlink.InterfaceFlag.up | Netlink.InterfaceFlag.running | Netlink.InterfaceFlag.lowerUp

    static func le<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
        withUnsafeBytes(of: value) { Array($0) }
    }

    static func pad(_ bytes: [UInt8]) -> [UInt8] {
        bytes + Array(repeating: 0, count: Netlink.align(bytes.count) - bytes.count)
    }

    static func attr(_ type: UInt16, _ value: [UInt8]) -> [UInt8] {
        pad(le(UInt16(4 + value.count)) + le(type) + value)
    }

    static func cString(_ s: String) -> [UInt8] { Array(s.utf8) + [0] }

    static func ip(_ text: String) -> [UInt8] {
        switch IPAddress(text)! {
        case .v4(let a): return le(a.bigEndian)
        case .v6(let high, let low): return le(high.bigEndian) + le(low.bigEndian)
        }
    }

    static func message(type: UInt16, flags: UInt16 = 0, seq: UInt32 = 0, pid: UInt32 = 0, payload: [UInt8]) -> [UInt8] {
        pad(le(UInt32(16 + payload.count)) + le(type) + le(flags) + le(seq) + le(pid) + payload)
    }

    static func link(new: Bool = true, index: Int32, flags: UInt32 = upRunning, name: String? = nil,
                     family: UInt8 = 0, hardwareType: UInt16 = 1, operState: UInt8? = nil, kind: String? = nil,
                     seq: UInt32 = 0, pid: UInt32 = 0, messageFlags: UInt16 = 0) -> [UInt8] {
        var payload = [family, 0] + le(hardwareType) + le(index) + le(flags) + le(UInt32(0xFFFF_FFFF))
        if let name { payload += attr(Netlink.LinkAttribute.name, cString(name)) }
        if let operState { payload += attr(Netlink.LinkAttribute.operState, [operState]) }
        if let kind {
            payload += attr(Netlink.LinkAttribute.linkInfo | 0x8000, attr(Netlink.LinkAttribute.infoKind, cString(kind)))
        }
        return message(type: new ? Netlink.MessageType.newLink : Netlink.MessageType.delLink, flags: messageFlags,
                       seq: seq, pid: pid, payload: payload)
    }

    static func address(new: Bool = true, index: Int32, _ text: String, prefix: UInt8, flags: UInt32 = permanent,
                        scope: UInt8 = 0, peer: String? = nil, longFlags: Bool = true,
                        seq: UInt32 = 0, pid: UInt32 = 0, messageFlags: UInt16 = 0) -> [UInt8] {
        let family = IPAddress(text)!.family
        var payload = [family, prefix, UInt8(truncatingIfNeeded: flags), scope] + le(index)
        if family == Netlink.Family.inet {
            payload += attr(Netlink.AddressAttribute.address, ip(peer ?? text))
            payload += attr(Netlink.AddressAttribute.local, ip(text))
        } else {
            payload += attr(Netlink.AddressAttribute.address, ip(text))
        }
        if longFlags { payload += attr(Netlink.AddressAttribute.flags, le(flags)) }
        return message(type: new ? Netlink.MessageType.newAddress : Netlink.MessageType.delAddress,
                       flags: messageFlags, seq: seq, pid: pid, payload: payload)
    }

    static func route(new: Bool = true, family: UInt8 = Netlink.Family.inet, destinationLength: UInt8 = 0,
                      table: UInt8 = 254, attributeTable: UInt32? = 254, oif: Int32? = nil, gateway: String? = nil,
                      priority: UInt32? = nil, destination: String? = nil, type: UInt8 = 1, tos: UInt8 = 0,
                      multipath: [(Int32, String?)]? = nil, seq: UInt32 = 0, pid: UInt32 = 0,
                      messageFlags: UInt16 = 0) -> [UInt8] {
        var payload = [family, destinationLength, 0, tos, table, 3, 0, type] + le(UInt32(0))
        if let attributeTable { payload += attr(Netlink.RouteAttribute.table, le(attributeTable)) }
        if let destination { payload += attr(Netlink.RouteAttribute.destination, ip(destination)) }
        if let priority { payload += attr(Netlink.RouteAttribute.priority, le(priority)) }
        if let gateway { payload += attr(Netlink.RouteAttribute.gateway, ip(gateway)) }
        if let oif { payload += attr(Netlink.RouteAttribute.outputInterface, le(oif)) }
        if let multipath {
            var hops: [UInt8] = []
            for (index, gateway) in multipath {
                let attrs = gateway.map { attr(Netlink.RouteAttribute.gateway, ip($0)) } ?? []
                hops += pad(le(UInt16(8 + attrs.count)) + [0, 0] + le(index) + attrs)
            }
            payload += attr(Netlink.RouteAttribute.multipath, hops)
        }
        return message(type: new ? Netlink.MessageType.newRoute : Netlink.MessageType.delRoute,
                       flags: messageFlags, seq: seq, pid: pid, payload: payload)
    }

    static func done(seq: UInt32, pid: UInt32, status: Int32 = 0, flags: UInt16 = Netlink.Flag.multi) -> [UInt8] {
        message(type: Netlink.MessageType.done, flags: flags, seq: seq, pid: pid, payload: le(status))
    }

    static func error(seq: UInt32, pid: UInt32, errno: Int32) -> [UInt8] {
        // struct nlmsgerr: -errno, then the offending request's header.
        let echoed = le(UInt32(16)) + le(Netlink.MessageType.getRoute) + le(UInt16(0x301)) + le(seq) + le(UInt32(0))
        return message(type: Netlink.MessageType.error, seq: seq, pid: pid, payload: le(-errno) + echoed)
    }

    /// Parses and requires a clean result.
    static func decode(_ bytes: [UInt8]) -> [NetlinkMessage] {
        NetlinkParser.parse(bytes).messages
    }
}

