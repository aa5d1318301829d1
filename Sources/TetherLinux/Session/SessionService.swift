import Dispatch
import Logging
import NIOCore
import Synchronization
import TetherCore

/// The upstream session: runs `SessionMachine` and performs what it decides, owns the
/// connections, moves mic audio from the uplink queue to the socket and response audio to
/// the speaker, and turns what happens into events.
///
/// Everything but the capture hand-off runs on one event loop, the same loop the WebSocket
/// channels use, so connection callbacks need no locks and no hops. Public methods may be
/// called from any thread; they hop onto the loop.
public final class SessionService: @unchecked Sendable {
    public let loop: any EventLoop
    private let events: EventBus
    private let logger: Logger
    private let heartbeat: Heartbeat
    private let heartbeatInterval: Duration

    // Shared with the capture thread.
    private let uplink: Mutex<UplinkQueue>
    private let uplinkMode = Atomic<UInt8>(UplinkMode.buffer.rawValue)
    private let pumpScheduled = Atomic<Bool>(false)
    private let snapshot = Mutex(SessionSnapshot())

    // Confined to `loop`.
    private var settings: SessionSettings
    private var machine: SessionMachine
    private var connections: [UInt64: UpstreamConnection] = [:]
    private var dialects: [UInt64: any UpstreamDialect] = [:]
    /// Connections we closed that may still be finishing their close handshake.
    private var closing: [ObjectIdentifier: UpstreamConnection] = [:]
    /// The connection that carried the uplink frames not yet acknowledged.
    private var audioConnection: UInt64?
    /// A replay window is full and its ping is out: sending resumes on the pong.
    private var awaitingWindowAck = false
    private var wakeTimer: Scheduled<Void>?
    private var heartbeatTask: RepeatedTask?
    private var pendingTools: [String: (generation: UInt64, timer: Scheduled<Void>)] = [:]
    /// Reading follows the speaker (see `DownlinkFlow`); its timer runs while reading is paused.
    private var downlink = DownlinkFlow(maxBufferMs: 120_000)
    private var downlinkTimer: RepeatedTask?
    private var counters = SessionCounters()
    private var sessionID: String?
    private var lastError: String?
    private weak var audio: (any SessionAudio)?

    enum UplinkMode: UInt8 { case discard, buffer, live }

    /// Uplink messages carry at most this much PCM: one period while streaming live, bigger
    /// chunks while a backlog is replayed.
    static let maxChunkBytes = 32 * 1024
    /// While a backlog is replayed, at most this much may be in flight unacknowledged: a ping
    /// then follows and the rest waits for its pong. The ping is never stuck behind more than
    /// this, so a slow link is not mistaken for a dead one, and a connection that dies mid-
    /// replay leaves at most this much to send again.
    static let replayWindowBytes = 64 * 1024
    /// A backlog is more queued audio than this.
    static let backlogMs: Int64 = 200
    /// Live uplink audio is sent once this much is queued.
    static let uplinkBatchMs: Int64 = 40

    public init(settings: SessionSettings, loop: any EventLoop, events: EventBus, health: HealthRegistry,
                heartbeatInterval: Duration, logger: Logger) {
        self.settings = settings
        self.loop = loop
        self.events = events
        self.logger = logger
        self.heartbeatInterval = heartbeatInterval
        self.heartbeat = health.register("session")
        self.machine = SessionMachine(settings: .init(link: settings.link))
        self.uplink = Mutex(UplinkQueue(limits: .init(settings.link.buffer)))
        let protocolName = settings.upstream.protocolKind.rawValue
        snapshot.withLock { $0.protocolName = protocolName }
    }

    /// Wire the speaker once at start-up.
    public func attach(audio: any SessionAudio) {
        loop.execute { self.audio = audio }
    }

    // MARK: Lifecycle

    public func start() {
        loop.execute {
            let interval = TimeAmount.nanoseconds(self.heartbeatInterval.nanoseconds)
            self.heartbeatTask = self.loop.scheduleRepeatedTask(initialDelay: .zero, delay: interval) { _ in self.heartbeat.beat() }
            self.perform(self.machine.start(now: MonoClock.now()))
        }
    }

    /// Sends close frames at once and waits (at most the close wait) for the peers.
    public func stop() async {
        let pending: [EventLoopFuture<Void>] = (try? await loop.submit { () -> [EventLoopFuture<Void>] in
            self.perform(self.machine.stop(now: MonoClock.now()))
            for (_, entry) in self.pendingTools { entry.timer.cancel() }
            self.pendingTools.removeAll()
            return self.closing.values.map { $0.closedFuture() }
        }.get()) ?? []
        for future in pending { try? await future.get() }
        try? await loop.submit {
            self.heartbeatTask?.cancel()
            self.heartbeatTask = nil
            self.stopFollowingSpeaker()
            self.wakeTimer?.cancel()
            self.heartbeat.retire()
        }.get()
    }

    // MARK: Capture hand-off (capture thread)

    /// A mic frame, from the capture thread. Never blocks beyond a short lock.
    public func captured(_ pcm: [UInt8], at capturedAt: MonoTime, duration: Duration) {
        let mode = UplinkMode(rawValue: uplinkMode.load(ordering: .acquiring)) ?? .discard
        guard mode != .discard else { return }
        let queuedMs = uplink.withLock { queue in
            queue.append(pcm, capturedAt: capturedAt, duration: duration, sending: mode == .live)
            return queue.queuedMs
        }
        // Waking the event loop costs more than the work it then does: while live, frames go
        // out in batches of `uplinkBatchMs` (two 20 ms periods), not one wake-up per period.
        if mode == .live && queuedMs >= Self.uplinkBatchMs && !pumpScheduled.exchange(true, ordering: .acquiringAndReleasing) {
            loop.execute { self.pumpUplink() }
        }
    }

    // MARK: Commands

    public func pause() async { await onLoop { self.perform(self.machine.pause(now: MonoClock.now())) } }

    public func resume() async { await onLoop { self.perform(self.machine.resume(now: MonoClock.now())) } }

    public func reconnect() async { await onLoop { self.perform(self.machine.reconnectRequested(now: MonoClock.now())) } }

    public func networkWentOffline() { loop.execute { self.perform(self.machine.networkWentOffline(now: MonoClock.now())) } }

    public func networkCameOnline() { loop.execute { self.perform(self.machine.networkCameOnline(now: MonoClock.now())) } }

    public func networkChanged() { loop.execute { self.perform(self.machine.networkChanged(now: MonoClock.now())) } }

    public func say(_ text: String) async -> Result<JSONValue?, ControlError> {
        await onLoop(orIfGone: .failure(Self.loopGone)) { () -> Result<JSONValue?, ControlError> in
            guard let (connection, dialect) = self.liveConnection() else { return .failure(self.notLive()) }
            for message in dialect.say(text) { connection.send(message) }
            return .success(nil)
        }
    }

    /// Stop speaking now: playback silenced, the response cancelled, the brain told how much
    /// was heard.
    public func interrupt() async -> Result<JSONValue?, ControlError> {
        let played = await bargeIn(cancelResponse: true)
        var result: JSONObject = [:]
        if let played {
            result["item_id"] = JSONValue(played.itemID)
            result["played_ms"] = .number(Double(played.playedMs))
        }
        return .success(.object(result))
    }

    public func toolResult(callID: String, output: String) async -> Result<JSONValue?, ControlError> {
        await onLoop(orIfGone: .failure(Self.loopGone)) { () -> Result<JSONValue?, ControlError> in
            guard self.settings.upstream.protocolKind.supportsTools else {
                return .failure(ControlError(.unavailable, "\(self.settings.upstream.protocolKind.rawValue) has no tool calls"))
            }
            guard let pending = self.pendingTools.removeValue(forKey: callID) else {
                return .failure(ControlError(.invalidArgument, "no tool call \(callID) is waiting (answered, timed out, or unknown)"))
            }
            pending.timer.cancel()
            guard let connection = self.connections[pending.generation], let dialect = self.dialects[pending.generation] else {
                return .failure(ControlError(.conflict, "the session that asked for \(callID) has ended"))
            }
            for message in dialect.toolOutput(callID: callID, output: output) { connection.send(message) }
            return .success(nil)
        }
    }

    /// A reload: new link settings apply at once; a changed upstream means a fresh session.
    public func apply(_ newSettings: SessionSettings) async {
        await onLoop {
            let reconnect = newSettings.upstreamDiffers(from: self.settings)
            self.settings = newSettings
            self.machine.update(settings: .init(link: newSettings.link))
            self.uplink.withLock { $0.update(limits: .init(newSettings.link.buffer)) }
            self.snapshot.withLock { $0.protocolName = newSettings.upstream.protocolKind.rawValue }
            if reconnect {
                self.logger.notice("upstream configuration changed; starting a fresh session")
                self.perform(self.machine.reconnectRequested(now: MonoClock.now(), reason: "configuration reloaded"))
            }
        }
    }

    // MARK: Status

    public func status() async -> JSONObject {
        await onLoop(orIfGone: [:]) { self.statusObject() }
    }

    /// For the STATUS= line: cheap, from any thread.
    public func statusLine(networkOnline: Bool?, muted: Bool) -> StatusLine {
        let snap = snapshot.withLock { $0 }
        let queued = uplink.withLock { $0.queuedMs }
        return StatusLine(state: snap.state, protocolName: snap.protocolName, rttMs: snap.rttMs, bufferedMs: Int(queued),
                          networkOnline: networkOnline, muted: muted, lastError: snap.lastError)
    }

    public var state: SessionState { snapshot.withLock { $0.state } }

    private func statusObject() -> JSONObject {
        let now = MonoClock.now()
        let queue = uplink.withLock { q in (q.queuedMs, q.droppedMs, q.unacknowledgedFrames, q.frameCount) }
        var session: JSONObject = [
            "id": JSONValue(sessionID),
            "generation": .number(Double(machine.generation)),
            "connected_at": .null,
            "reconnects": .number(Double(machine.reconnects)),
            "last_error": JSONValue(lastError),
            "protocol": .string(settings.upstream.protocolKind.rawValue),
            "url": .string(settings.upstream.url.description),
        ]
        if let connectedAt = machine.connectedAt {
            let ago = (now - connectedAt).milliseconds
            session["connected_at"] = .string(Timestamp.iso8601(unixMillis: MonoClock.unixMillis() - ago))
            session["connected_for_s"] = .number(Double(ago / 1000))
        }
        if let g = machine.connectionGeneration, let rtt = connections[g]?.lastRTT {
            session["rtt_ms"] = .number(Double(rtt.milliseconds))
        }
        session["counters"] = .object(counters.json)
        session["downlink_paused"] = .bool(downlink.paused)
        return [
            "state": .string(machine.state.rawValue),
            "session": .object(session),
            "buffer": ["queued_ms": .number(Double(queue.0)), "dropped_ms": .number(Double(queue.1)),
                       "unacknowledged_frames": .number(Double(queue.2)), "frames": .number(Double(queue.3))],
        ]
    }

    // MARK: Performing the machine's decisions

    private func perform(_ actions: [SessionAction]) {
        var decided: [SessionEvent] = []
        for action in actions {
            switch action {
            case .connect(let generation):
                openConnection(generation)
            case .close(let generation, let code):
                if let connection = connections.removeValue(forKey: generation) {
                    dropAudioConnection(generation)
                    closing[ObjectIdentifier(connection)] = connection
                    connection.close(code: code)
                    let key = ObjectIdentifier(connection)
                    connection.closedFuture().whenComplete { _ in self.closing[key] = nil }
                }
                dialects[generation] = nil
            case .abort(let generation):
                if let connection = connections.removeValue(forKey: generation) {
                    dropAudioConnection(generation)
                    connection.abort()
                }
                dialects[generation] = nil
            case .probe(let generation):
                connections[generation]?.probe(timeout: settings.probeTimeout)
            case .suspend(let generation):
                connections[generation]?.suspendLiveness()
            case .emit(let event):
                decided.append(event)
            }
        }
        settle()
        // Events go out only once the snapshot they describe is in place: listeners such as
        // the STATUS= line read it (published before `settle`, systemd showed `connecting`
        // while the session was live).
        for event in decided { publish(event) }
    }

    /// After every decision: which connection carries audio, whether capture is buffered or
    /// sent, when the machine wants its next tick, and what status shows.
    private func settle() {
        let state = machine.state
        if state == .live, let g = machine.connectionGeneration {
            if audioConnection != g {
                // Frames another connection left unacknowledged go first on this one.
                uplink.withLock { $0.rewind() }
                audioConnection = g
                awaitingWindowAck = false
            }
        }
        let mode: UplinkMode = state == .live ? .live : (state.buffersAudio ? .buffer : .discard)
        let previous = UplinkMode(rawValue: uplinkMode.exchange(mode.rawValue, ordering: .acquiringAndReleasing))
        if mode == .discard && previous != .discard {
            uplink.withLock { $0.discardAll() }
        }
        if mode == .live { pumpUplink() }
        wakeTimer?.cancel()
        wakeTimer = nil
        if let wake = machine.nextWakeup {
            let delay = max(0, (wake - MonoClock.now()).nanoseconds)
            wakeTimer = loop.scheduleTask(in: .nanoseconds(delay)) { self.perform(self.machine.tick(now: MonoClock.now())) }
        }
        let rtt = machine.connectionGeneration.flatMap { connections[$0]?.lastRTT }.map { Int($0.milliseconds) }
        snapshot.withLock {
            $0.state = state
            $0.rttMs = rtt
            $0.lastError = lastError
        }
    }

    private func dropAudioConnection(_ generation: UInt64) {
        guard audioConnection == generation else { return }
        uplink.withLock { $0.rewind() }
        audioConnection = nil
        awaitingWindowAck = false
    }

    private func publish(_ event: SessionEvent) {
        switch event {
        case .stateChanged(let from, let to, let reason):
            logger.info("session \(from.rawValue) -> \(to.rawValue): \(reason)",
                        metadata: ["state": .string(to.rawValue), "session": .string(sessionID ?? "-")])
            events.publish("session.state", ["from": .string(from.rawValue), "to": .string(to.rawValue), "reason": .string(reason)])
        case .live(let generation, let afterMs):
            let timeline = connections[generation].map { "\($0.timeline)" } ?? "-"
            logger.notice("session live", metadata: ["session": .string(sessionID ?? "-"), "generation": "\(generation)",
                                                     "after_ms": "\(afterMs)", "connect": .string(timeline)])
            events.publish("session.live", ["id": JSONValue(sessionID), "generation": .number(Double(generation)), "after_ms": .number(Double(afterMs))])
        case .blip(let durationMs):
            logger.notice("link blip of \(durationMs) ms ridden out")
            events.publish("link.blip", ["duration_ms": .number(Double(durationMs))])
        case .lost(let reason):
            logger.warning("session lost: \(reason)", metadata: ["state": .string(machine.state.rawValue)])
            events.publish("session.lost", ["reason": .string(reason)])
        }
    }

    private func openConnection(_ generation: UInt64) {
        if let immediate = settings.credentials.immediate {
            dial(generation, key: immediate)
            return
        }
        let credentials = settings.credentials
        Task {
            let result = await credentials.authorization()
            self.loop.execute {
                switch result {
                case .success(let key):
                    self.dial(generation, key: key)
                case .failure(let failure):
                    // The attempt may have been abandoned while credentials were fetched.
                    guard self.machine.attemptGeneration == generation else { return }
                    let repeated = self.lastError == failure.detail
                    self.lastError = failure.detail
                    self.logger.log(level: repeated ? .debug : .warning, "no credentials for the upstream: \(failure.detail)",
                                    metadata: ["generation": "\(generation)"])
                    self.perform(self.machine.failed(generation: generation, failure, now: MonoClock.now(), random: .random(in: 0..<1)))
                }
            }
        }
    }

    private func dial(_ generation: UInt64, key: Secret?) {
        guard machine.attemptGeneration == generation else { return }
        var headers = settings.upstream.headers
        if let key { headers.append(HTTPHeader(name: "Authorization", value: "Bearer \(key.exposedValue)")) }
        let upstream = settings.upstream
        let connectionSettings = UpstreamConnectionSettings(
            url: upstream.url, headers: headers, tls: settings.tls,
            connectTimeout: upstream.connectTimeout, handshakeTimeout: upstream.handshakeTimeout,
            pingInterval: upstream.pingInterval, maxMessageBytes: upstream.maxFrameBytes)
        let connection = UpstreamConnection(generation: generation, loop: loop, settings: connectionSettings, owner: self)
        connections[generation] = connection
        dialects[generation] = UpstreamDialects.make(upstream.protocolKind, session: upstream.session, rate: settings.rate)
        connection.start()
    }

    private func pumpUplink() {
        pumpScheduled.store(false, ordering: .releasing)
        guard machine.state == .live, let g = audioConnection, let connection = connections[g], let dialect = dialects[g] else { return }
        var wrote = false
        while connection.isWritable && !awaitingWindowAck {
            let (inFlight, backlog) = uplink.withLock { ($0.unacknowledgedBytes, $0.queuedMs > Self.backlogMs) }
            if backlog && inFlight >= Self.replayWindowBytes {
                awaitingWindowAck = true
                if wrote { connection.flush() }
                connection.pingNow()
                return
            }
            guard let chunk = uplink.withLock({ $0.takeUnsent(maxBytes: Self.maxChunkBytes) }) else { break }
            connection.send(dialect.audio(chunk.bytes), flush: false)
            counters.uplinkMessages += 1
            wrote = true
        }
        if wrote { connection.flush() }
    }

    private func liveConnection() -> (UpstreamConnection, any UpstreamDialect)? {
        guard machine.state == .live, let g = machine.connectionGeneration, let c = connections[g], let d = dialects[g] else { return nil }
        return (c, d)
    }

    private func notLive() -> ControlError {
        ControlError(.unavailable, "the session is \(machine.state.rawValue), not live\(lastError.map { " (last error: \($0))" } ?? "")")
    }

    /// Silence the speaker and tell the brain how much of its answer was heard. The engine
    /// needs up to a period to silence the device, so that wait happens off the event loop;
    /// the cancel goes out at once, the truncation when the played time is known.
    private func bargeIn(cancelResponse: Bool) async -> (itemID: String?, playedMs: Int)? {
        let audio: (any SessionAudio)? = await onLoop(orIfGone: nil) {
            if cancelResponse, let (connection, dialect) = self.liveConnection() {
                for m in dialect.cancelResponse() { connection.send(m) }
            }
            return self.audio
        }
        guard let audio else { return nil }
        let played = await withCheckedContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(returning: audio.bargeIn()) }
        }
        guard let played else { return nil }
        let (itemID, playedMs) = played
        await onLoop {
            if let (connection, dialect) = self.liveConnection() {
                for m in dialect.truncate(itemID: itemID, audioEndMs: playedMs) { connection.send(m) }
            }
        }
        return played
    }

    /// Barge-in from an upstream event, on the loop: runs without holding the loop up.
    private func bargeInSoon() {
        Task { _ = await self.bargeIn(cancelResponse: false) }
    }

    /// Runs `body` on the loop, or answers `gone` when the loop has shut down: that happens only
    /// after every service stopped, but a control request racing the exit may still get here,
    /// and it must get an answer, not a trap.
    private func onLoop<T: Sendable>(orIfGone gone: @autoclosure () -> T, _ body: @escaping @Sendable () -> T) async -> T {
        if loop.inEventLoop { return body() }
        do {
            return try await loop.submit(body).get()
        } catch {
            return gone()
        }
    }

    private func onLoop(_ body: @escaping @Sendable () -> Void) async {
        await onLoop(orIfGone: (), body)
    }

    static let loopGone = ControlError(.unavailable, "the session has stopped")

    private func handle(_ inbound: UpstreamInbound, from connection: UpstreamConnection) {
        let g = connection.generation
        switch inbound {
        case .sessionReady(let id):
            sessionID = id
            connection.markReady()
            perform(machine.connected(generation: g, now: MonoClock.now()))
        case .audio(let itemID, let pcm):
            counters.downlinkAudioBytes += pcm.count
            guard let audio else { break }
            audio.enqueuePlayback(itemID: itemID, pcm: pcm)
            followSpeaker(connection, audio)
        case .audioDone(let itemID):
            audio?.finishItem(itemID: itemID)
        case .speechStarted:
            events.publish("speech.started")
            // openai-realtime: the server saw the user start talking; stop speaking over them.
            if settings.upstream.protocolKind == .openaiRealtime { bargeInSoon() }
        case .speechStopped:
            events.publish("speech.stopped")
        case .clear:
            bargeInSoon()
        case .toolCall(let callID, let name, let arguments):
            events.publish("tool.call", ["call_id": .string(callID), "name": .string(name), "arguments": .string(arguments)])
            armToolTimeout(callID: callID, generation: g)
        case .error(let message):
            counters.upstreamErrors += 1
            lastError = "upstream error: \(message)"
            logger.warning("upstream reported an error: \(message)")
            events.publish("error", ["code": "upstream_error", "message": .string(message)])
            settle()
        case .ignored:
            break
        case .unknown(let type):
            counters.unknownEvents += 1
            logger.debug("ignoring unknown upstream event \(type.prefix(80))")
        case .malformed(let why):
            counters.malformedMessages += 1
            logger.warning("malformed message from upstream: \(why)")
        }
    }

    /// After a reply chunk: stop reading the brain once the speaker holds `max_buffer`, and
    /// check every 200 ms whether it has played enough to read again.
    private func followSpeaker(_ connection: UpstreamConnection, _ audio: any SessionAudio) {
        if downlink.pauseAtMs != audio.playbackMaxBufferMs { downlink = DownlinkFlow(maxBufferMs: audio.playbackMaxBufferMs) }
        guard downlink.playbackQueued(ms: audio.playbackQueuedMs) == .pauseReading else { return }
        connection.pauseReading()
        counters.downlinkPauses += 1
        logger.debug("speaker holds \(audio.playbackQueuedMs) ms: reading from the brain paused")
        let generation = connection.generation
        downlinkTimer?.cancel()
        downlinkTimer = loop.scheduleRepeatedTask(initialDelay: .milliseconds(200), delay: .milliseconds(200)) { _ in
            guard let connection = self.connections[generation] else { return self.stopFollowingSpeaker() }
            if self.downlink.playbackQueued(ms: audio.playbackQueuedMs) == .resumeReading {
                connection.resumeReading()
                self.stopFollowingSpeaker()
            }
        }
    }

    private func stopFollowingSpeaker() {
        downlinkTimer?.cancel()
        downlinkTimer = nil
        downlink.connectionChanged()
    }

    private func armToolTimeout(callID: String, generation: UInt64) {
        pendingTools[callID]?.timer.cancel()
        let timeout = settings.upstream.toolTimeout
        let timer = loop.scheduleTask(in: .nanoseconds(timeout.nanoseconds)) {
            guard let pending = self.pendingTools.removeValue(forKey: callID) else { return }
            self.counters.toolTimeouts += 1
            let message = "no robot process answered within \(DurationText.format(timeout))"
            self.events.publish("error", ["code": "tool_timeout", "message": .string("\(callID): \(message)")])
            if let connection = self.connections[pending.generation], let dialect = self.dialects[pending.generation] {
                let output = JSONWriter.string(["error": .string(message)])
                for m in dialect.toolOutput(callID: callID, output: output) { connection.send(m) }
            }
        }
        pendingTools[callID] = (generation, timer)
    }
}

extension SessionService: UpstreamConnectionOwner {
    func connectionUpgraded(_ connection: UpstreamConnection) {
        guard connections[connection.generation] === connection, let dialect = dialects[connection.generation] else { return }
        for message in dialect.opening() { connection.send(message) }
        if dialect.readyOnUpgrade {
            sessionID = nil
            connection.markReady()
            perform(machine.connected(generation: connection.generation, now: MonoClock.now()))
        }
    }

    /// Runs the connection's own dialect (it keeps handshake state) over one message.
    func connection(_ connection: UpstreamConnection, received message: InboundMessage) {
        let g = connection.generation
        guard connections[g] === connection, var dialect = dialects[g] else { return }
        let inbound = dialect.decode(message)
        dialects[g] = dialect
        for item in inbound { handle(item, from: connection) }
    }

    func connection(_ connection: UpstreamConnection, acknowledged mark: UInt64, rtt: Duration, answeredProbe: Bool) {
        let g = connection.generation
        guard connections[g] === connection else { return }
        if audioConnection == g {
            uplink.withLock { $0.acknowledge(upTo: mark) }
            if awaitingWindowAck {
                awaitingWindowAck = false
                pumpUplink()
            }
        }
        snapshot.withLock { $0.rttMs = Int(rtt.milliseconds) }
        if answeredProbe { perform(machine.probeSucceeded(generation: g, now: MonoClock.now())) }
    }

    func connectionWritable(_ connection: UpstreamConnection) {
        if audioConnection == connection.generation { pumpUplink() }
    }

    func connection(_ connection: UpstreamConnection, ended failure: ConnectionFailure) {
        let g = connection.generation
        guard connections[g] === connection else { return }
        connections[g] = nil
        dialects[g] = nil
        dropAudioConnection(g)
        // The same failure again and again (a long outage) is logged once, then at debug.
        let repeated = lastError == failure.detail
        lastError = failure.detail
        logger.log(level: repeated ? .debug : .warning, "upstream connection ended: \(failure.detail)", metadata: ["generation": "\(g)"])
        // A refused attempt (401/403 on the upgrade) means the credential it presented is no
        // good: a cached token must not be offered again.
        if failure.kind == .refused && machine.attemptGeneration == g { settings.credentials.upstreamRefused() }
        perform(machine.failed(generation: g, failure, now: MonoClock.now(), random: .random(in: 0..<1)))
    }

    func connectionViolation(_ connection: UpstreamConnection, code: UInt16, reason: String) {
        counters.protocolViolations += 1
    }

    func uplinkMark(for connection: UpstreamConnection) -> UInt64 {
        audioConnection == connection.generation ? uplink.withLock { $0.sentMark } : 0
    }
}

/// What the STATUS= line and `status` need, readable from any thread.
struct SessionSnapshot: Sendable {
    var state: SessionState = .idle
    var protocolName = ""
    var rttMs: Int?
    var lastError: String?
}

/// Things that went wrong and were survived, for `status.session.counters`.
struct SessionCounters {
    var unknownEvents = 0
    var malformedMessages = 0
    var protocolViolations = 0
    var upstreamErrors = 0
    var toolTimeouts = 0
    var uplinkMessages = 0
    var downlinkAudioBytes = 0
    var downlinkPauses = 0

    var json: JSONObject {
        ["unknown_events": .number(Double(unknownEvents)), "malformed_messages": .number(Double(malformedMessages)),
         "protocol_violations": .number(Double(protocolViolations)), "upstream_errors": .number(Double(upstreamErrors)),
         "tool_timeouts": .number(Double(toolTimeouts)), "uplink_messages": .number(Double(uplinkMessages)),
         "downlink_audio_bytes": .number(Double(downlinkAudioBytes)), "downlink_pauses": .number(Double(downlinkPauses))]
    }
}
