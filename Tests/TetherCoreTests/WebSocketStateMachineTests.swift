import Testing
@testable import TetherCore

/// The frame rules of RFC 6455 as issue 11 part 4 lists them, for both roles. Each case is a run
/// of frames fed to a fresh machine and the action expected for each.
@Suite struct WebSocketStateMachineTests {
    typealias Machine = WebSocketStateMachine
    typealias Action = WebSocketStateMachine.Action

    /// A frame as the peer of `role` sends it: masked when a client sends it, as it must be.
    struct Sent: CustomStringConvertible {
        var opcode: UInt8
        var payload: [UInt8] = []
        var fin = true
        var rsv = false
        /// Whether the masking rule is broken (a masked server frame, an unmasked client frame).
        var wrongMasking = false

        var description: String { "op \(opcode) fin \(fin) rsv \(rsv) bytes \(payload.count)\(wrongMasking ? " wrongly masked" : "")" }

        func frame(to role: Machine.Role) -> Machine.Frame {
            let masked = (role == .server) != wrongMasking
            return Machine.Frame(fin: fin, reservedBitsSet: rsv, opcode: opcode, masked: masked)
        }
    }

    static func text(_ s: [UInt8], fin: Bool = true) -> Sent { Sent(opcode: 1, payload: s, fin: fin) }
    static func binary(_ b: [UInt8], fin: Bool = true) -> Sent { Sent(opcode: 2, payload: b, fin: fin) }
    static func more(_ b: [UInt8], fin: Bool = true) -> Sent { Sent(opcode: 0, payload: b, fin: fin) }
    static func ping(_ b: [UInt8] = [], fin: Bool = true) -> Sent { Sent(opcode: 9, payload: b, fin: fin) }
    static func pong(_ b: [UInt8] = []) -> Sent { Sent(opcode: 10, payload: b) }
    static func close(_ code: UInt16?, _ reason: [UInt8] = []) -> Sent {
        Sent(opcode: 8, payload: code.map { [UInt8($0 >> 8), UInt8($0 & 0xFF)] + reason } ?? [])
    }

    static let maxMessage = 64
    static let utf8 = Array("héllo €".utf8)

    /// (name, frames, the action after each frame).
    static let cases: [(String, [Sent], [Action])] = [
        ("unfragmented text", [text(utf8)], [.deliverText(.thisFrame)]),
        ("unfragmented binary", [binary([1, 2, 3])], [.deliverBinary(.thisFrame)]),
        ("empty binary", [binary([])], [.deliverBinary(.thisFrame)]),
        ("reserved bits", [Sent(opcode: 2, rsv: true)], [.close(code: 1002, reason: "reserved bits set without an extension")]),
        ("unknown opcode", [Sent(opcode: 3)], [.close(code: 1002, reason: "unknown opcode 3")]),
        ("control opcode in the reserved range", [Sent(opcode: 0xB)], [.close(code: 1002, reason: "unknown opcode 11")]),
        ("ping answered", [ping([7, 7])], [.replyPong]),
        ("ping of exactly 125 bytes", [ping(Array(repeating: 1, count: 125))], [.replyPong]),
        ("ping over 125 bytes", [ping(Array(repeating: 1, count: 126))], [.close(code: 1002, reason: "control frame larger than 125 bytes")]),
        ("fragmented ping", [ping([1], fin: false)], [.close(code: 1002, reason: "fragmented control frame")]),
        ("close over 125 bytes", [Sent(opcode: 8, payload: [3, 0xE8] + Array(repeating: 97, count: 124))],
         [.close(code: 1002, reason: "control frame larger than 125 bytes")]),
        ("unsolicited pong", [pong([1])], [.receivedPong]),
        ("fragmented text with a ping inside", [text(Array("hé".utf8), fin: false), ping([1]), more([], fin: false), more(Array("llo".utf8))],
         [.ignore, .replyPong, .ignore, .deliverText(.assembled(Array("héllo".utf8)))]),
        ("fragmented binary", [binary([1], fin: false), more([2], fin: false), more([3])], [.ignore, .ignore, .deliverBinary(.assembled([1, 2, 3]))]),
        ("UTF-8 sequence split across fragments", [text([0xE2, 0x82], fin: false), more([0xAC])], [.ignore, .deliverText(.assembled([0xE2, 0x82, 0xAC]))]),
        ("invalid UTF-8 split across fragments", [text(Array(#"{"t":""#.utf8) + [0xE2], fin: false), more([0x28, 0xA1])],
         [.ignore, .close(code: 1007, reason: "text message is not valid UTF-8")]),
        ("invalid UTF-8 in one frame", [text([0xC3, 0x28])], [.close(code: 1007, reason: "text message is not valid UTF-8")]),
        ("truncated UTF-8 at the end of a message", [text([0xE2, 0x82])], [.close(code: 1007, reason: "text message is not valid UTF-8")]),
        ("invalid UTF-8 in a binary message is fine", [binary([0xFF])], [.deliverBinary(.thisFrame)]),
        ("continuation without a start", [more([1])], [.close(code: 1002, reason: "continuation without a message")]),
        ("new message inside a fragmented one", [binary([1], fin: false), binary([2])], [.ignore, .close(code: 1002, reason: "new message inside a fragmented one")]),
        ("message of exactly the limit", [binary(Array(repeating: 0, count: maxMessage))], [.deliverBinary(.thisFrame)]),
        ("frame over the limit", [binary(Array(repeating: 0, count: maxMessage + 1))], [.close(code: 1009, reason: "message larger than 64 bytes")]),
        ("fragments over the limit", [binary(Array(repeating: 0, count: 40), fin: false), more(Array(repeating: 0, count: 25))],
         [.ignore, .close(code: 1009, reason: "message larger than 64 bytes")]),
        ("close without a code", [close(nil)], [.peerClosed(code: 1005, reason: "")]),
        ("close with a code and reason", [close(1000, Array("bye ü".utf8))], [.peerClosed(code: 1000, reason: "bye ü")]),
        ("close with an application code", [close(4001, Array("policy".utf8))], [.peerClosed(code: 4001, reason: "policy")]),
        ("close with a one-byte payload", [Sent(opcode: 8, payload: [3])], [.close(code: 1002, reason: "close frame with a 1-byte payload")]),
        ("close with an invalid UTF-8 reason", [close(1000, [0xFF, 0xFE])], [.close(code: 1007, reason: "close reason is not valid UTF-8")]),
        ("nothing after the peer's close", [close(1000), binary([1]), ping([1])], [.peerClosed(code: 1000, reason: ""), .ignore, .ignore]),
        ("nothing but a close after a violation", [more([1]), binary([1]), ping([1]), pong([1]), close(1002)],
         [.close(code: 1002, reason: "continuation without a message"), .ignore, .ignore, .receivedPong, .closeAcknowledged]),
        ("a second violation says nothing more", [Sent(opcode: 3), Sent(opcode: 2, rsv: true)], [.close(code: 1002, reason: "unknown opcode 3"), .ignore]),
        ("a fragment is forgotten after a violation", [binary([1], fin: false), Sent(opcode: 3), more([2])],
         [.ignore, .close(code: 1002, reason: "unknown opcode 3"), .ignore]),
    ] + [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535].map { (code: UInt16) in
        ("close code \(code)", [close(code)], [.close(code: 1002, reason: "invalid close code \(code)")])
    }

    @Test(arguments: [Machine.Role.client, .server])
    func rules(role: Machine.Role) {
        for (name, frames, expected) in Self.cases {
            var machine = Machine(role: role, maxMessageBytes: Self.maxMessage)
            let actions = frames.map { sent in sent.payload.withUnsafeBytes { machine.received(sent.frame(to: role), payload: $0) } }
            #expect(actions == expected, "\(name) (\(role))")
        }
    }

    @Test func masking() {
        var client = Machine(role: .client, maxMessageBytes: 64)
        #expect(client.received(.init(fin: true, opcode: 2, masked: true), payload: .init(start: nil, count: 0))
            == .close(code: 1002, reason: "masked frame from the server"))
        var server = Machine(role: .server, maxMessageBytes: 64)
        #expect(server.received(.init(fin: true, opcode: 2, masked: false), payload: .init(start: nil, count: 0))
            == .close(code: 1002, reason: "client frame not masked"))
        #expect(client.state == .closing && server.state == .closing)
    }

    @Test func closingHandshakeWeStarted() {
        var machine = Machine(role: .client, maxMessageBytes: 64)
        machine.sentClose()
        #expect(machine.state == .closing)
        func feed(_ sent: Sent) -> Action { sent.payload.withUnsafeBytes { machine.received(sent.frame(to: .client), payload: $0) } }
        #expect(feed(Self.text(Self.utf8)) == .ignore)
        #expect(feed(Self.ping([1])) == .ignore)
        #expect(feed(Self.pong([1])) == .receivedPong)
        #expect(feed(Self.close(1000)) == .closeAcknowledged)
        #expect(machine.state == .closed)
        #expect(feed(Self.close(1000)) == .ignore)
    }

    @Test func decoderFailures() {
        var tooLarge = Machine(role: .client, maxMessageBytes: 64)
        #expect(tooLarge.decodingFailed(frameTooLarge: true) == .close(code: 1009, reason: "frame larger than 64 bytes"))
        #expect(tooLarge.decodingFailed(frameTooLarge: false) == .ignore)
        var invalid = Machine(role: .server, maxMessageBytes: 64)
        #expect(invalid.decodingFailed(frameTooLarge: false) == .close(code: 1002, reason: "invalid frame"))
    }

    @Test func endedConnectionIgnoresEverything() {
        var machine = Machine(role: .client, maxMessageBytes: 64)
        machine.connectionEnded()
        #expect([UInt8]([1]).withUnsafeBytes { machine.received(.init(fin: true, opcode: 2, masked: false), payload: $0) } == .ignore)
        #expect(machine.decodingFailed(frameTooLarge: true) == .ignore)
    }

    @Test func utf8Validation() {
        let valid: [[UInt8]] = [[], Array("plain".utf8), Array("é€😀".utf8), [0xEF, 0xBB, 0xBF]]
        let invalid: [[UInt8]] = [[0x80], [0xC0, 0x80], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xFF], [0xE2, 0x82]]
        for bytes in valid { #expect(bytes.withUnsafeBytes { UTF8Validation.isValid($0) }, "\(bytes)") }
        for bytes in invalid { #expect(!bytes.withUnsafeBytes { UTF8Validation.isValid($0) }, "\(bytes)") }
    }
}
