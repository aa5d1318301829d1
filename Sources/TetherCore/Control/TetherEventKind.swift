/// Every event tetherd publishes (DESIGN.md "Events", the README's table), each case with its
/// name, topic and payload defined here and nowhere else: call sites say what happened, and the
/// wire form robot processes parse follows from the case. Payload keys keep the order the
/// control socket has always written them in.
public enum TetherEventKind: Sendable, Equatable {
    case sessionState(from: SessionState, to: SessionState, reason: String)
    /// `sessionID` is nil for a brain that names no session (pcm-stream): `"id":null`.
    case sessionLive(sessionID: String?, generation: UInt64, afterMs: Int64)
    case linkBlip(durationMs: Int64)
    case sessionLost(reason: String)
    case networkOnline(NetworkView)
    /// Carries nothing: there is no interface to name.
    case networkOffline
    case networkChange(NetworkView)
    case speechStarted
    case speechStopped
    case responseAudioStarted(itemID: String?)
    /// `interrupted` is set for the one item a barge-in cut short, with how much was played.
    case responseAudioDone(itemID: String?, interruptedAfterMs: Int? = nil)
    case audioLevel(micDBFS: Double, outDBFS: Double)
    case audioXrun(AudioDirection)
    case toolCall(callID: String, name: String, arguments: String)
    /// The conversation moved to a new upstream session (rule 13). `from`/`to` are the
    /// sessions' ids; `forced` when the switch was not at a quiet moment of tether's choosing.
    case conversationRotated(from: String?, to: String?, carriedItems: Int, waitedMs: Int64, reason: RotationReason)
    /// The conversation starts afresh (`forget`, `max_age`).
    case conversationReset(reason: String)
    case error(code: EventErrorCode, message: String)

    public var name: String {
        switch self {
        case .sessionState: "session.state"
        case .sessionLive: "session.live"
        case .linkBlip: "link.blip"
        case .sessionLost: "session.lost"
        case .networkOnline: "network.online"
        case .networkOffline: "network.offline"
        case .networkChange: "network.change"
        case .speechStarted: "speech.started"
        case .speechStopped: "speech.stopped"
        case .responseAudioStarted: "response.audio.started"
        case .responseAudioDone: "response.audio.done"
        case .audioLevel: "audio.level"
        case .audioXrun: "audio.xrun"
        case .toolCall: "tool.call"
        case .conversationRotated: "conversation.rotated"
        case .conversationReset: "conversation.reset"
        case .error: "error"
        }
    }

    /// What a subscriber asks for. Decided per case, not from the name: `link.blip` is a
    /// session event, `response.audio.*` audio ones.
    public var topic: EventTopic {
        switch self {
        case .sessionState, .sessionLive, .linkBlip, .sessionLost, .conversationRotated, .conversationReset: .session
        case .networkOnline, .networkOffline, .networkChange: .network
        case .responseAudioStarted, .responseAudioDone, .audioLevel, .audioXrun: .audio
        case .speechStarted, .speechStopped: .speech
        case .toolCall: .tool
        case .error: .error
        }
    }

    /// The `data` object of the control-socket line.
    public var data: JSONObject {
        switch self {
        case .sessionState(let from, let to, let reason):
            return ["from": .string(from.rawValue), "to": .string(to.rawValue), "reason": .string(reason)]
        case .sessionLive(let sessionID, let generation, let afterMs):
            return ["id": JSONValue(sessionID), "generation": .number(Double(generation)), "after_ms": .number(Double(afterMs))]
        case .linkBlip(let durationMs):
            return ["duration_ms": .number(Double(durationMs))]
        case .sessionLost(let reason):
            return ["reason": .string(reason)]
        case .networkOnline(let view), .networkChange(let view):
            return [
                "default_interface": JSONValue(view.defaultInterface),
                "kind": JSONValue(view.kind?.rawValue),
                "addresses": .array(view.addresses.map { .string($0) }),
            ]
        case .networkOffline, .speechStarted, .speechStopped:
            return [:]
        case .responseAudioStarted(let itemID):
            return ["item_id": JSONValue(itemID)]
        case .responseAudioDone(let itemID, let interruptedAfterMs):
            var data: JSONObject = ["item_id": JSONValue(itemID)]
            if let interruptedAfterMs {
                data["interrupted"] = true
                data["played_ms"] = JSONValue(interruptedAfterMs)
            }
            return data
        case .audioLevel(let mic, let out):
            return ["mic_dbfs": .number(mic), "out_dbfs": .number(out)]
        case .audioXrun(let direction):
            return ["direction": .string(direction.rawValue)]
        case .toolCall(let callID, let name, let arguments):
            return ["call_id": .string(callID), "name": .string(name), "arguments": .string(arguments)]
        case .conversationRotated(let from, let to, let carriedItems, let waitedMs, let reason):
            return ["from": JSONValue(from), "to": JSONValue(to), "carried_items": .number(Double(carriedItems)),
                    "waited_ms": .number(Double(waitedMs)), "forced": .bool(reason.forced), "reason": .string(reason.rawValue)]
        case .conversationReset(let reason):
            return ["reason": .string(reason)]
        case .error(let code, let message):
            return ["code": .string(code.rawValue), "message": .string(message)]
        }
    }
}

/// Which audio thread an `audio.xrun` came from.
public enum AudioDirection: String, Sendable, Equatable, CaseIterable {
    case capture, playback
}

/// The `code` of an `error` event: a robot process may switch on it.
public enum EventErrorCode: String, Sendable, Equatable, CaseIterable {
    /// A `tool.call` nobody answered within `upstream.tool_timeout`.
    case toolTimeout = "tool_timeout"
    /// The brain reported an error of its own.
    case upstreamError = "upstream_error"
    /// A reload found a configuration it refused (the running one stays).
    case configError = "config_error"
}
