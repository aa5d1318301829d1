import NIOCore
import NIOEmbedded
import NIOWebSocket
import Testing
@testable import TetherLinux

/// tetherd's frame handler on an EmbeddedChannel: what reaches the connection, what goes back
/// to the brain, and how a violation ends the connection (close frame, half-close, drain).
@Suite struct WebSocketFrameHandlerTests {
    /// A connected channel holding the frame handler (and, with `codec`, NIO's frame codec in
    /// front of it, so raw bytes can be fed).
    struct Rig {
        let channel = EmbeddedChannel()
        let sink = RecordingFrameSink()
        let closes = CloseModeRecorder()

        init(maxMessageBytes: Int = 1024, codec: Bool = false) throws {
            let pipeline = channel.pipeline.syncOperations
            try pipeline.addHandler(closes)
            if codec {
                try pipeline.addHandler(WebSocketFrameEncoder())
                try pipeline.addHandler(ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: maxMessageBytes)))
            }
            try pipeline.addHandler(WebSocketFrameHandler(sink: sink, maxMessageBytes: maxMessageBytes))
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9)).wait()
        }

        func receive(_ frames: WebSocketFrame...) throws {
            for frame in frames { try channel.writeInbound(frame) }
        }

        /// The frames the handler wrote, in order.
        func sent() throws -> [WebSocketFrame] {
            var frames: [WebSocketFrame] = []
            while let frame = try channel.readOutbound(as: WebSocketFrame.self) { frames.append(frame) }
            return frames
        }
    }

    @Test func messagesReachTheConnection() throws {
        let rig = try Rig()
        let text = Array(#"{"type":"x","t":"é"}"#.utf8)
        try rig.receive(.server(.binary, [1, 2, 3]), .server(.text, text), .server(.binary))
        #expect(rig.sink.events == [.binary([1, 2, 3]), .text(text), .binary([])])
        #expect(try rig.sent().isEmpty)
    }

    @Test func pingsAreAnsweredInsideAFragmentedMessage() throws {
        let rig = try Rig()
        try rig.receive(
            .server(.text, Array(#"{"type":"é"#.utf8).dropLast(1).map { $0 }, fin: false),
            .server(.ping, [7, 8, 9]),
            .server(.continuation, [0xA9], fin: false),
            .server(.continuation, Array(#""}"#.utf8)))
        #expect(rig.sink.events == [.text(Array(#"{"type":"é"}"#.utf8))])
        let sent = try rig.sent()
        #expect(sent.count == 1)
        #expect(sent.first?.opcode == .pong)
        #expect(sent.first?.maskKey != nil, "client frames are masked")
        #expect(sent.first?.sentPayload == [7, 8, 9])
    }

    @Test func pongsReachTheConnection() throws {
        let rig = try Rig()
        try rig.receive(.server(.pong, [1, 2]))
        #expect(rig.sink.events == [.pong([1, 2])])
    }

    static let violations: [(String, [WebSocketFrame], UInt16)] = [
        ("masked server frame", [.server(.binary, [0, 0], mask: [1, 2, 3, 4])], 1002),
        ("reserved bit", [.server(.binary, [0, 0], rsv1: true)], 1002),
        ("control frame over 125 bytes", [.server(.ping, Array(repeating: 120, count: 126))], 1002),
        ("fragmented control frame", [.server(.ping, [1], fin: false)], 1002),
        ("continuation without a start", [.server(.continuation, [0])], 1002),
        ("new message inside a fragmented one", [.server(.binary, [0], fin: false), .server(.binary, [0])], 1002),
        ("invalid UTF-8 split across fragments", [.server(.text, [0x22, 0xE2], fin: false), .server(.continuation, [0x28, 0xA1])], 1007),
        ("message over the limit", [.server(.binary, Array(repeating: 0, count: 1000), fin: false), .server(.continuation, Array(repeating: 0, count: 25))], 1009),
        ("close with a 1-byte payload", [.server(.connectionClose, [3])], 1002),
        ("close with an invalid UTF-8 reason", [.server(.connectionClose, [3, 0xE8, 0xFF])], 1007),
        ("close code 1005", [.close(1005)], 1002),
        ("close code 1006", [.close(1006)], 1002),
        ("close code 999", [.close(999)], 1002),
        ("close code 5000", [.close(5000)], 1002),
    ]

    @Test(arguments: violations)
    func violationsCloseWithTheirCodeHalfCloseAndDrain(name: String, frames: [WebSocketFrame], code: UInt16) throws {
        let rig = try Rig()
        for frame in frames { try rig.receive(frame) }
        #expect(rig.sink.events == [.violation(code)], "\(name)")
        let sent = try rig.sent()
        #expect(sent.map(\.closeCode) == [code], "\(name)")
        #expect(sent.first?.maskKey != nil)
        // Output half-closed, input still read (and discarded) so no RST destroys the close frame.
        #expect(rig.closes.modes == [.output], "\(name)")
        try rig.receive(.server(.binary, [1]), .server(.ping, [1]), .server(.binary, [0, 0], mask: [1, 2, 3, 4]))
        #expect(rig.sink.events == [.violation(code)], "nothing is delivered or answered after a violation")
        #expect(try rig.sent().isEmpty)
        // The drain ends after a second at the latest.
        rig.channel.embeddedEventLoop.advanceTime(by: WebSocketFrameHandler.drainTimeout)
        #expect(rig.closes.modes == [.output, .all])
        #expect(rig.sink.events == [.violation(code), .inactive])
    }

    @Test func closeReasonsAreCutOnACharacterBoundary() throws {
        let rig = try Rig()
        let frame = WebSocketFrameHandler.closeFrame(code: 1011, reason: String(repeating: "€", count: 60), allocator: rig.channel.allocator)
        #expect(frame.sentPayload.count == 2 + 123)
        #expect(String(validating: frame.sentPayload.dropFirst(2), as: UTF8.self) == String(repeating: "€", count: 41))
    }

    @Test func anOversizedLengthHeaderIsRefusedBeforeAnyPayload() throws {
        let rig = try Rig(maxMessageBytes: 1 << 20, codec: true)
        // A binary frame header claiming 2^40 bytes, and no payload at all.
        try rig.channel.writeInbound(ByteBuffer(bytes: [0x82, 0x7F, 0, 0, 0x01, 0, 0, 0, 0, 0]))
        #expect(rig.sink.events == [.violation(1009)])
        // The encoder may write the header and the payload as separate buffers.
        var wire = ByteBuffer()
        while var part = try rig.channel.readOutbound(as: ByteBuffer.self) { wire.writeBuffer(&part) }
        let bytes = Array(wire.readableBytesView)
        try #require(bytes.count >= 8)
        let head = bytes[0..<2], key = Array(bytes[2..<6])
        #expect(head[0] == 0x88, "a close frame")
        #expect(head[1] & 0x80 != 0, "masked")
        let payload = bytes[6...].enumerated().map { $1 ^ key[$0 % 4] }
        #expect(payload.count == Int(head[1] & 0x7F))
        #expect(Array(payload.prefix(2)) == [0x03, 0xF1], "1009")
        #expect(rig.closes.modes == [.output])
    }

    @Test func thePeersCloseIsReportedForTheConnectionToAnswer() throws {
        let rig = try Rig()
        try rig.receive(.close(4001, "policy ü"), .server(.binary, [1]))
        #expect(rig.sink.events == [.peerClosed(4001, "policy ü")])
        try rig.receive(.server(.connectionClose))
        #expect(rig.sink.events == [.peerClosed(4001, "policy ü")])
        #expect(try rig.sent().isEmpty, "the connection answers, not the frame handler")
        #expect(rig.closes.modes.isEmpty)
    }

    @Test func aCloseWithoutACodeIsReportedAs1005() throws {
        let rig = try Rig()
        try rig.receive(.server(.connectionClose))
        #expect(rig.sink.events == [.peerClosed(1005, "")])
    }

    @Test func theAnswerToOurCloseCompletesTheHandshake() throws {
        let rig = try Rig()
        let ours = WebSocketFrameHandler.closeFrame(code: 1000, reason: "", allocator: rig.channel.allocator)
        try rig.channel.writeOutbound(ours)
        #expect(try rig.sent().map(\.closeCode) == [1000])
        // After our close only its answer counts: no more pings answered, no more messages.
        try rig.receive(.server(.ping, [1]), .server(.text, Array("{}".utf8)), .close(1000))
        #expect(rig.sink.events == [.closeAcknowledged])
        #expect(try rig.sent().isEmpty)
    }

    @Test func decoderErrorsAreViolations() throws {
        let rig = try Rig()
        rig.channel.pipeline.fireErrorCaught(NIOWebSocketError.invalidFrameLength)
        #expect(rig.sink.events == [.violation(1009)])
        // A second decoder error during the drain changes nothing.
        rig.channel.pipeline.fireErrorCaught(NIOWebSocketError.invalidFrameLength)
        #expect(rig.sink.events == [.violation(1009)])
        #expect(try rig.sent().map(\.closeCode) == [1009])
    }

    @Test func otherErrorsReachTheConnectionAndClose() throws {
        let rig = try Rig()
        rig.channel.pipeline.fireErrorCaught(IOError(errnoCode: 104, reason: "read"))
        #expect(rig.sink.events == [.error, .inactive])
        #expect(rig.closes.modes == [.all])
    }
}
