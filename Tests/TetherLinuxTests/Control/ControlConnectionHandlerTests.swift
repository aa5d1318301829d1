import NIOCore
import NIOEmbedded
import Testing
@testable import TetherCore
@testable import TetherLinux

/// The control connection's rules on an in-memory channel (no socket, milliseconds): answers
/// come back in request order whatever each command takes, a flood is refused with `busy`, bad
/// lines get a clear error and the connection lives on, an idle client is closed.
@Suite struct ControlConnectionHandlerTests {
    /// `say N` answers after N milliseconds, so a later request could finish first.
    struct SlowCommands: ControlCommandHandler {
        func handle(_ command: ControlCommand, peer: PeerCredentials) async -> Result<JSONValue?, ControlError> {
            if case .say(let text) = command, let ms = Int(text) {
                try? await Task.sleep(for: .milliseconds(ms))
                return .success(.string(text))
            }
            return .failure(ControlError(.unavailable, "not in this test"))
        }
    }

    static func channel(_ commands: any ControlCommandHandler, limits: ControlConnectionHandler.Limits = .init(),
                        stats: ControlServerStats = ControlServerStats()) async throws -> NIOAsyncTestingChannel {
        let events = EventBus()
        let channel = try await NIOAsyncTestingChannel { channel in
            try channel.pipeline.syncOperations.addHandlers([
                ByteToMessageHandler(ControlLineDecoder(maxLength: ControlServer.maxLineLength)),
                ControlConnectionHandler(peer: PeerCredentials(pid: 1, uid: 0, gid: 0), commands: commands, events: events,
                                         limits: limits, stats: stats),
            ])
        }
        try await channel.connect(to: try SocketAddress(unixDomainSocketPath: "/control.sock"))
        return channel
    }

    static func send(_ channel: NIOAsyncTestingChannel, _ text: String) async throws {
        try await channel.writeInbound(ByteBuffer(string: text))
    }

    /// The next line written back, parsed.
    static func answer(_ channel: NIOAsyncTestingChannel) async throws -> JSONValue {
        var buffer: ByteBuffer = try await channel.waitForOutboundWrite(as: ByteBuffer.self)
        let text = buffer.readString(length: buffer.readableBytes) ?? ""
        return try JSONParser.parse(String(text.dropLast()))
    }

    @Test func pipelinedRequestsAreAnsweredInTheirOrder() async throws {
        let channel = try await Self.channel(SlowCommands())
        try await Self.send(channel, #"{"id":1,"cmd":"say","text":"60"}"# + "\n" + #"{"id":2,"cmd":"say","text":"1"}"# + "\n")
        try await Self.send(channel, #"{"id":3,"cmd":"say","text":"20"}"# + "\n")
        var ids: [Int] = []
        for _ in 0..<3 { ids.append(try await Self.answer(channel)["id"]?.intValue ?? -1) }
        #expect(ids == [1, 2, 3])
        _ = try? await channel.finish()
    }

    @Test func aFloodOfPipelinedLinesIsRefusedBusyAndCounted() async throws {
        let stats = ControlServerStats()
        let channel = try await Self.channel(SlowCommands(), stats: stats)
        // The first waits 200 ms, so 64 more queue behind it and the next ones are refused.
        var lines = #"{"id":0,"cmd":"say","text":"200"}"# + "\n"
        for id in 1...70 { lines += #"{"id":\#(id),"cmd":"say","text":"0"}"# + "\n" }
        try await Self.send(channel, lines)
        var refused = 0
        var answered = 0
        while answered + refused < 71 {
            let answer = try await Self.answer(channel)
            if answer["error"]?["code"]?.stringValue == "busy" { refused += 1 } else { answered += 1 }
        }
        #expect(answered == 65 && refused == 6)
        #expect(stats.json["flood_rejected"] == 6)
        _ = try? await channel.finish()
    }

    @Test(arguments: [("not json\n", "invalid_json"), (#"{"id":7,"cmd":"fly"}"# + "\n", "unknown_command"),
                      (#"{"id":8}"# + "\n", "invalid_request")])
    func aBadLineGetsAClearErrorAndTheConnectionLivesOn(line: String, code: String) async throws {
        let channel = try await Self.channel(SlowCommands())
        try await Self.send(channel, line)
        let answer = try await Self.answer(channel)
        #expect(answer["ok"] == false)
        #expect(answer["error"]?["code"]?.stringValue == code)
        try await Self.send(channel, #"{"id":9,"cmd":"say","text":"0"}"# + "\n")
        #expect(try await Self.answer(channel)["id"]?.intValue == 9)
        _ = try? await channel.finish()
    }

    @Test func aLineOverTheLimitIsDiscardedWithAnError() async throws {
        let channel = try await Self.channel(SlowCommands())
        try await Self.send(channel, String(repeating: "x", count: ControlServer.maxLineLength + 10) + "\n")
        let answer = try await Self.answer(channel)
        #expect(answer["error"]?["code"]?.stringValue == "line_too_long")
        _ = try? await channel.finish()
    }

    @Test func anIdleClientIsClosedAfterTheTimeout() async throws {
        let stats = ControlServerStats()
        let channel = try await Self.channel(SlowCommands(), limits: .init(idleTimeout: .seconds(60)), stats: stats)
        await channel.testingEventLoop.advanceTime(by: .seconds(59))
        #expect(channel.isActive)
        await channel.testingEventLoop.advanceTime(by: .seconds(2))
        try await channel.closeFuture.get()
        #expect(!channel.isActive)
        #expect(stats.json["idle_closed"] == 1)
    }
}
