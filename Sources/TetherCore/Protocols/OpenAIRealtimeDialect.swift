/// The OpenAI Realtime API (GA event names; the beta `response.audio.*` names are accepted
/// too). The session is ready once `session.created` has arrived, our `session.update` has
/// been answered (`session.updated`, or an `error`, which is reported but does not stop the
/// session: the server keeps its defaults) and the carried conversation is in it: one
/// `conversation.item.create` per turn, each confirmed (`conversation.item.added`/`done`) or
/// refused (an `error` naming its event) before any mic audio goes out.
public struct OpenAIRealtimeDialect: UpstreamDialect {
    public let name = UpstreamProtocol.openaiRealtime
    public let readyOnUpgrade = false
    let session: JSONObject
    let rate: Int
    public let conversation: ConversationSeed
    private var sessionID: String?
    private var expiresAt: Int64?
    private var created = false
    private var updateAnswered = false
    private var announced = false
    /// Ids of the items we seeded: the brain's reports about them are ours, not new turns.
    private var seedIDs: Set<String> = []
    /// Seeded items neither confirmed nor refused yet.
    private var seedPending: Set<String> = []
    private var seedRefused = 0

    /// Server events we understand and deliberately ignore (not counted as unknown).
    static let ignoredTypes: Set<String> = [
        "conversation.created", "conversation.item.retrieved", "conversation.item.truncated", "conversation.item.deleted",
        "conversation.item.input_audio_transcription.delta",
        "conversation.item.input_audio_transcription.segment", "conversation.item.input_audio_transcription.failed",
        "input_audio_buffer.committed", "input_audio_buffer.cleared", "input_audio_buffer.timeout_triggered",
        "output_audio_buffer.started", "output_audio_buffer.stopped", "output_audio_buffer.cleared",
        "response.output_item.added", "response.output_item.done",
        "response.content_part.added", "response.content_part.done", "response.output_text.delta",
        "response.text.delta", "response.output_audio_transcript.delta", "response.audio_transcript.delta",
        "response.function_call_arguments.delta", "response.mcp_call_arguments.delta", "response.mcp_call_arguments.done",
        "response.mcp_call.in_progress", "response.mcp_call.completed", "response.mcp_call.failed",
        "mcp_list_tools.in_progress", "mcp_list_tools.completed", "mcp_list_tools.failed",
        "rate_limits.updated", "transcription_session.created", "transcription_session.updated",
    ]

    public init(session: JSONObject, rate: Int, conversation: ConversationSeed = .init()) {
        self.session = session
        self.rate = rate
        self.conversation = conversation
    }

    /// `session.update` from `upstream.session`: PCM at our rate both ways, audio output, the
    /// input transcription that makes the person's turns (`conversation.transcribe`), and
    /// whatever the robot builder configured, which wins. `voice` and `turn_detection` may be
    /// given at the top level for convenience; they belong under `audio` in the GA shape.
    public func sessionUpdate() -> JSONValue {
        var user = session
        let voice = user["voice"]
        let turnDetection = user["turn_detection"]
        user["voice"] = nil
        user["turn_detection"] = nil
        let format: JSONValue = ["type": "audio/pcm", "rate": .number(Double(rate))]
        var input: JSONObject = ["format": format]
        if let model = conversation.transcribe { input["transcription"] = ["model": .string(model)] }
        if let turnDetection { input["turn_detection"] = turnDetection }
        var output: JSONObject = ["format": format]
        if let voice { output["voice"] = voice }
        let base: JSONObject = [
            "type": "realtime",
            "output_modalities": ["audio"],
            "audio": .object(["input": .object(input), "output": .object(output)]),
        ]
        return ["type": "session.update", "session": .object(base.merging(user))]
    }

    public func opening() -> [UpstreamMessage] { [.json(sessionUpdate())] }

    private static let appendPrefix = Array(#"{"type":"input_audio_buffer.append","audio":""#.utf8)
    private static let appendSuffix = Array(#""}"#.utf8)

    public func audio(_ pcm: [UInt8]) -> UpstreamMessage {
        var out = Self.appendPrefix
        out.reserveCapacity(Self.appendPrefix.count + Base64.encodedLength(pcm.count) + 2)
        pcm.withUnsafeBytes { Base64.encode($0, into: &out) }
        out.append(contentsOf: Self.appendSuffix)
        return .text(out)
    }

    public func say(_ text: String) -> [UpstreamMessage] {
        let item: JSONValue = [
            "type": "message", "role": "system",
            "content": [["type": "input_text", "text": .string("Say this to the person now, word for word: \(text)")]],
        ]
        return [.json(["type": "conversation.item.create", "item": item]), .json(["type": "response.create"])]
    }

    public func cancelResponse() -> [UpstreamMessage] { [.json(["type": "response.cancel"])] }

    public func truncate(itemID: String?, audioEndMs: Int) -> [UpstreamMessage] {
        guard let itemID else { return [] }
        return [.json(["type": "conversation.item.truncate", "item_id": .string(itemID), "content_index": 0,
                       "audio_end_ms": .number(Double(max(0, audioEndMs)))])]
    }

    public func toolOutput(callID: String, output: String) -> [UpstreamMessage] {
        let item: JSONValue = ["type": "function_call_output", "call_id": .string(callID), "output": .string(output)]
        return [.json(["type": "conversation.item.create", "item": item]), .json(["type": "response.create"])]
    }

    public mutating func decodeText(_ parsed: ParsedJSON) -> [UpstreamInbound] {
        let type: String, value: JSONValue
        switch UpstreamJSONMessage.read(parsed, what: "event") {
        case .message(let t, let v): (type, value) = (t, v)
        case .malformed(let why): return [why]
        }
        switch type {
        case "session.created":
            created = true
            sessionID = value["session"]?["id"]?.stringValue
            if let at = value["session"]?["expires_at"]?.doubleValue, at > 0 { expiresAt = Int64(at) }
            return readiness()
        case "session.updated":
            updateAnswered = true
            return readiness()
        case "conversation.item.added", "conversation.item.created", "conversation.item.done":
            guard let itemID = value["item"]?["id"]?.stringValue else { return [.ignored] }
            if seedIDs.contains(itemID) {
                let answered = seedAnswered(itemID, refused: false)
                return answered.isEmpty ? [.ignored] : answered
            }
            guard type != "conversation.item.done", value["item"]?["type"]?.stringValue == "message",
                let role = value["item"]?["role"]?.stringValue.flatMap(ConversationRole.init(rawValue:))
            else { return [.ignored] }
            return [.itemAdded(itemID: itemID, role: role)]
        case "conversation.item.input_audio_transcription.completed":
            guard let text = value["transcript"]?.stringValue else { return [.malformed("\(type) without transcript")] }
            return [.userTranscript(itemID: value["item_id"]?.stringValue, text: text)]
        case "response.output_audio_transcript.done", "response.audio_transcript.done":
            guard let text = value["transcript"]?.stringValue else { return [.malformed("\(type) without transcript")] }
            return [.assistantTranscript(itemID: value["item_id"]?.stringValue, text: text)]
        case "response.output_text.done", "response.text.done":
            guard let text = value["text"]?.stringValue else { return [.malformed("\(type) without text")] }
            return [.assistantTranscript(itemID: value["item_id"]?.stringValue, text: text)]
        case "response.created":
            return [.responseStarted]
        case "response.done":
            return [.responseDone]
        case "response.output_audio.delta", "response.audio.delta":
            guard case .string(var delta)? = value["delta"] else { return [.malformed("\(type) without delta")] }
            var pcm: [UInt8] = []
            let ok = delta.withUTF8 { Base64.decode(UnsafeRawBufferPointer($0), into: &pcm) }
            guard ok else { return [.malformed("\(type) with invalid base64")] }
            guard pcm.count % 2 == 0 else { return [.malformed("\(type) with an odd number of PCM bytes")] }
            return [.audio(itemID: value["item_id"]?.stringValue, pcm: pcm)]
        case "response.output_audio.done", "response.audio.done":
            return [.audioDone(itemID: value["item_id"]?.stringValue)]
        case "input_audio_buffer.speech_started":
            return [.speechStarted]
        case "input_audio_buffer.speech_stopped":
            return [.speechStopped]
        case "response.function_call_arguments.done":
            guard let callID = value["call_id"]?.stringValue, let name = value["name"]?.stringValue else {
                return [.malformed("function call without call_id or name")]
            }
            return [.toolCall(callID: callID, name: name, arguments: value["arguments"]?.stringValue ?? "{}")]
        case "error":
            let message = value["error"]?["message"]?.stringValue ?? "unspecified error"
            let code = value["error"]?["code"]?.stringValue ?? value["error"]?["type"]?.stringValue
            var events: [UpstreamInbound] = [.error(message: code.map { "\($0): \(message)" } ?? message)]
            if code == "session_expired" { events.append(.sessionExpired(message: message)) }
            if let refused = value["error"]?["event_id"]?.stringValue, seedPending.contains(refused) {
                // A carried turn the brain would not take: counted, and the session goes on.
                return events + seedAnswered(refused, refused: true)
            }
            if created && !updateAnswered {
                // The server refused part of our session.update and keeps its defaults; the
                // session still works, so do not hold the handshake hostage.
                updateAnswered = true
                events += readiness()
            }
            return events
        default:
            return Self.ignoredTypes.contains(type) ? [.ignored] : [.unknown(type: type)]
        }
    }

    public func decodeBinary(_ bytes: [UInt8]) -> [UpstreamInbound] {
        [.malformed("binary frame on an openai-realtime session")]
    }

    /// Once the session is configured: seed the conversation, or, with nothing to carry (or
    /// once every carried turn is answered), announce the session ready.
    private mutating func readiness() -> [UpstreamInbound] {
        guard created, updateAnswered, !announced else { return [.ignored] }
        if seedIDs.isEmpty && !conversation.turns.isEmpty {
            let messages = seedMessages()
            if !messages.isEmpty { return [.reply(messages)] }
        }
        guard seedPending.isEmpty else { return [.ignored] }
        announced = true
        var ready: [UpstreamInbound] = []
        if !seedIDs.isEmpty { ready.append(.seeded(items: seedIDs.count - seedRefused, refused: seedRefused)) }
        ready.append(.sessionReady(id: sessionID, expiresAt: expiresAt))
        return ready
    }

    /// A seeded item was confirmed or refused; once none is left, what the session is ready with.
    private mutating func seedAnswered(_ itemID: String, refused: Bool) -> [UpstreamInbound] {
        guard seedPending.remove(itemID) != nil else { return [] }
        if refused { seedRefused += 1 }
        return seedPending.isEmpty ? readiness() : []
    }

    /// One `conversation.item.create` per carried turn (a tool turn is its call and its
    /// output), in order, appended to the new conversation. Each names its item and its event
    /// with the same id, so a confirmation or an error can be matched to it.
    private mutating func seedMessages() -> [UpstreamMessage] {
        var messages: [UpstreamMessage] = []
        func create(_ item: JSONObject) {
            let id = "tether_\(conversation.tag)_\(seedIDs.count + 1)"
            seedIDs.insert(id)
            seedPending.insert(id)
            var item = item
            item["id"] = .string(id)
            messages.append(.json(["type": "conversation.item.create", "event_id": .string(id), "item": .object(item)]))
        }
        for turn in conversation.turns {
            switch turn {
            case .user(let text):
                create(["type": "message", "role": "user", "content": [["type": "input_text", "text": .string(text)]]])
            case .assistant(let text, let interrupted):
                var item: JSONObject = ["type": "message", "role": "assistant",
                                        "content": [["type": "output_text", "text": .string(text)]]]
                if interrupted { item["status"] = "incomplete" }
                create(item)
            case .tool(let callID, let name, let arguments, let output):
                create(["type": "function_call", "call_id": .string(callID), "name": .string(name), "arguments": .string(arguments)])
                create(["type": "function_call_output", "call_id": .string(callID), "output": .string(output)])
            }
        }
        return messages
    }
}
