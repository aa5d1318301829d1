/// pcm-stream, for self-hosted brains: binary frames of raw PCM16 LE mono at the configured
/// rate in both directions, JSON text frames for control. See the README for the contract.
public struct PCMStreamDialect: UpstreamDialect {
    public let name = UpstreamProtocol.pcmStream
    public let readyOnUpgrade = true
    let rate: Int
    public let conversation: ConversationSeed

    public init(rate: Int, conversation: ConversationSeed = .init()) {
        self.rate = rate
        self.conversation = conversation
    }

    /// `hello` names the conversation, so a brain can continue it across sessions.
    public func opening() -> [UpstreamMessage] {
        var hello: JSONObject = ["type": "hello", "format": "s16le", "rate": .number(Double(rate)), "channels": 1,
                                 "client": .string("tetherd/\(TetherVersion.current)")]
        if let id = conversation.id { hello["conversation"] = .string(id) }
        return [.json(.object(hello))]
    }

    public func audio(_ pcm: [UInt8]) -> UpstreamMessage { .binary(pcm) }

    public func say(_ text: String) -> [UpstreamMessage] { [.json(["type": "say", "text": .string(text)])] }

    public func cancelResponse() -> [UpstreamMessage] { [.json(["type": "interrupt"])] }

    public func truncate(itemID: String?, audioEndMs: Int) -> [UpstreamMessage] {
        [.json(["type": "played", "played_ms": .number(Double(max(0, audioEndMs)))])]
    }

    public func toolOutput(callID: String, output: String) -> [UpstreamMessage] { [] }

    public mutating func decodeText(_ parsed: ParsedJSON) -> [UpstreamInbound] {
        let type: String, value: JSONValue
        switch UpstreamJSONMessage.read(parsed, what: "control message") {
        case .message(let t, let v): (type, value) = (t, v)
        case .malformed(let why): return [why]
        }
        switch type {
        case "clear": return [.clear]
        case "speech_started": return [.speechStarted]
        case "speech_stopped": return [.speechStopped]
        case "response_done": return [.audioDone(itemID: nil), .responseDone]
        case "error": return [.error(message: value["message"]?.stringValue ?? "unspecified error")]
        case "hello", "ready", "pong": return [.ignored]
        default: return [.unknown(type: type)]
        }
    }

    public func decodeBinary(_ bytes: [UInt8]) -> [UpstreamInbound] {
        guard bytes.count % 2 == 0 else { return [.malformed("binary frame with an odd number of PCM bytes")] }
        return [.audio(itemID: nil, pcm: bytes)]
    }
}
