import NIOCore
import NIOHTTP1
import TetherCore

/// The `POST /mock/<action>` endpoints: parse the query, act on the state, answer JSON.
/// Every answer has `ok`; actions on connections say how many they touched (`connections`).
enum ControlActions {
    static func perform(_ action: String, target: RequestTarget, body: ByteBuffer, state: MockState)
        -> (HTTPResponseStatus, JSONObject)
    {
        switch action {
        case "drop":
            let reset = target.query["rst"] == "1" || target.query["rst"] == "true"
            return ok(["connections": count(state.drop(reset: reset))])

        case "stall":
            let seconds = target.double("seconds") ?? 0
            guard seconds >= 0, seconds.isFinite else { return bad("seconds must be >= 0 (0: until unstall)") }
            return ok(["connections": count(state.stall(seconds: seconds)), "seconds": .number(seconds)])

        case "unstall":
            return ok(["connections": count(state.unstall())])

        case "refuse-auth":
            guard let n = target.int("count"), n >= -1 else { return bad("count must be an integer >= -1") }
            state.faults.refuseAuthRemaining = n
            Log.info("refuse-auth: \(n == -1 ? "forever" : "next \(n) upgrade(s)")")
            return ok(["refuse_auth_remaining": count(n)])

        case "slow-handshake":
            guard let ms = target.int("ms"), ms >= 0 else { return bad("ms must be an integer >= 0") }
            let phaseText = target.query["phase"] ?? HandshakePhase.upgrade.rawValue
            guard let phase = HandshakePhase(rawValue: phaseText) else { return bad("phase must be upgrade or session") }
            state.faults.slowHandshakeMs = ms
            state.faults.slowHandshakePhase = phase
            Log.info("slow-handshake: \(ms) ms at \(phase.rawValue)")
            return ok(["slow_handshake_ms": count(ms), "phase": .string(phase.rawValue)])

        case "garbage":
            return ok(["connections": count(state.garbage())])

        case "close":
            let code = target.int("code") ?? 1000
            guard (1000...4999).contains(code) else { return bad("code must be in 1000...4999") }
            let reason = target.query["reason"] ?? ""
            guard reason.utf8.count <= 123 else { return bad("reason must be at most 123 bytes") }
            return ok(["connections": count(state.close(code: code, reason: reason)), "code": count(code)])

        case "function-call":
            guard let name = target.query["name"], !name.isEmpty else { return bad("name is required") }
            let arguments = target.query["arguments"]
                ?? (body.readableBytes > 0 ? String(decoding: body.readableBytesView, as: UTF8.self) : "{}")
            guard (try? JSONParser.parse(arguments)) != nil else { return bad("arguments must be JSON") }
            let calls = state.functionCall(name: name, arguments: arguments)
            return ok(["connections": count(calls.count), "call_id": calls.first?["call_id"] ?? .null, "calls": .array(calls)])

        case "speech-started":
            return ok(["connections": count(state.speechStarted())])

        case "say" where body.readableBytes > 0:
            // A raw PCM16 LE mono body at the mock's rate is the response's audio (tests make the
            // robot say something real: speech, noise, for the echo canceller).
            guard body.readableBytes % 2 == 0 else { return bad("the PCM body must be whole 16-bit samples") }
            let pcm = Array(body.readableBytesView)
            return ok(["connections": count(state.say(pcm: pcm)), "bytes": count(pcm.count)])

        case "say":
            let ms = target.int("ms") ?? 1000
            guard (1...3_600_000).contains(ms) else { return bad("ms must be in 1...3600000") }
            return ok(["connections": count(state.say(ms: ms)), "ms": count(ms)])

        case "flap":
            guard let seconds = target.double("seconds"), seconds > 0, seconds <= 86400 else {
                return bad("seconds must be in (0, 86400]")
            }
            let seed = target.query["seed"].flatMap { UInt64($0) } ?? state.options.seed
            let minGap = target.int("min_gap_ms") ?? FlapPlan.defaultGaps.lowerBound
            let maxGap = target.int("max_gap_ms") ?? FlapPlan.defaultGaps.upperBound
            guard minGap >= 10, maxGap >= minGap, maxGap <= 60_000 else {
                return bad("need 10 <= min_gap_ms <= max_gap_ms <= 60000")
            }
            let plan = state.startFlap(seed: seed, seconds: seconds, gaps: minGap...maxGap)
            let steps: [JSONValue] = plan.steps.map { ["at_ms": .number(Double($0.atMs)), "action": .string($0.action.rawValue)] }
            return ok(["seed": .number(Double(seed)), "seconds": .number(seconds), "plan": .array(steps)])

        case "max-session":
            guard let seconds = target.double("seconds"), seconds >= 0, seconds <= SessionCap.maxSeconds else {
                return bad("seconds must be in [0, \(Int(SessionCap.maxSeconds))] (0: no cap)")
            }
            state.sessionCap = SessionCap(seconds: seconds)
            Log.info("max-session: \(state.sessionCap.map { "\($0.durationText) for new sessions" } ?? "off")")
            return ok(["max_session_seconds": state.sessionCap.map { .number($0.seconds) } ?? .null])

        case "reset":
            state.reset()
            return ok([:])

        default:
            return (.notFound, MockState.errorBody("unknown control action '\(action)'", code: "not_found"))
        }
    }

    private static func count(_ n: Int) -> JSONValue { .number(Double(n)) }

    private static func ok(_ fields: JSONObject) -> (HTTPResponseStatus, JSONObject) {
        var answer: JSONObject = ["ok": true]
        for (key, value) in fields { answer[key] = value }
        return (.ok, answer)
    }

    private static func bad(_ message: String) -> (HTTPResponseStatus, JSONObject) {
        var body = MockState.errorBody(message, code: "invalid_argument")
        body["ok"] = false
        return (.badRequest, body)
    }
}
