/// The OpenAI Realtime API (GA event names; the beta `response.audio.*` names are accepted
/// too). The session is ready once `session.created` has arrived and our `session.update`
/// has been answered (`session.updated`, or an `error`, which is reported but does not stop
/// the session: the server keeps its defaults).
public struct OpenAIRealtimeDialect: UpstreamDialect {
    public let name = UpstreamProtocol.openaiRealtime
    public let readyOnUpgrade = false
    let session: JSONObject
    let rate: Int
    private var sessionID: String?
    private var created = false
    private var updateAnswered = false
    private var announced = false

    /// Server events we understand and deliberately ignore (not counted as unknown).
    static let ignoredTypes: Set<String> = [
        "session.updated", "conversation.created", "conversation.item.created", "conversation.item.added",
        "conversation.item.done", "conversation.item.retrieved", "conversation.item.truncated", "conversation.item.deleted",
        "conversation.item.input_audio_transcription.completed", "conversation.item.input_audio_transcription.delta",
        "conversation.item.input_audio_transcription.segment", "conversation.item.input_audio_transcription.failed",
        "input_audio_buffer.committed", "input_audio_buffer.cleared", "input_audio_buffer.timeout_triggered",
        "output_audio_buffer.started", "output_audio_buffer.stopped", "output_audio_buffer.cleared",
        "response.created", "response.done", "response.output_item.added", "response.output_item.done",
        "response.content_part.added", "response.content_part.done", "response.output_text.delta", "response.output_text.done",
        "response.text.delta", "response.text.done", "response.output_audio_transcript.delta",
        "response.output_audio_transcript.done", "response.audio_transcript.delta", "response.audio_transcript.done",
        "response.function_call_arguments.delta", "response.mcp_call_arguments.delta", "response.mcp_call_arguments.done",
        "response.mcp_call.in_progress", "response.mcp_call.completed", "response.mcp_call.failed",
        "mcp_list_tools.in_progress", "mcp_list_tools.completed", "mcp_list_tools.failed",
        "rate_limits.updated", "transcription_session.created", "transcription_session.updated",
    ]

    public init(session: JSONObject, rate: Int) {
        self.session = session
        self.rate = rate
    }

    /// `session.update` from `upstream.session`: PCM at our rate both ways, audio output, and
    /// whatever the robot builder configured. `voice` and `turn_detection` may be given at
    /// the top level for convenience; they belong under `audio` in the GA shape.
    public func sessionUpdate() -> JSONValue {
        var user = session
        let voice = user["voice"]
        let turnDetection = user["turn_detection"]
        user["voice"] = nil
        user["turn_detection"] = nil
        let format: JSONValue = ["type": "audio/pcm", "rate": .number(Double(rate))]
        var input: JSONObject = ["format": format]
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
            return readiness()
        case "session.updated":
            updateAnswered = true
            return readiness()
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

    private mutating func readiness() -> [UpstreamInbound] {
        guard created, updateAnswered, !announced else { return [.ignored] }
        announced = true
        return [.sessionReady(id: sessionID)]
    }
}
