import NIOCore
import NIOHTTP1
import TetherCore

/// The state of the whole mock: settings, counters, faults in force, open connections and the
/// recorder. It lives on the one event loop and is only touched there (everything that reaches
/// it from a `@Sendable` closure goes through `NIOLoopBound`).
final class MockState {
    let options: MockOptions
    let loop: EventLoop
    let recorder: Recorder?
    var stats = MockStats()
    var faults = FaultSettings()
    var port = 0
    /// The cap of openai-realtime sessions opened from now on. Not a fault, so `reset` keeps it:
    /// it is how the server behaves (the real one has a cap of 60 minutes).
    var sessionCap: SessionCap?

    private(set) var connections: [Int: WebSocketConnection] = [:]
    /// Connection numbers are never reused within a process (even across `reset`), so
    /// recordings never overwrite each other.
    private var nextConnectionNumber = 1
    private var nextEventNumber = 1
    private var nextIDNumber = 1
    /// Transcript prefixes (`u<k>`, `r<n>`) count across the process, like connection numbers,
    /// so no two turns ever read the same.
    private var nextUserTranscriptNumber = 1
    private var nextAudioResponseNumber = 1
    private var flapper: Flapper?
    private var shutdownPromise: EventLoopPromise<Void>?

    init(options: MockOptions, loop: EventLoop, recorder: Recorder?) {
        self.options = options
        self.loop = loop
        self.recorder = recorder
        faults = FaultSettings(options: options)
        sessionCap = SessionCap(seconds: options.maxSessionSeconds)
    }

    // MARK: identifiers

    /// `event_mock_<n>`: the `event_id` of a server event.
    func nextEventID() -> String {
        defer { nextEventNumber += 1 }
        return "event_mock_\(nextEventNumber)"
    }

    /// `<prefix>_mock_<n>` for items, responses, calls.
    func nextID(_ prefix: String) -> String {
        defer { nextIDNumber += 1 }
        return "\(prefix)_mock_\(nextIDNumber)"
    }

    /// `u<k>`: the prefix of the next user transcript's words.
    func nextUserTranscriptPrefix() -> String {
        defer { nextUserTranscriptNumber += 1 }
        return "u\(nextUserTranscriptNumber)"
    }

    /// `r<n>`: the prefix of the next audio response's transcript words.
    func nextAudioResponsePrefix() -> String {
        defer { nextAudioResponseNumber += 1 }
        return "r\(nextAudioResponseNumber)"
    }

    // MARK: upgrades

    /// Decides an upgrade request: which protocol, or which refusal. Counts and records refusals.
    func decideUpgrade(head: HTTPRequestHead, remote: String) -> UpgradeVerdict {
        let target = RequestTarget(head.uri)
        guard let proto = UpstreamProtocol(path: target.path) else {
            stats.upgradesRejected += 1
            recordRejection(head: head, remote: remote, status: 404, reason: "unknown-path")
            return .refused(status: .notFound, reason: "unknown-path",
                            body: Self.errorBody("no upstream at \(target.path); use /v1/realtime or /pcm", code: "not_found"))
        }
        if faults.refuseAuthRemaining != 0 {
            if faults.refuseAuthRemaining > 0 { faults.refuseAuthRemaining -= 1 }
            stats.upgradesRejected += 1
            stats.authRefused += 1
            recordRejection(head: head, remote: remote, status: 401, reason: "refuse-auth")
            Log.info("refused upgrade \(head.uri) from \(remote): refuse-auth fault")
            return .refused(status: .unauthorized, reason: "refuse-auth",
                            body: Self.errorBody("Incorrect API key provided (mock refuse-auth).", code: "invalid_api_key"))
        }
        if let key = options.apiKey, head.headers["authorization"].first != "Bearer \(key)" {
            stats.upgradesRejected += 1
            stats.authRefused += 1
            let present = !head.headers["authorization"].isEmpty
            recordRejection(head: head, remote: remote, status: 401, reason: present ? "bad-api-key" : "missing-api-key")
            Log.info("refused upgrade \(head.uri) from \(remote): \(present ? "wrong" : "no") API key")
            return .refused(status: .unauthorized, reason: "bad-api-key",
                            body: Self.errorBody(present ? "Incorrect API key provided." : "Missing bearer authentication in header",
                                                 code: "invalid_api_key"))
        }
        return .accepted(proto)
    }

    static func errorBody(_ message: String, code: String) -> JSONObject {
        ["error": ["message": .string(message), "type": "invalid_request_error", "code": .string(code), "param": nil]]
    }

    private func recordRejection(head: HTTPRequestHead, remote: String, status: Int, reason: String) {
        recorder?.upgradeRejected(line: [
            "event": "rejected", "n": nil, "ts": .string(WallClock.iso8601Now()),
            "t_ms": .number(Double(WallClock.sinceStartMilliseconds())), "status": .number(Double(status)),
            "reason": .string(reason), "path": .string(head.uri), "remote": .string(remote),
            "authorization_present": .bool(!head.headers["authorization"].isEmpty),
            "headers": .object(Self.headersOfInterest(head.headers)),
        ])
    }

    /// Request headers as recorded: every header but the WebSocket key, and the value of any
    /// credential-looking header (authorization, cookies, keys, tokens, secrets) never written.
    static func headersOfInterest(_ headers: HTTPHeaders) -> JSONObject {
        var out = JSONObject()
        for (name, value) in headers {
            let lower = name.lowercased()
            if lower == "sec-websocket-key" { continue }
            let secret = ["auth", "cookie", "key", "token", "secret", "password"].contains { lower.contains($0) }
            out[lower] = .string(secret ? "[redacted]" : value)
        }
        return out
    }

    // MARK: connections

    func connectionOpened(_ connection: WebSocketConnection) {
        connections[connection.number] = connection
        stats.connectionsTotal += 1
        recorder?.connectionOpened(connection.number, line: connection.openRecord())
        Log.info("conn \(connection.number) open \(connection.path) (\(connection.kind.rawValue)) from \(connection.remote)")
        if let ms = faults.dropAfterMs {
            connection.schedule(afterMs: ms) { [weak connection] in connection?.drop(reset: false) }
        }
        if let ms = faults.stallAfterMs {
            connection.schedule(afterMs: ms) { [weak connection] in connection?.stall(seconds: 0) }
        }
    }

    func takeConnectionNumber() -> Int {
        defer { nextConnectionNumber += 1 }
        return nextConnectionNumber
    }

    func connectionClosed(_ connection: WebSocketConnection) {
        guard connections.removeValue(forKey: connection.number) != nil else { return }
        let close = connection.closeRecord()
        stats.lastCloseCode = close.code
        stats.lastCloseReason = close.reason
        stats.lastClosedBy = close.closedBy
        recorder?.connectionClosed(connection.number, line: close.line)
        let code = close.code.map(String.init) ?? "none"
        Log.info("conn \(connection.number) closed by \(close.closedBy), code \(code)")
        if connections.isEmpty, let promise = shutdownPromise {
            shutdownPromise = nil
            promise.succeed()
        }
    }

    var openConnections: [WebSocketConnection] { connections.keys.sorted().compactMap { connections[$0] } }

    // MARK: control actions

    func drop(reset: Bool) -> Int {
        let open = openConnections
        for connection in open { connection.drop(reset: reset) }
        Log.info("drop: \(open.count) connection(s)")
        return open.count
    }

    func stall(seconds: Double) -> Int {
        let open = openConnections
        for connection in open { connection.stall(seconds: seconds) }
        Log.info("stall \(seconds == 0 ? "until unstall" : "\(seconds)s"): \(open.count) connection(s)")
        return open.count
    }

    func unstall() -> Int {
        let stalled = openConnections.filter(\.isStalled)
        for connection in stalled { connection.unstall() }
        Log.info("unstall: \(stalled.count) connection(s)")
        return stalled.count
    }

    func garbage() -> Int {
        let open = openConnections
        for connection in open { connection.sendGarbage() }
        return open.count
    }

    func close(code: Int, reason: String) -> Int {
        let open = openConnections
        for connection in open { connection.sendClose(code: code, reason: reason) }
        Log.info("close \(code) \(reason): \(open.count) connection(s)")
        return open.count
    }

    func speechStarted() -> Int {
        let open = openConnections
        for connection in open { connection.session?.injectSpeechStarted() }
        return open.count
    }

    func say(ms: Int) -> Int {
        let open = openConnections
        for connection in open { connection.session?.say(ms: ms) }
        return open.count
    }

    func say(pcm: [UInt8]) -> Int {
        let open = openConnections
        for connection in open { connection.session?.say(pcm: pcm) }
        return open.count
    }

    /// Injects a function call on every open openai-realtime connection; returns the call ids.
    func functionCall(name: String, arguments: String) -> [JSONValue] {
        var calls: [JSONValue] = []
        for connection in openConnections {
            guard let session = connection.session as? RealtimeSession else { continue }
            let callID = nextID("call")
            let itemID = session.injectFunctionCall(callID: callID, name: name, arguments: arguments)
            stats.functionCalls.append(FunctionCallRecord(callID: callID, name: name, arguments: arguments,
                                                          connection: connection.number, itemID: itemID))
            if stats.functionCalls.count > MockStats.listCap { stats.functionCalls.removeFirst() }
            calls.append(["call_id": .string(callID), "connection": .number(Double(connection.number)), "item_id": .string(itemID)])
        }
        return calls
    }

    /// A `function_call_output` item arrived from the client.
    func functionCallOutput(callID: String, output: String) {
        if let index = stats.functionCalls.lastIndex(where: { $0.callID == callID }) {
            stats.functionCalls[index].output = output
        }
    }

    func startFlap(seed: UInt64, seconds: Double, gaps: ClosedRange<Int> = FlapPlan.defaultGaps) -> FlapPlan {
        flapper?.stop()
        let plan = FlapPlan(seed: seed, seconds: seconds, gaps: gaps)
        let flapper = Flapper(plan: plan, loop: loop) { [weak self] action in self?.performFlap(action) }
        self.flapper = flapper
        flapper.start()
        Log.info("flap: seed \(seed), \(seconds)s, \(plan.steps.count) actions planned")
        return plan
    }

    private func performFlap(_ action: FlapAction) {
        Log.info("flap: \(action.rawValue)")
        switch action {
        case .drop: _ = drop(reset: false)
        case .stall: _ = stall(seconds: 3)
        case .refuseAuth: if faults.refuseAuthRemaining >= 0 { faults.refuseAuthRemaining += 1 }
        case .close1011: _ = close(code: 1011, reason: "mock flap")
        }
    }

    func reset() {
        flapper?.stop()
        flapper = nil
        _ = unstall()
        faults = FaultSettings()
        stats = MockStats()
        Log.info("reset: faults cleared, counters zeroed")
    }

    // MARK: status

    func statusJSON() -> JSONObject {
        var status: JSONObject = [
            "ok": true, "port": .number(Double(port)), "uptime_ms": .number(Double(WallClock.sinceStartMilliseconds())),
            "connections_open": .number(Double(connections.count)),
        ]
        for (key, value) in stats.json { status[key] = value }
        status["echo"] = .bool(options.echo)
        status["sample_rate"] = .number(Double(options.sampleRate))
        status["max_session_seconds"] = sessionCap.map { .number($0.seconds) } ?? .null
        var faultsJSON = faults.json
        faultsJSON["stalled_connections"] = .number(Double(connections.values.filter(\.isStalled).count))
        if let flapper {
            faultsJSON["flap"] = [
                "active": .bool(flapper.isActive), "seed": .number(Double(flapper.plan.seed)),
                "seconds": .number(flapper.plan.seconds), "planned": .number(Double(flapper.plan.steps.count)),
                "done": .number(Double(flapper.nextIndex)), "last_action": JSONValue(flapper.lastAction?.rawValue),
                "counts": .object(JSONObject(FlapAction.allCases.map { ($0.rawValue, .number(Double(flapper.counts[$0] ?? 0))) })),
            ]
        } else {
            faultsJSON["flap"] = nil
        }
        status["faults"] = .object(faultsJSON)
        status["connections"] = .array(openConnections.map { .object($0.statusRecord()) })
        return status
    }

    // MARK: shutdown

    /// Sends 1001 to every open connection and completes once all are gone (or after `grace`).
    func shutdown(grace: TimeAmount) -> EventLoopFuture<Void> {
        flapper?.stop()
        let promise = loop.makePromise(of: Void.self)
        guard !connections.isEmpty else {
            promise.succeed()
            return promise.futureResult
        }
        shutdownPromise = promise
        for connection in openConnections {
            connection.unstall()
            connection.sendClose(code: 1001, reason: "mock shutting down")
        }
        loop.assumeIsolated().scheduleTask(in: grace) { [weak self] in
            guard let self else { return }
            for connection in self.openConnections { connection.drop(reset: false) }
            self.shutdownPromise = nil
            promise.succeed()
        }
        return promise.futureResult
    }
}

/// Faults in force for new connections and upgrades.
struct FaultSettings {
    /// Upgrades still to refuse with 401; -1 refuses forever.
    var refuseAuthRemaining = 0
    var slowHandshakeMs = 0
    var slowHandshakePhase = HandshakePhase.upgrade
    var dropAfterMs: Int?
    var stallAfterMs: Int?

    init() {}

    init(options: MockOptions) {
        refuseAuthRemaining = options.refuseAuth
        slowHandshakeMs = options.slowHandshakeMs
        slowHandshakePhase = options.slowHandshakePhase
        dropAfterMs = options.dropAfterMs
        stallAfterMs = options.stallAfterMs
    }

    var json: JSONObject {
        [
            "refuse_auth_remaining": .number(Double(refuseAuthRemaining)),
            "slow_handshake_ms": .number(Double(slowHandshakeMs)),
            "slow_handshake_phase": .string(slowHandshakePhase.rawValue),
            "drop_after_ms": dropAfterMs.map { .number(Double($0)) } ?? .null,
            "stall_after_ms": stallAfterMs.map { .number(Double($0)) } ?? .null,
        ]
    }
}

/// What to do with an upgrade request.
enum UpgradeVerdict {
    case accepted(UpstreamProtocol)
    case refused(status: HTTPResponseStatus, reason: String, body: JSONObject)
}
