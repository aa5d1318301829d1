import Testing
@testable import TetherCore

@Suite struct NetlinkRequestTests {
    @Test func dumpRequestLayout() {
        let bytes = NetlinkRequest.dump(.routes, sequence: 0x0102_0304)
        #expect(bytes.count == 16 + 12)
        #expect(bytes[0..<4] == NL.le(UInt32(28))[...])
        #expect(bytes[4..<6] == NL.le(Netlink.MessageType.getRoute)[...])
        #expect(bytes[6..<8] == NL.le(UInt16(0x301))[...])  // NLM_F_REQUEST | NLM_F_DUMP
        #expect(bytes[8..<12] == NL.le(UInt32(0x0102_0304))[...])
        #expect(bytes[12...].allSatisfy { $0 == 0 })
    }

    @Test func eachKindUsesItsFamilyHeader() {
        #expect(NetlinkRequest.dump(.links, sequence: 1).count == 32)
        #expect(NetlinkRequest.dump(.addresses, sequence: 1).count == 24)
        // The request parses back as a well-formed netlink message of the right type.
        for kind in NetlinkDumpKind.allCases {
            let result = NetlinkParser.parse(NetlinkRequest.dump(kind, sequence: 77))
            #expect(result.messages.first?.header.type == kind.requestType)
            #expect(result.messages.first?.header.sequence == 77)
        }
    }
}

@Suite struct NetlinkDumpTests {
    let port: UInt32 = 4242

    func one(_ bytes: [UInt8]) -> NetlinkMessage { NL.decode(bytes)[0] }

    @Test func walksLinksAddressesRoutesOneAtATime() throws {
        var dump = NetlinkDump(portID: port, sequence: 10)
        let started = dump.start()
        let first = try #require(started)
        #expect(NL.decode(first).first?.header.type == Netlink.MessageType.getLink)
        #expect(dump.handle(one(NL.link(index: 1, name: "eth0", seq: 10, pid: port))) == .fold)
        guard case .send(let second) = dump.handle(one(NL.done(seq: 10, pid: port))) else {
            Issue.record("expected the address request"); return
        }
        #expect(NL.decode(second).first?.header.type == Netlink.MessageType.getAddress)
        #expect(NL.decode(second).first?.header.sequence == 11)
        guard case .send(let third) = dump.handle(one(NL.done(seq: 11, pid: port))) else {
            Issue.record("expected the route request"); return
        }
        #expect(NL.decode(third).first?.header.sequence == 12)
        #expect(dump.handle(one(NL.done(seq: 12, pid: port))) == .complete)
        #expect(dump.finished)
        #expect(dump.nextSequence == 13)
    }

    @Test func notificationsDuringTheDumpAreFolded() {
        var dump = NetlinkDump(portID: port, sequence: 1)
        _ = dump.start()
        // From the kernel (port 0) and from `ip` (another port, its own sequence number).
        #expect(dump.handle(one(NL.link(index: 2, name: "wlan0"))) == .fold)
        #expect(dump.handle(one(NL.address(index: 2, "192.0.2.3", prefix: 24, seq: 1, pid: 777))) == .fold)
    }

    @Test func staleRepliesAreIgnored() {
        var dump = NetlinkDump(portID: port, sequence: 20)
        _ = dump.start()
        #expect(dump.handle(one(NL.link(index: 1, name: "old", seq: 19, pid: port))) == .ignore)
        #expect(dump.handle(one(NL.done(seq: 19, pid: port))) == .ignore)
    }

    @Test func interruptedDumpRestartsAtDone() {
        var dump = NetlinkDump(portID: port, sequence: 1)
        _ = dump.start()
        let flags = Netlink.Flag.multi | Netlink.Flag.dumpInterrupted
        #expect(dump.handle(one(NL.link(index: 1, name: "eth0", seq: 1, pid: port, messageFlags: flags))) == .fold)
        guard case .restart = dump.handle(one(NL.done(seq: 1, pid: port))) else { Issue.record("no restart"); return }
        #expect(dump.finished)
    }

    @Test func errorsAndFailedDoneRestart() {
        var a = NetlinkDump(portID: port, sequence: 1)
        _ = a.start()
        guard case .restart = a.handle(one(NL.error(seq: 1, pid: port, errno: 16))) else { Issue.record("error"); return }
        var b = NetlinkDump(portID: port, sequence: 1)
        _ = b.start()
        guard case .restart = b.handle(one(NL.done(seq: 1, pid: port, status: -4))) else { Issue.record("done"); return }
        var c = NetlinkDump(portID: port, sequence: 1)
        _ = c.start()
        guard case .restart = c.handle(one(NL.message(type: Netlink.MessageType.overrun, payload: []))) else {
            Issue.record("overrun"); return
        }
    }

    @Test func repliesAfterCompletionAreIgnored() {
        var dump = NetlinkDump(portID: port, sequence: 1, kinds: [.links])
        _ = dump.start()
        #expect(dump.handle(one(NL.done(seq: 1, pid: port))) == .complete)
        #expect(dump.handle(one(NL.link(index: 1, name: "x", seq: 1, pid: port))) == .ignore)
        #expect(dump.handle(one(NL.link(index: 1, name: "x"))) == .fold)
    }
}
