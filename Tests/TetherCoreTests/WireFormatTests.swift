import Testing
@testable import TetherCore

@Suite struct WireFormatTests {
    @Test func base64MatchesRFC4648Vectors() {
        let vectors = [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE="), ("foobar", "Zm9vYmFy")]
        for (plain, encoded) in vectors {
            #expect(Base64.encode(Array(plain.utf8)) == encoded)
            #expect(Base64.decode(encoded) == Array(plain.utf8))
        }
        var rng = SplitMix64(seed: 7)
        for n in 0..<300 {
            let bytes = (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            #expect(Base64.decode(Base64.encode(bytes)) == bytes)
        }
        #expect(Base64.decode("Zm9v!") == nil)
        #expect(Base64.decode("Z") == nil)
        #expect(Base64.decode("Zg===") == nil)
    }

    @Test func hostHeaderOfTheUpgradeRequest() {
        #expect(UpstreamURL.parse("wss://api.example.com/v1/realtime?model=m")?.hostHeader == "api.example.com")
        #expect(UpstreamURL.parse("ws://127.0.0.1:8080/pcm")?.hostHeader == "127.0.0.1:8080")
        #expect(UpstreamURL.parse("ws://[::1]:80/pcm")?.hostHeader == "[::1]")
        #expect(UpstreamURL.parse("wss://[fe80::1]:8443/")?.hostHeader == "[fe80::1]:8443")
        #expect(UpstreamURL.parse("wss://[fe80::1]:8443/x")?.description == "wss://[fe80::1]:8443/x")
    }

    @Test func openAIDialectShapesAndDecoding() throws {
        var dialect = OpenAIRealtimeDialect(session: ["instructions": "hi", "voice": "marin", "turn_detection": ["type": "server_vad"]], rate: 24000)
        let update = dialect.sessionUpdate()
        #expect(update["session"]?["audio"]?["output"]?["voice"] == "marin")
        #expect(update["session"]?["audio"]?["input"]?["turn_detection"]?["type"] == "server_vad")
        #expect(update["session"]?["audio"]?["input"]?["format"]?["rate"] == 24000)
        #expect(update["session"]?["voice"] == nil)
        #expect(update["session"]?["instructions"] == "hi")

        guard case .text(let append) = dialect.audio([1, 2, 3]) else { Issue.record("not text"); return }
        #expect(String(decoding: append, as: UTF8.self) == #"{"type":"input_audio_buffer.append","audio":"AQID"}"#)

        func feed(_ s: String) -> [UpstreamInbound] { dialect.decodeText(Array(s.utf8)) }
        #expect(feed(#"{"type":"session.created","session":{"id":"sess_1"}}"#) == [.ignored])
        #expect(feed(#"{"type":"session.updated","session":{}}"#) == [.sessionReady(id: "sess_1", expiresAt: nil)])
        #expect(feed(#"{"type":"response.output_audio.delta","item_id":"it","delta":"AQI="}"#) == [.audio(itemID: "it", pcm: [1, 2])])
        #expect(feed(#"{"type":"response.audio.delta","item_id":"it","delta":"AQI="}"#) == [.audio(itemID: "it", pcm: [1, 2])])
        #expect(feed(#"{"type":"response.output_audio.delta","delta":"!!"}"#).first.map { if case .malformed = $0 { true } else { false } } == true)
        #expect(feed(#"{"type":"input_audio_buffer.speech_started"}"#) == [.speechStarted])
        #expect(feed(#"{"type":"response.function_call_arguments.done","call_id":"c","name":"wave","arguments":"{}"}"#)
            == [.toolCall(callID: "c", name: "wave", arguments: "{}")])
        #expect(feed(#"{"type":"error","error":{"type":"invalid_request_error","code":"bad","message":"nope"}}"#) == [.error(message: "bad: nope")])
        #expect(feed(#"{"type":"brand.new.event"}"#) == [.unknown(type: "brand.new.event")])
        #expect(feed(#"{"type":"rate_limits.updated"}"#) == [.ignored])
        #expect(feed("not json").first.map { if case .malformed = $0 { true } else { false } } == true)

        let truncate = dialect.truncate(itemID: "it", audioEndMs: 640)
        #expect(truncate == [.json(["type": "conversation.item.truncate", "item_id": "it", "content_index": 0, "audio_end_ms": 640])])
    }

    @Test func sessionUpdateErrorStillCompletesTheHandshake() {
        var dialect = OpenAIRealtimeDialect(session: [:], rate: 24000)
        _ = dialect.decodeText(Array(#"{"type":"session.created","session":{"id":"s"}}"#.utf8))
        let events = dialect.decodeText(Array(#"{"type":"error","error":{"message":"unknown voice"}}"#.utf8))
        #expect(events == [.error(message: "unknown voice"), .sessionReady(id: "s", expiresAt: nil)])
    }

    @Test func pcmStreamDialect() {
        var dialect = PCMStreamDialect(rate: 16000)
        #expect(dialect.readyOnUpgrade)
        #expect(dialect.audio([1, 2]) == .binary([1, 2]))
        #expect(dialect.decodeBinary([1, 2, 3, 4]) == [.audio(itemID: nil, pcm: [1, 2, 3, 4])])
        #expect(dialect.decodeBinary([1, 2, 3]).first.map { if case .malformed = $0 { true } else { false } } == true)
        #expect(dialect.decodeText(Array(#"{"type":"clear"}"#.utf8)) == [.clear])
        #expect(dialect.decodeText(Array(#"{"type":"whatever"}"#.utf8)) == [.unknown(type: "whatever")])
        guard case .text(let hello)? = dialect.opening().first, let parsed = try? JSONParser.parse(bytes: hello) else {
            Issue.record("no hello")
            return
        }
        #expect(parsed["rate"] == 16000)
    }

    @Test func healthLedgerJudgesEveryLoop() {
        var ledger = HealthLedger()
        ledger.register("capture", nowNanos: 0)
        ledger.register("session", nowNanos: 0)
        ledger.beat("capture", nowNanos: 4_000_000_000)
        ledger.beat("session", nowNanos: 1_000_000_000)
        let verdict = ledger.verdict(nowNanos: 6_000_000_001, maxAgeNanos: 5_000_000_000)
        #expect(verdict == .init(healthy: false, stale: ["session"]))
        ledger.unregister("session")
        #expect(ledger.verdict(nowNanos: 6_000_000_000, maxAgeNanos: 5_000_000_000).healthy)
        ledger.beat("ghost", nowNanos: 0)
        #expect(ledger.loops == ["capture"])
        let timing = WatchdogTiming(period: .seconds(10))
        #expect(timing.pingInterval == .seconds(5))
        #expect(timing.maxHeartbeatAge == .seconds(5))
        #expect(timing.heartbeatInterval == .seconds(1))
    }
}
