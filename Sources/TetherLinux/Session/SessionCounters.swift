import TetherCore

/// Things that went wrong and were survived, and traffic totals, for `status.session.counters`.
struct SessionCounters {
    var unknownEvents = 0
    var malformedMessages = 0
    var protocolViolations = 0
    var upstreamErrors = 0
    var toolTimeouts = 0
    var uplinkMessages = 0
    var downlinkAudioBytes = 0
    var downlinkPauses = 0
    /// Carried turns a new session answered with an error instead of taking them.
    var carriedTurnsRefused = 0

    var json: JSONObject {
        ["unknown_events": .number(Double(unknownEvents)), "malformed_messages": .number(Double(malformedMessages)),
         "protocol_violations": .number(Double(protocolViolations)), "upstream_errors": .number(Double(upstreamErrors)),
         "tool_timeouts": .number(Double(toolTimeouts)), "uplink_messages": .number(Double(uplinkMessages)),
         "downlink_audio_bytes": .number(Double(downlinkAudioBytes)), "downlink_pauses": .number(Double(downlinkPauses)),
         "carried_turns_refused": .number(Double(carriedTurnsRefused))]
    }
}
