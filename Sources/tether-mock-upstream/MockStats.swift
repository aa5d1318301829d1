import TetherCore

/// Counters shown by `GET /mock/status`; `POST /mock/reset` zeroes them.
struct MockStats {
    var connectionsTotal = 0
    var upgradesRejected = 0
    var authRefused = 0
    var receivedPCMBytes = 0
    var sentPCMBytes = 0
    var binaryFramesReceived = 0
    var eventsReceived = 0
    var invalidEvents = 0
    var unknownEvents = 0
    var errorsSent = 0
    var pingsAnswered = 0
    var pongsReceived = 0
    var protocolErrors = 0
    var speechStarted = 0
    var speechStopped = 0
    var responsesStarted = 0
    var responsesCompleted = 0
    var responsesCancelled = 0
    var sessionsExpired = 0
    var lastCloseCode: Int?
    var lastCloseReason: String?
    var lastClosedBy: String?
    var functionCalls: [FunctionCallRecord] = []
    var truncations: [JSONValue] = []
    var pcmControl: [JSONValue] = []
    /// What a continuity test compares: the items a client seeded, the pcm-stream hellos, the
    /// transcripts the mock sent.
    var itemsCreated: [JSONValue] = []
    var hellos: [JSONValue] = []
    var transcripts: [JSONValue] = []

    /// Lists are capped so a soak run cannot grow the mock without bound.
    static let listCap = 100
    /// The continuity lists hold more: a test of many rotated sessions reads them all at the end.
    static let longListCap = 2000

    mutating func remember(_ value: JSONValue, in list: WritableKeyPath<MockStats, [JSONValue]>, cap: Int = listCap) {
        self[keyPath: list].append(value)
        if self[keyPath: list].count > cap { self[keyPath: list].removeFirst() }
    }

    var json: JSONObject {
        [
            "connections_total": .number(Double(connectionsTotal)),
            "upgrades_rejected": .number(Double(upgradesRejected)),
            "auth_refused": .number(Double(authRefused)),
            "received_pcm_bytes": .number(Double(receivedPCMBytes)),
            "sent_pcm_bytes": .number(Double(sentPCMBytes)),
            "binary_frames_received": .number(Double(binaryFramesReceived)),
            "events_received": .number(Double(eventsReceived)),
            "invalid_events": .number(Double(invalidEvents)),
            "unknown_events": .number(Double(unknownEvents)),
            "errors_sent": .number(Double(errorsSent)),
            "pings_answered": .number(Double(pingsAnswered)),
            "pongs_received": .number(Double(pongsReceived)),
            "protocol_errors": .number(Double(protocolErrors)),
            "speech_started": .number(Double(speechStarted)),
            "speech_stopped": .number(Double(speechStopped)),
            "responses_started": .number(Double(responsesStarted)),
            "responses_completed": .number(Double(responsesCompleted)),
            "responses_cancelled": .number(Double(responsesCancelled)),
            "sessions_expired": .number(Double(sessionsExpired)),
            "last_close_code": lastCloseCode.map { .number(Double($0)) } ?? .null,
            "last_close_reason": JSONValue(lastCloseReason),
            "last_closed_by": JSONValue(lastClosedBy),
            "function_calls": .array(functionCalls.map { .object($0.json) }),
            "truncations": .array(truncations),
            "pcm_control": .array(pcmControl),
            "items_created": .array(itemsCreated),
            "hellos": .array(hellos),
            "transcripts": .array(transcripts),
        ]
    }
}

/// A function call the mock injected, and the output the client sent back for it.
struct FunctionCallRecord {
    var callID: String
    var name: String
    var arguments: String
    var connection: Int
    var itemID: String
    var output: String?

    var json: JSONObject {
        [
            "call_id": .string(callID), "name": .string(name), "arguments": .string(arguments),
            "connection": .number(Double(connection)), "item_id": .string(itemID), "output": JSONValue(output),
        ]
    }
}
