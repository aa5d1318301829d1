import Testing
@testable import TetherCore

@Suite struct NetlinkParserTests {
    @Test func linkMessageWithNameOperstateAndKind() throws {
        let bytes = NL.link(index: 3, flags: NL.upRunning, name: "wlan0", operState: Netlink.OperState.up, kind: "veth",
                            seq: 7, pid: 99, messageFlags: Netlink.Flag.multi)
        let result = NetlinkParser.parse(bytes)
        #expect(result.errors.isEmpty)
        let message = try #require(result.messages.first)
        #expect(message.header == NetlinkHeader(length: UInt32(bytes.count), type: Netlink.MessageType.newLink,
                                                flags: Netlink.Flag.multi, sequence: 7, portID: 99))
        guard case .link(let link) = message.payload else { Issue.record("not a link: \(message.payload)"); return }
        #expect(!link.isDelete)
        #expect(link.index == 3)
        #expect(link.name == "wlan0")
        #expect(link.isUp && link.isRunning && link.hasCarrier && !link.isLoopback)
        #expect(link.operState == Netlink.OperState.up)
        #expect(link.linkKind == "veth")
        #expect(link.hardwareType == 1)
    }

    @Test func deleteLinkAndLoopbackFlag() throws {
        let messages = NL.decode(NL.link(new: false, index: 1, flags: Netlink.InterfaceFlag.loopback | 1, name: "lo"))
        guard case .link(let link)? = messages.first?.payload else { Issue.record("no link"); return }
        #expect(link.isDelete)
        #expect(link.isLoopback)
    }

    @Test func ipv4AddressPrefersLocalOverPeer() throws {
        let bytes = NL.address(index: 2, "192.0.2.10", prefix: 32, peer: "192.0.2.1")
        guard case .address(let address)? = NL.decode(bytes).first?.payload else { Issue.record("no address"); return }
        #expect(address.family == Netlink.Family.inet)
        #expect(address.prefixLength == 32)
        #expect(address.index == 2)
        #expect(address.scope == 0)
        #expect(address.flags == NL.permanent)
        #expect(address.address?.description == "192.0.2.10")
        #expect(!address.isDelete)
    }

    @Test func ipv6AddressWithLongFlags() throws {
        // IFA_FLAGS carries bits that do not fit ifa_flags (here: 0x200 IFA_F_NOPREFIXROUTE).
        let flags = Netlink.AddressFlag.tentative | 0x200
        let bytes = NL.address(new: false, index: 4, "2001:db8::1", prefix: 64, flags: flags)
        guard case .address(let address)? = NL.decode(bytes).first?.payload else { Issue.record("no address"); return }
        #expect(address.isDelete)
        #expect(address.family == Netlink.Family.inet6)
        #expect(address.flags == flags)
        #expect(address.address == IPAddress("2001:db8::1"))
    }

    @Test func shortFlagsWhenNoFlagsAttribute() throws {
        let bytes = NL.address(index: 4, "2001:db8::1", prefix: 64, flags: Netlink.AddressFlag.tentative, longFlags: false)
        guard case .address(let address)? = NL.decode(bytes).first?.payload else { Issue.record("no address"); return }
        #expect(address.flags == Netlink.AddressFlag.tentative)
    }

    @Test func ipv4DefaultRoute() throws {
        let bytes = NL.route(table: 254, attributeTable: nil, oif: 2, gateway: "192.0.2.1", priority: 100)
        guard case .route(let route)? = NL.decode(bytes).first?.payload else { Issue.record("no route"); return }
        #expect(route.family == Netlink.Family.inet)
        #expect(route.destinationLength == 0)
        #expect(route.table == 254)
        #expect(route.priority == 100)
        #expect(route.nexthops == [RouteNexthop(interfaceIndex: 2, gateway: IPAddress("192.0.2.1"))])
        #expect(route.type == Netlink.RouteType.unicast)
        #expect(route.protocolID == 3)
        #expect(!route.isDelete && !route.isReplace)
    }

    @Test func routeTableAttributeOverridesHeader() throws {
        // Tables above 255 only fit RTA_TABLE; rtm_table then says RT_TABLE_COMPAT (252).
        let bytes = NL.route(table: 252, attributeTable: 1000, oif: 2, gateway: "192.0.2.1")
        guard case .route(let route)? = NL.decode(bytes).first?.payload else { Issue.record("no route"); return }
        #expect(route.table == 1000)
    }

    @Test func ipv6RouteWithDestinationAndReplace() throws {
        let bytes = NL.route(family: Netlink.Family.inet6, destinationLength: 64, oif: 5, priority: 256,
                             destination: "2001:db8::", messageFlags: Netlink.Flag.replace)
        guard case .route(let route)? = NL.decode(bytes).first?.payload else { Issue.record("no route"); return }
        #expect(route.destination?.description == "2001:db8::")
        #expect(route.destinationLength == 64)
        #expect(route.isReplace)
        #expect(route.nexthops == [RouteNexthop(interfaceIndex: 5)])
    }

    @Test func multipathRoute() throws {
        let bytes = NL.route(family: Netlink.Family.inet6, oif: nil, priority: 1024,
                             multipath: [(2, "fe80::1"), (3, "fe80::2")])
        guard case .route(let route)? = NL.decode(bytes).first?.payload else { Issue.record("no route"); return }
        #expect(route.nexthops == [RouteNexthop(interfaceIndex: 2, gateway: IPAddress("fe80::1")),
                                   RouteNexthop(interfaceIndex: 3, gateway: IPAddress("fe80::2"))])
    }

    @Test func multipartDumpEndsWithDone() throws {
        let bytes = NL.link(index: 1, name: "lo", seq: 5, pid: 42, messageFlags: Netlink.Flag.multi)
            + NL.link(index: 2, name: "eth0", seq: 5, pid: 42, messageFlags: Netlink.Flag.multi)
            + NL.done(seq: 5, pid: 42)
        let result = NetlinkParser.parse(bytes)
        #expect(result.errors.isEmpty)
        #expect(result.messages.count == 3)
        #expect(result.messages.allSatisfy { $0.header.sequence == 5 && $0.header.portID == 42 })
        #expect(result.messages.last?.payload == .done(status: 0))
    }

    @Test func errorMessageCarriesErrnoAndRequestSequence() throws {
        let messages = NL.decode(NL.error(seq: 9, pid: 42, errno: 16))
        #expect(messages.first?.payload == .error(errno: 16, requestSequence: 9))
    }

    @Test func errorWithMinimumIntIsNotATrap() throws {
        let bytes = NL.message(type: Netlink.MessageType.error, payload: NL.le(Int32.min))
        #expect(NL.decode(bytes).first?.payload == .error(errno: Int32.min, requestSequence: nil))
    }

    @Test func overrunNoopAndUnknownTypes() throws {
        let bytes = NL.message(type: Netlink.MessageType.overrun, payload: [])
            + NL.message(type: Netlink.MessageType.noop, payload: [])
            + NL.message(type: 68, payload: [1, 2, 3])  // RTM_NEWNEIGH-ish: not ours
        let payloads = NL.decode(bytes).map(\.payload)
        #expect(payloads == [.overrun, .noop, .other])
    }

    @Test func dumpInterruptedFlagIsVisible() throws {
        let message = try #require(NL.decode(NL.link(index: 1, name: "x", messageFlags: Netlink.Flag.dumpInterrupted)).first)
        #expect(message.header.dumpInterrupted)
    }

    @Test func truncatedDatagramKeepsEarlierMessages() throws {
        let first = NL.link(index: 1, name: "eth0")
        let second = NL.address(index: 1, "192.0.2.2", prefix: 24)
        let result = NetlinkParser.parse(first + second.dropLast(5))
        #expect(result.messages.count == 1)
        #expect(result.errors == [.badMessageLength(offset: first.count, length: UInt32(second.count))])
    }

    @Test func shortHeaderIsReported() throws {
        let result = NetlinkParser.parse(NL.link(index: 1, name: "eth0") + [1, 2, 3, 4, 5])
        #expect(result.messages.count == 1)
        #expect(result.errorCount == 1)
        guard case .truncatedHeader? = result.errors.first else { Issue.record("\(result.errors)"); return }
    }

    @Test func shortPayloadSkipsOnlyThatMessage() throws {
        let bad = NL.message(type: Netlink.MessageType.newRoute, payload: [2, 0, 0, 0])
        let good = NL.link(index: 1, name: "eth0")
        let result = NetlinkParser.parse(bad + good)
        #expect(result.messages.count == 1)
        #expect(result.errors == [.truncatedPayload(offset: 0, type: Netlink.MessageType.newRoute)])
    }

    @Test func attributeWithImpossibleLengthSkipsTheMessage() throws {
        var bad = NL.route(oif: 2, gateway: "192.0.2.1")
        // The first attribute (RTA_TABLE) starts after 16 + 12 bytes: claim 200 bytes.
        bad[28] = 200
        let result = NetlinkParser.parse(bad + NL.link(index: 1, name: "eth0"))
        #expect(result.messages.count == 1)
        guard case .badAttribute? = result.errors.first else { Issue.record("\(result.errors)"); return }
    }

    @Test func addressOfWrongSizeIsRejected() throws {
        // An IPv4 address message whose IFA_ADDRESS holds 16 bytes.
        let payload = [Netlink.Family.inet, 24, 0, 0] + NL.le(Int32(1)) + NL.attr(Netlink.AddressAttribute.address, NL.ip("2001:db8::1"))
        let result = NetlinkParser.parse(NL.message(type: Netlink.MessageType.newAddress, payload: payload))
        #expect(result.messages.isEmpty)
        #expect(result.errorCount == 1)
    }

    @Test func unknownAddressFamilyParsesWithoutAddress() throws {
        let payload: [UInt8] = [99, 8, 0, 0] + NL.le(Int32(1)) + NL.attr(Netlink.AddressAttribute.address, [1, 2, 3])
        let result = NetlinkParser.parse(NL.message(type: Netlink.MessageType.newAddress, payload: payload))
        #expect(result.errors.isEmpty)
        guard case .address(let address)? = result.messages.first?.payload else { Issue.record("no address"); return }
        #expect(address.address == nil)
    }

    @Test func emptyInputIsEmpty() {
        #expect(NetlinkParser.parse([]) == NetlinkParseResult())
    }
}

@Suite struct IPAddressTests {
    @Test(arguments: [
        ("192.0.2.1", "192.0.2.1"), ("0.0.0.0", "0.0.0.0"), ("2001:db8::1", "2001:db8::1"),
        ("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"), ("::", "::"), ("::1", "::1"),
        ("fe80::", "fe80::"), ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),
        ("2001:0:0:1:0:0:0:1", "2001:0:0:1::1"), ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
        ("::ffff:192.0.2.1", "::ffff:192.0.2.1"), ("1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"),
    ])
    func textRoundTrip(input: String, expected: String) throws {
        let address = try #require(IPAddress(input))
        #expect(address.description == expected)
        #expect(IPAddress(expected) == address)
    }

    @Test(arguments: ["", "1.2.3", "256.1.1.1", "1.2.3.4.5", ":::", "1::2::3", "12345::", "1:2:3:4:5:6:7:8:9", "g::1", "01.2.3.4x"])
    func rejectsMalformedText(_ text: String) {
        #expect(IPAddress(text) == nil)
    }

    @Test func classifiesNoise() throws {
        #expect(IPAddress("169.254.3.4")!.isLinkLocal)
        #expect(IPAddress("fe80::1")!.isLinkLocal)
        #expect(IPAddress("febf::1")!.isLinkLocal)
        #expect(!IPAddress("fec0::1")!.isLinkLocal)
        #expect(IPAddress("224.0.0.1")!.isMulticast)
        #expect(IPAddress("ff02::1")!.isMulticast)
        #expect(IPAddress("127.0.0.1")!.isLoopback)
        #expect(IPAddress("::1")!.isLoopback)
        #expect(!IPAddress("192.0.2.1")!.isLinkLocal)
        #expect(!IPAddress("2001:db8::1")!.isMulticast)
    }

    @Test func fromBytes() {
        #expect(IPAddress(bytes: [192, 0, 2, 1]) == IPAddress("192.0.2.1"))
        #expect(IPAddress(bytes: [1, 2, 3]) == nil)
        #expect(IPAddress(bytes: [0x20, 0x01, 0x0d, 0xb8] + Array(repeating: 0, count: 11) + [1]) == IPAddress("2001:db8::1"))
    }
}
