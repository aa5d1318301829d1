/// How tether talks to one kind of brain. A dialect turns what the session wants to say into
/// WebSocket messages and what the brain says into `UpstreamInbound` events. Pure: no sockets,
/// so every message shape is unit-tested.
public protocol UpstreamDialect: Sendable {
    var name: UpstreamProtocol { get }
    /// True when the session is usable as soon as the upgrade completes; otherwise it waits
    /// for `.sessionReady` (rule 1: handshake completion is an event, never a delay).
    var readyOnUpgrade: Bool { get }
    /// Messages sent right after the upgrade.
    func opening() -> [UpstreamMessage]
    /// The conversation this session continues (its id and the turns it is seeded with).
    var conversation: ConversationSeed { get }
    /// One uplink audio message carrying `pcm` (PCM16 LE mono). Hot path.
    func audio(_ pcm: [UInt8]) -> UpstreamMessage
    func say(_ text: String) -> [UpstreamMessage]
    /// Stop the response being generated (the `interrupt` command).
    func cancelResponse() -> [UpstreamMessage]
    /// Tell the brain how much of an item the listener really heard (barge-in).
    func truncate(itemID: String?, audioEndMs: Int) -> [UpstreamMessage]
    func toolOutput(callID: String, output: String) -> [UpstreamMessage]
    /// Interprets one text message, already parsed (see `InboundMessageQueue` for where);
    /// `ready` tracks the handshake across messages.
    mutating func decodeText(_ parsed: ParsedJSON) -> [UpstreamInbound]
    mutating func decodeBinary(_ bytes: [UInt8]) -> [UpstreamInbound]
}

extension UpstreamDialect {
    /// Parses and interprets one text message.
    public mutating func decodeText(_ bytes: [UInt8]) -> [UpstreamInbound] {
        decodeText(InboundMessageQueue.parse(bytes))
    }

    public mutating func decode(_ message: InboundMessage) -> [UpstreamInbound] {
        switch message {
        case .text(let parsed): return decodeText(parsed)
        case .binary(let bytes): return decodeBinary(bytes)
        }
    }
}

public enum UpstreamMessage: Sendable, Equatable {
    /// UTF-8 JSON, sent as a text frame.
    case text([UInt8])
    case binary([UInt8])

    public static func json(_ value: JSONValue) -> UpstreamMessage { .text(Array(JSONWriter.string(value).utf8)) }

    public var byteCount: Int {
        switch self {
        case .text(let b), .binary(let b): return b.count
        }
    }
}

public enum UpstreamInbound: Sendable, Equatable {
    /// The upstream session exists, accepted our configuration and holds the carried
    /// conversation. `expiresAt`: when the server will close it (Unix seconds), if it says.
    case sessionReady(id: String?, expiresAt: Int64?)
    /// Messages the dialect must send now (seeding the conversation, during the handshake).
    case reply([UpstreamMessage])
    /// The carried turns are in the new session: `items` confirmed, `refused` answered with an error.
    case seeded(items: Int, refused: Int)
    /// The brain placed a message in its conversation (its order among the turns).
    case itemAdded(itemID: String, role: ConversationRole)
    /// What the person said in `itemID`, transcribed.
    case userTranscript(itemID: String?, text: String)
    /// What the robot said in `itemID`: the transcript of its audio, or its text.
    case assistantTranscript(itemID: String?, text: String)
    /// The brain began a response, or finished one (done, cancelled or failed).
    case responseStarted
    case responseDone
    /// The brain says the session hit its maximum duration and is about to close it.
    case sessionExpired(message: String)
    /// Response audio (PCM16 LE mono at the playback rate) for an item.
    case audio(itemID: String?, pcm: [UInt8])
    /// No more audio will come for this item.
    case audioDone(itemID: String?)
    /// The user started talking: barge-in if the robot is speaking.
    case speechStarted
    case speechStopped
    /// pcm-stream: flush playback now.
    case clear
    case toolCall(callID: String, name: String, arguments: String)
    case error(message: String)
    /// A message we understood and have no use for.
    case ignored
    /// A message type we do not know: counted, then ignored.
    case unknown(type: String)
    /// Not valid for this protocol (bad JSON, missing fields, bad base64): counted.
    case malformed(String)
}

public enum UpstreamDialects {
    public static func make(_ kind: UpstreamProtocol, session: JSONObject, rate: Int,
                            conversation: ConversationSeed = .init()) -> any UpstreamDialect {
        switch kind {
        case .openaiRealtime: return OpenAIRealtimeDialect(session: session, rate: rate, conversation: conversation)
        case .pcmStream: return PCMStreamDialect(rate: rate, conversation: conversation)
        }
    }
}

/// What a new upstream session continues: the conversation's id, the turns it is seeded with,
/// and (openai-realtime) the transcription model that turns the person's speech into turns.
public struct ConversationSeed: Sendable, Equatable {
    public var id: String?
    public var turns: [ConversationTurn]
    public var transcribe: String?
    /// Makes the seeded items' ids unique to this connection (the generation).
    public var tag: UInt64

    public init(id: String? = nil, turns: [ConversationTurn] = [], transcribe: String? = nil, tag: UInt64 = 0) {
        self.id = id
        self.turns = turns
        self.transcribe = transcribe
        self.tag = tag
    }
}

/// Both dialects' control messages are JSON objects with a "type": this reads one, or says
/// why it is malformed.
enum UpstreamJSONMessage {
    case message(type: String, value: JSONValue)
    case malformed(UpstreamInbound)

    static func read(_ parsed: ParsedJSON, what: String) -> UpstreamJSONMessage {
        let value: JSONValue
        switch parsed {
        case .success(let v): value = v
        case .failure(let error): return .malformed(.malformed("invalid JSON from upstream: \(error.description)"))
        }
        guard let type = value["type"]?.stringValue else { return .malformed(.malformed("\(what) without a type")) }
        return .message(type: type, value: value)
    }
}
