import Testing
@testable import TetherCore

/// How a new openai-realtime session is seeded with the carried conversation, and how the
/// dialects report what the conversation is made of. GA shapes are also checked against the
/// openai package's types by the system tests.
@Suite struct ConversationSeedingTests {
    static let turns: [ConversationTurn] = [
        .user("Where is the kitchen?"),
        .assistant("Down the hall on the", interrupted: true),
        .tool(callID: "call_1", name: "wave", arguments: #"{"hand":"left"}"#, output: #"{"done":true}"#),
    ]

    static func dialect(_ turns: [ConversationTurn] = turns, session: JSONObject = [:], transcribe: String? = "gpt-4o-mini-transcribe")
        -> OpenAIRealtimeDialect
    {
        OpenAIRealtimeDialect(session: session, rate: 24000,
                              conversation: ConversationSeed(id: "conv_x", turns: turns, transcribe: transcribe, tag: 7))
    }

    static func feed(_ d: inout OpenAIRealtimeDialect, _ s: String) -> [UpstreamInbound] { d.decodeText(Array(s.utf8)) }

    static func json(_ message: UpstreamMessage) -> JSONValue? {
        guard case .text(let bytes) = message else { return nil }
        return try? JSONParser.parse(bytes: bytes)
    }

    @Test func sessionUpdateAsksForTranscriptionUnlessTheUserChoseOne() {
        #expect(Self.dialect().sessionUpdate()["session"]?["audio"]?["input"]?["transcription"] == ["model": "gpt-4o-mini-transcribe"])
        #expect(Self.dialect(transcribe: nil).sessionUpdate()["session"]?["audio"]?["input"]?["transcription"] == nil)
        let mine = Self.dialect(session: ["audio": ["input": ["transcription": ["model": "whisper-1", "language": "de"]]]])
        #expect(mine.sessionUpdate()["session"]?["audio"]?["input"]?["transcription"] == ["model": "whisper-1", "language": "de"])
        let off = Self.dialect(session: ["audio": ["input": ["transcription": nil]]])
        #expect(off.sessionUpdate()["session"]?["audio"]?["input"]?["transcription"] == .null)
    }

    @Test func theSessionIsReadyOnlyOnceEveryCarriedTurnIsConfirmed() throws {
        var d = Self.dialect()
        #expect(Self.feed(&d, #"{"type":"session.created","session":{"id":"sess_2","expires_at":1800000000}}"#) == [.ignored])
        let seeding = Self.feed(&d, #"{"type":"session.updated","session":{}}"#)
        guard case .reply(let messages)? = seeding.first, seeding.count == 1 else {
            Issue.record("expected the seed, got \(seeding)")
            return
        }
        let events = messages.compactMap(Self.json)
        #expect(events.count == 4, "a tool turn is its call and its output")
        #expect(events.allSatisfy { $0["type"] == "conversation.item.create" })
        let ids = events.compactMap { $0["item"]?["id"]?.stringValue }
        #expect(ids == ["tether_7_1", "tether_7_2", "tether_7_3", "tether_7_4"])
        #expect(events.map { $0["event_id"]?.stringValue } == ids, "errors name the event: the same id")
        #expect(ids.allSatisfy { $0.utf8.count <= 32 })
        #expect(events[0]["item"] == ["id": "tether_7_1", "type": "message", "role": "user",
                                      "content": [["type": "input_text", "text": "Where is the kitchen?"]]])
        #expect(events[1]["item"] == ["id": "tether_7_2", "type": "message", "role": "assistant", "status": "incomplete",
                                      "content": [["type": "output_text", "text": "Down the hall on the"]]])
        #expect(events[2]["item"] == ["id": "tether_7_3", "type": "function_call", "call_id": "call_1", "name": "wave",
                                      "arguments": #"{"hand":"left"}"#])
        #expect(events[3]["item"] == ["id": "tether_7_4", "type": "function_call_output", "call_id": "call_1",
                                      "output": #"{"done":true}"#])

        // Confirmations (added, then done) are the dialect's own: not new turns.
        #expect(Self.feed(&d, #"{"type":"conversation.item.added","item":{"id":"tether_7_1","type":"message","role":"user"}}"#) == [.ignored])
        #expect(Self.feed(&d, #"{"type":"conversation.item.done","item":{"id":"tether_7_1","type":"message","role":"user"}}"#) == [.ignored])
        #expect(Self.feed(&d, #"{"type":"conversation.item.added","item":{"id":"tether_7_2","type":"message","role":"assistant"}}"#) == [.ignored])
        // One refused: counted, and the session still starts.
        let refused = Self.feed(&d, #"{"type":"error","error":{"type":"invalid_request_error","code":"bad","message":"no","event_id":"tether_7_3"}}"#)
        #expect(refused == [.error(message: "bad: no")])
        let ready = Self.feed(&d, #"{"type":"conversation.item.created","item":{"id":"tether_7_4","type":"function_call_output"}}"#)
        #expect(ready == [.seeded(items: 3, refused: 1), .sessionReady(id: "sess_2", expiresAt: 1_800_000_000)])
        #expect(Self.feed(&d, #"{"type":"conversation.item.done","item":{"id":"tether_7_4","type":"function_call_output"}}"#) == [.ignored])
    }

    @Test func nothingToCarryMeansReadyAtOnce() {
        var d = Self.dialect([])
        _ = Self.feed(&d, #"{"type":"session.created","session":{"id":"s","expires_at":0}}"#)
        #expect(Self.feed(&d, #"{"type":"session.updated"}"#) == [.sessionReady(id: "s", expiresAt: nil)])
    }

    @Test func whatTheConversationIsMadeOfIsReported() {
        var d = Self.dialect([])
        #expect(Self.feed(&d, #"{"type":"conversation.item.added","item":{"id":"i1","type":"message","role":"user"}}"#)
            == [.itemAdded(itemID: "i1", role: .user)])
        #expect(Self.feed(&d, #"{"type":"conversation.item.added","item":{"id":"i2","type":"message","role":"system"}}"#) == [.ignored])
        #expect(Self.feed(&d, #"{"type":"conversation.item.done","item":{"id":"i1","type":"message","role":"user"}}"#) == [.ignored])
        #expect(Self.feed(&d, #"{"type":"conversation.item.input_audio_transcription.completed","item_id":"i1","content_index":0,"transcript":"hi"}"#)
            == [.userTranscript(itemID: "i1", text: "hi")])
        #expect(Self.feed(&d, #"{"type":"response.output_audio_transcript.done","item_id":"i3","transcript":"hello"}"#)
            == [.assistantTranscript(itemID: "i3", text: "hello")])
        #expect(Self.feed(&d, #"{"type":"response.output_text.done","item_id":"i4","text":"typed"}"#)
            == [.assistantTranscript(itemID: "i4", text: "typed")])
        #expect(Self.feed(&d, #"{"type":"response.created","response":{}}"#) == [.responseStarted])
        #expect(Self.feed(&d, #"{"type":"response.done","response":{}}"#) == [.responseDone])
        #expect(Self.feed(&d, #"{"type":"conversation.item.input_audio_transcription.completed","item_id":"i1"}"#).first
            .map { if case .malformed = $0 { true } else { false } } == true)
    }

    @Test func theCapIsRecognised() {
        var d = Self.dialect([])
        let events = Self.feed(&d, #"{"type":"error","error":{"type":"invalid_request_error","code":"session_expired","message":"Your session hit the maximum duration of 60 minutes."}}"#)
        #expect(events == [.error(message: "session_expired: Your session hit the maximum duration of 60 minutes."),
                           .sessionExpired(message: "Your session hit the maximum duration of 60 minutes.")])
        #expect(ConnectionFailure.closed(code: 1001, reason: "Your session hit the maximum duration of 60 minutes.").kind == .expired)
        #expect(ConnectionFailure.closed(code: 1001, reason: "going away").kind == .transport)
    }

    @Test func pcmStreamNamesTheConversationInHello() throws {
        let d = PCMStreamDialect(rate: 16000, conversation: ConversationSeed(id: "conv_y"))
        guard case .text(let hello)? = d.opening().first else { Issue.record("no hello"); return }
        let parsed = try JSONParser.parse(bytes: hello)
        #expect(parsed["conversation"] == "conv_y")
        var d2 = d
        #expect(d2.decodeText(Array(#"{"type":"response_done"}"#.utf8)) == [.audioDone(itemID: nil), .responseDone])
    }
}
