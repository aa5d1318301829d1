import NIOCore
import NIOEmbedded
import NIOHTTP1
import NIOWebSocket
import Testing
import TetherCore
@testable import TetherLinux

/// The opening handshake through NIO's client upgrader on an EmbeddedChannel: the request we
/// send, a refusal that keeps its status, a 101 whose first frame shares its packet, and
/// answers that are no upgrade.
@Suite struct WebSocketClientUpgradeTests {
    /// RFC 6455 section 1.3's example key and its accept value.
    static let key = "dGhlIHNhbXBsZSBub25jZQ=="
    static let accept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

    final class Outcome {
        var refusals: [ConnectionFailure] = []
        var upgraded = false
        var result: Result<Bool, any Error>?
    }

    struct Rig {
        let channel = EmbeddedChannel()
        let sink = RecordingFrameSink()
        let outcome = Outcome()
        let result: EventLoopFuture<Bool>

        init() throws {
            let url = try #require(UpstreamURL.parse("ws://127.0.0.1:8080/v1/realtime?model=m"))
            let request = WebSocketClientUpgrade.requestHead(url: url, headers: [HTTPHeader(name: "Authorization", value: "Bearer k")])
            let loop = channel.eventLoop
            let outcome = NIOLoopBound(outcome, eventLoop: loop)
            let sink = NIOLoopBound(sink, eventLoop: loop)
            result = try WebSocketClientUpgrade.configure(
                channel.pipeline.syncOperations, request: request, maxMessageBytes: 1024, requestKey: WebSocketClientUpgradeTests.key,
                upgraded: { channel in
                    outcome.value.upgraded = true
                    try channel.pipeline.syncOperations.addHandler(WebSocketFrameHandler(sink: sink.value, maxMessageBytes: 1024))
                },
                refused: { failure in outcome.value.refusals.append(failure) })
            result.whenComplete { outcome.value.result = $0 }
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8080)).wait()
        }

        func requestText() throws -> String {
            var text = ""
            while let buffer = try channel.readOutbound(as: ByteBuffer.self) { text += String(buffer: buffer) }
            return text
        }

        func answer(_ text: String, then bytes: [UInt8] = []) throws {
            var buffer = ByteBuffer(string: text)
            buffer.writeBytes(bytes)
            defer { channel.embeddedEventLoop.run() }
            try channel.writeInbound(buffer)
        }

        /// The future's value, if settled by now.
        func settled() -> Result<Bool, any Error>? { outcome.result }
    }

    @Test func theRequestCarriesTheKeyHostAndHeaders() throws {
        let rig = try Rig()
        let request = try rig.requestText()
        #expect(request.hasPrefix("GET /v1/realtime?model=m HTTP/1.1\r\n"))
        for line in ["Host: 127.0.0.1:8080", "User-Agent: tetherd/\(TetherVersion.current)", "Authorization: Bearer k",
                     "Sec-WebSocket-Key: \(Self.key)", "Sec-WebSocket-Version: 13", "Upgrade: websocket"] {
            #expect(request.contains("\r\n\(line)\r\n"), "\(line)")
        }
        #expect(request.hasSuffix("\r\n\r\n"))
    }

    @Test(arguments: [(401, "Unauthorized", ConnectionFailure.Kind.refused), (403, "Forbidden", .refused), (503, "Service Unavailable", .transport)])
    func aRefusalKeepsItsStatus(status: Int, phrase: String, kind: ConnectionFailure.Kind) throws {
        let rig = try Rig()
        _ = try rig.requestText()
        try rig.answer("HTTP/1.1 \(status) \(phrase)\r\nContent-Length: 7\r\n\r\nbad key")
        #expect(rig.outcome.refusals == [.httpStatus(status, reason: phrase)])
        #expect(rig.outcome.refusals.first?.kind == kind)
        #expect(rig.outcome.refusals.first?.detail == "upgrade refused: HTTP \(status) \(phrase)")
        #expect(!rig.outcome.upgraded)
        #expect(try rig.settled()?.get() == false)
    }

    @Test func aFrameInThePacketOfThe101ReachesTheFrameHandler() throws {
        let rig = try Rig()
        _ = try rig.requestText()
        try rig.answer("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: \(Self.accept)\r\n\r\n",
                       then: [0x81, 0x02, 0x7B, 0x7D])  // text "{}"
        #expect(rig.outcome.upgraded)
        #expect(try rig.settled()?.get() == true)
        #expect(rig.sink.events == [.text(Array("{}".utf8))])
        #expect(rig.outcome.refusals.isEmpty)
        // The HTTP handlers are gone: a frame written now goes out through the frame encoder.
        try rig.channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .binary, maskKey: [1, 2, 3, 4], data: ByteBuffer(bytes: [9]))).wait()
        let header = try #require(try rig.channel.readOutbound(as: ByteBuffer.self))
        #expect(header.getInteger(at: header.readerIndex, as: UInt8.self) == 0x82)
    }

    @Test(arguments: [
        ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: nope\r\n\r\n",
         "Sec-WebSocket-Accept does not match the key"),
        ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: \(accept)\r\n\r\n",
         "101 without Upgrade: websocket"),
    ])
    func aBroken101FailsWithAReason(answer: String, reason: String) throws {
        let rig = try Rig()
        _ = try rig.requestText()
        #expect(throws: (any Error).self) { try rig.answer(answer) }
        #expect(!rig.outcome.upgraded)
        guard case .failure(let error)? = rig.settled() else {
            Issue.record("the upgrade did not fail")
            return
        }
        #expect("\(error)" == reason)
    }

    @Test func anAnswerThatIsNotHTTPFails() throws {
        let rig = try Rig()
        _ = try rig.requestText()
        #expect(throws: (any Error).self) { try rig.answer("SSH-2.0-OpenSSH_9.2\r\n\r\n") }
        guard case .failure(let error)? = rig.settled() else {
            Issue.record("the upgrade did not fail")
            return
        }
        #expect("\(error)".hasPrefix("not an HTTP response"))
    }
}
