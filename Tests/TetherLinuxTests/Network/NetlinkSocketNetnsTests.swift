import Foundation
import Glibc
import Testing
@testable import TetherCore
@testable import TetherLinux

/// The netlink socket alone against the real kernel, in a scratch namespace.
@Suite(.serialized, .enabled(if: getuid() == 0, "needs root: creates network namespaces with `ip netns`"))
struct NetlinkSocketNetnsTests {
    /// Reads until `done` says stop or the deadline passes; returns what each read gave.
    static func receive(_ socket: NetlinkSocket, timeout: TimeInterval = 5,
                        until done: ([NetlinkSocket.Received]) -> Bool) -> [NetlinkSocket.Received] {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 << 10, alignment: 4)
        defer { buffer.deallocate() }
        var outcomes: [NetlinkSocket.Received] = []
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline, !done(outcomes) {
            var fd = pollfd(fd: socket.fileDescriptor, events: Int16(POLLIN), revents: 0)
            _ = poll(&fd, 1, 100)
            while let received = try? socket.receive(into: buffer), received != .wouldBlock {
                outcomes.append(received)
            }
        }
        return outcomes
    }

    @Test func dumpsEveryTableInTheNamespace() throws {
        let rig = try NetnsRig()
        defer { rig.destroy() }
        try rig.ip("link", "add", "tva", "type", "veth", "peer", "name", "tvb")
        try rig.ip("addr", "add", "192.0.2.2/24", "dev", "tva")
        try rig.ip("link", "set", "tva", "up")
        try rig.ip("link", "set", "tvb", "up")
        try rig.ip("route", "add", "default", "via", "192.0.2.1", "dev", "tva")
        let socket = try rig.openNetlinkSocket()
        #expect(socket.portID != 0)
        #expect(socket.receiveBufferBytes >= NetlinkSocket.defaultReceiveBufferBytes)

        var snapshot = NetworkSnapshot(ignoreInterfaces: ["lo"])
        var dump = NetlinkDump(portID: socket.portID, sequence: 1)
        var complete = false
        var next = dump.start()
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 << 10, alignment: 4)
        defer { buffer.deallocate() }
        let deadline = Date().addingTimeInterval(5)
        while !complete, Date() < deadline {
            if let bytes = next {
                try socket.send(bytes)
                next = nil
            }
            var fd = pollfd(fd: socket.fileDescriptor, events: Int16(POLLIN), revents: 0)
            _ = poll(&fd, 1, 100)
            while !complete, case .datagram(let count)? = try? socket.receive(into: buffer) {
                for message in NetlinkParser.parse(UnsafeRawBufferPointer(rebasing: buffer[0..<count])).messages {
                    switch dump.handle(message) {
                    case .fold: snapshot.apply(message)
                    case .send(let bytes): next = bytes
                    case .complete: complete = true
                    case .ignore: break
                    case .restart(let reason): Issue.record("dump restarted: \(reason)")
                    }
                }
            }
        }
        #expect(complete)
        #expect(Set(snapshot.interfaces.values.map(\.name)) == ["lo", "tva", "tvb"])
        #expect(snapshot.defaultRoutes.count == 1)
        let view = snapshot.view()
        #expect(view.defaultInterface == "tva")
        #expect(view.addresses == ["192.0.2.2"])
    }

    @Test func reportsOverflowWhenNotRead() throws {
        let rig = try NetnsRig()
        defer { rig.destroy() }
        try rig.ip("link", "add", "tvx", "type", "veth", "peer", "name", "tvy")
        try rig.ip("link", "set", "tvx", "up")
        // The smallest queue the kernel grants, and nobody reading it while 200 addresses
        // (each with its own address and route notifications) arrive.
        let socket = try rig.openNetlinkSocket(receiveBufferBytes: 1)
        try rig.batch((0..<200).map { "addr add 10.9.\($0 / 250).\($0 % 250 + 1)/32 dev tvx" })
        let outcomes = Self.receive(socket) { $0.contains(.overflow) }
        #expect(outcomes.contains(.overflow), "no ENOBUFS among \(outcomes.count) reads")
    }
}
