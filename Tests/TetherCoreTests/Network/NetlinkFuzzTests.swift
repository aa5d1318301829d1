import Testing
@testable import TetherCore

/// Random and mutated datagrams through the parser, the snapshot fold, the view, the
/// classifier and the dump sequencer. Seeded, so a failure repeats exactly; the property
/// is that nothing traps and the results stay within the input's bounds.
@Suite struct NetlinkFuzzTests {
    static let iterations = 100_000

    /// Valid messages of every kind the parser reads, as the mutation seeds.
    static let corpus: [[UInt8]] = [
        NL.link(index: 1, flags: NL.upRunning | Netlink.InterfaceFlag.loopback, name: "lo"),
        NL.link(index: 2, name: "eth0", operState: Netlink.OperState.up, kind: "veth"),
        NL.link(new: false, index: 2, name: "eth0"),
        NL.link(index: 3, flags: Netlink.InterfaceFlag.up, name: "wlan0", family: Netlink.Family.bridge),
        NL.address(index: 2, "192.0.2.2", prefix: 24),
        NL.address(index: 2, "192.0.2.10", prefix: 32, peer: "192.0.2.1"),
        NL.address(new: false, index: 2, "192.0.2.2", prefix: 24),
        NL.address(index: 3, "2001:db8::1", prefix: 64, flags: Netlink.AddressFlag.tentative),
        NL.address(index: 3, "fe80::1", prefix: 64, scope: Netlink.Scope.link, longFlags: false),
        NL.route(oif: 2, gateway: "192.0.2.1", priority: 100),
        NL.route(new: false, oif: 2, gateway: "192.0.2.1", priority: 100),
        NL.route(family: Netlink.Family.inet6, oif: 3, gateway: "fe80::1", priority: 1024, messageFlags: Netlink.Flag.replace),
        NL.route(family: Netlink.Family.inet6, oif: nil, priority: 1024, multipath: [(2, "fe80::1"), (3, nil)]),
        NL.route(destinationLength: 24, table: 252, attributeTable: 1000, oif: 2, destination: "10.0.0.0"),
        NL.done(seq: 1, pid: 77),
        NL.done(seq: 2, pid: 77, status: -16),
        NL.error(seq: 3, pid: 77, errno: 105),
        NL.message(type: Netlink.MessageType.overrun, payload: []),
        NL.link(index: 2, name: "eth0", seq: 1, pid: 77, messageFlags: Netlink.Flag.multi | Netlink.Flag.dumpInterrupted),
    ]

    static func mutate(_ input: [UInt8], rng: inout SplitMix64) -> [UInt8] {
        var bytes = input
        switch rng.next() % 8 {
        case 0:  // bit flips
            for _ in 0..<(1 + rng.next() % 8) where !bytes.isEmpty {
                let i = Int(rng.next() % UInt64(bytes.count))
                bytes[i] ^= UInt8(1) << (rng.next() % 8)
            }
        case 1:  // truncation
            bytes = Array(bytes.prefix(Int(rng.next() % UInt64(bytes.count + 1))))
        case 2:  // nlmsg_len corruption: near misses and absurd values
            let choices: [UInt32] = [0, 1, 15, 16, 17, UInt32(bytes.count) &- 1, UInt32(bytes.count) &+ 1,
                                     UInt32(bytes.count) &+ 4, 0xFFFF_FFFF, 0x8000_0000, UInt32(truncatingIfNeeded: rng.next())]
            let value = choices[Int(rng.next() % UInt64(choices.count))]
            withUnsafeBytes(of: value) { for (i, b) in $0.enumerated() where i < bytes.count { bytes[i] = b } }
        case 3:  // an attribute or nexthop length field: any 16-bit slot past the family header
            if bytes.count > 20 {
                let i = 16 + 2 * Int(rng.next() % UInt64((bytes.count - 17) / 2))
                let value = UInt16(truncatingIfNeeded: [0, 1, 3, 4, 5, 0xFFFF, rng.next()][Int(rng.next() % 7)])
                bytes[i] = UInt8(truncatingIfNeeded: value)
                bytes[i + 1] = UInt8(truncatingIfNeeded: value >> 8)
            }
        case 4:  // type confusion: the same bytes read as another message type
            if bytes.count >= 6 {
                let types: [UInt16] = [1, 2, 3, 4, 16, 17, 20, 21, 24, 25, 0, 0xFFFF]
                let t = types[Int(rng.next() % UInt64(types.count))]
                bytes[4] = UInt8(t & 0xFF)
                bytes[5] = UInt8(t >> 8)
            }
        case 5:  // random bytes
            bytes = (0..<Int(rng.next() % 160)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        case 6:  // random bytes spliced in
            let at = Int(rng.next() % UInt64(bytes.count + 1))
            bytes.insert(contentsOf: (0..<Int(1 + rng.next() % 12)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }, at: at)
        default:  // a multi-message datagram whose last member is cut
            let other = corpus[Int(rng.next() % UInt64(corpus.count))]
            bytes += other.prefix(Int(rng.next() % UInt64(other.count + 1)))
        }
        return bytes
    }

    @Test func parserAndFoldNeverTrap() {
        var rng = SplitMix64(seed: 0x7E7E_5EED)
        var snapshot = NetworkSnapshot(ignoreInterfaces: ["lo"]) { $0.index % 2 == 0 ? .ethernet : .wifi }
        var view = snapshot.view()
        var dump = NetlinkDump(portID: 77, sequence: 1)
        _ = dump.start()
        var parsedMessages = 0
        var parseErrors = 0
        var onlineViews = 0
        for iteration in 0..<Self.iterations {
            var input = Self.corpus[Int(rng.next() % UInt64(Self.corpus.count))]
            // Most inputs get one mutation, some get several, a few stay valid.
            for _ in 0..<(rng.next() % 3) { input = Self.mutate(input, rng: &rng) }
            let result = NetlinkParser.parse(input)
            parsedMessages += result.messages.count
            parseErrors += result.errorCount
            for message in result.messages {
                #expect(Int(message.header.length) <= input.count)
                #expect(Int(message.header.length) >= Netlink.headerSize)
                if case .restart = dump.handle(message) {
                    dump = NetlinkDump(portID: 77, sequence: dump.nextSequence)
                    _ = dump.start()
                }
            }
            snapshot.apply(result.messages)
            if iteration % 16 == 0 {
                let next = snapshot.view()
                let delta = NetworkClassifier.classify(old: view, new: next)
                _ = NetworkEvents.events(for: delta, view: next)
                #expect(delta.isEmpty == (view == next) || view.addresses != next.addresses)
                if next.online { onlineViews += 1 }
                if next.online { #expect(next.defaultInterface != nil && next.primaryAddress != nil) }
                view = next
            }
            if iteration % 1000 == 999 {
                snapshot = NetworkSnapshot(ignoreInterfaces: ["lo"]) { _ in .other }
            }
        }
        // The mutations must actually have exercised both paths.
        #expect(parsedMessages > Self.iterations / 2)
        #expect(parseErrors > Self.iterations / 10)
        #expect(onlineViews > 100, "online views: \(onlineViews)")
    }

    @Test func unmutatedCorpusParsesCleanly() {
        for bytes in Self.corpus {
            let result = NetlinkParser.parse(bytes)
            #expect(result.errors.isEmpty)
            #expect(result.messages.count == 1)
        }
    }
}
