import Dispatch
import Logging
import NIOCore
import NIOPosix
import TetherCore

/// The session on its event loop: runs `SessionMachine` and performs what it decides on the
/// link table, pumps the uplink stage into the live link, answers commands, keeps the tool
/// calls, and turns what happens into events. It runs on the loop the WebSocket channels use,
/// so connection callbacks need no locks and no hops; `SessionService` keeps it in a
/// `NIOLoopBoundBox`, which is what confines it there.
final class SessionDriver {
    let loop: any EventLoop
    let blockingPool: NIOThreadPool
    let uplink: UplinkStage
    let audio: (any SessionAudio)?
    let events: EventBus
    let logger: Logger
    private let heartbeat: Heartbeat
    private let heartbeatInterval: Duration
    let snapshot: SessionSnapshotStore

    var settings: SessionSettings
    var machine: SessionMachine
    let links = LinkTable()
    let downlink: DownlinkFollower
    private var tools: ToolCallLedger
    private var toolTimer: Scheduled<Void>?
    private var wakeTimer: Scheduled<Void>?
    private var heartbeatTask: RepeatedTask?
    var counters = SessionCounters()
    /// The live session's id, as its brain named it.
    var sessionID: String?
    /// The one it replaced.
    var replacedSessionID: String?
    /// Why the session last failed or what the brain last complained about, for status.
    var lastError: String?
    /// The conversation, carried into every new upstream session (rule 13).
    var conversation: ConversationLedger
    /// What the live session has in progress, for a rotation's quiet moment.
    var quiet = QuietMoment()
    /// While a rotation waits for a quiet moment: the speaker falling silent is looked for.
    var quietPoll: RepeatedTask?

    init(settings: SessionSettings, loop: any EventLoop, blockingPool: NIOThreadPool, uplink: UplinkStage, audio: (any SessionAudio)?, events: EventBus,
         heartbeat: Heartbeat, heartbeatInterval: Duration, snapshot: SessionSnapshotStore, logger: Logger) {
        self.settings = settings
        self.loop = loop
        self.blockingPool = blockingPool
        self.uplink = uplink
        self.audio = audio
        self.events = events
        self.heartbeat = heartbeat
        self.heartbeatInterval = heartbeatInterval
        self.snapshot = snapshot
        self.logger = logger
        self.machine = SessionMachine(settings: settings.machine)
        self.conversation = ConversationLedger(id: ConversationID.make(), limits: settings.conversation.ledgerLimits)
        self.tools = ToolCallLedger(timeout: settings.upstream.toolTimeout)
        self.downlink = DownlinkFollower(maxBuffer: settings.playbackMaxBuffer, loop: loop, links: links, logger: logger)
    }

    // MARK: Lifecycle

    func start() {
        uplink.whenBatchReady { [weak self] in self?.pumpUplink() }
        let heartbeat = self.heartbeat
        let interval = TimeAmount.nanoseconds(heartbeatInterval.nanoseconds)
        heartbeatTask = loop.scheduleRepeatedTask(initialDelay: .zero, delay: interval) { _ in heartbeat.beat() }
        perform(machine.start(now: MonoClock.now()))
    }

    /// Sends the close frames; returns what completes once the peers have answered them.
    func stop() -> [EventLoopFuture<Void>] {
        perform(machine.stop(now: MonoClock.now()))
        tools.removeAll()
        armToolTimer()
        return links.closingFutures
    }

    func retire() {
        heartbeatTask?.cancel()
        heartbeatTask = nil
        quietPoll?.cancel()
        quietPoll = nil
        downlink.stop()
        wakeTimer?.cancel()
        heartbeat.retire()
    }

    // MARK: Commands

    func pause() { perform(machine.pause(now: MonoClock.now())) }
    func resume() { perform(machine.resume(now: MonoClock.now())) }
    func reconnect() { perform(machine.reconnectRequested(now: MonoClock.now())) }
    func networkWentOffline() { perform(machine.networkWentOffline(now: MonoClock.now())) }
    func networkCameOnline() { perform(machine.networkCameOnline(now: MonoClock.now())) }
    func networkChanged() { perform(machine.networkChanged(now: MonoClock.now())) }

    func say(_ text: String) -> Result<JSONValue?, ControlError> {
        guard let link = liveLink() else { return .failure(notLive()) }
        link.send(link.dialect.say(text))
        return .success(nil)
    }

    func toolResult(callID: String, output: String) -> Result<JSONValue?, ControlError> {
        guard settings.upstream.protocolKind.supportsTools else {
            return .failure(ControlError(.unavailable, "\(settings.upstream.protocolKind.rawValue) has no tool calls"))
        }
        let answer = tools.answer(callID)
        armToolTimer()
        switch answer {
        case .unknown:
            return .failure(ControlError(.invalidArgument, "no tool call \(callID) is waiting (answered, timed out, or unknown)"))
        case .deliver(let generation):
            guard let link = links[generation] else { return .failure(sessionEnded(callID)) }
            link.send(link.dialect.toolOutput(callID: callID, output: output))
            conversation.toolAnswered(callID, output: output, now: MonoClock.now())
            lookForQuietMoment()
            return .success(nil)
        case .sessionEnded:
            return .failure(sessionEnded(callID))
        }
    }

    private func sessionEnded(_ callID: String) -> ControlError {
        ControlError(.conflict, "the session that asked for \(callID) has ended")
    }

    /// A reload: new link settings apply at once; a changed upstream means a fresh session.
    func apply(_ new: SessionSettings) {
        let reconnect = new.upstreamDiffers(from: settings)
        settings = new
        machine.update(settings: new.machine)
        conversation.update(limits: new.conversation.ledgerLimits)
        uplink.update(limits: .init(new.link.buffer))
        tools.timeout = new.upstream.toolTimeout
        downlink.update(maxBuffer: new.playbackMaxBuffer)
        snapshot.update { $0.protocolName = new.upstream.protocolKind.rawValue }
        if reconnect {
            logger.notice("upstream configuration changed; starting a fresh session")
            perform(machine.reconnectRequested(now: MonoClock.now(), reason: "configuration reloaded"))
        }
    }

    // MARK: Performing the machine's decisions

    func perform(_ actions: [SessionAction]) {
        var decided: [SessionEvent] = []
        var draining: [UInt64] = []
        var rotatedFrom: [UInt64: String?] = [:]
        for action in actions {
            switch action {
            case .connect(let generation):
                openConnection(generation)
            case .emit(let event):
                // The live session's id follows the connection that carries the conversation;
                // a rotation names the one it left (after a cap close, the one before `.live`).
                switch event {
                case .live(let generation, _):
                    replacedSessionID = sessionID
                    sessionID = links[generation]?.sessionID
                    quiet.sessionChanged()
                case .rotated(let from, let to, _, _):
                    // After a cap close `.live` came first in this batch and already switched.
                    rotatedFrom[from] = sessionID == links[to]?.sessionID ? replacedSessionID : sessionID
                    sessionID = links[to]?.sessionID
                    quiet.sessionChanged()
                default:
                    break
                }
                decided.append(event)
            case .drainUplink(let generation):
                draining.append(generation)
            case .close, .abort, .probe, .suspend:
                if let ended = links.perform(action, probeTimeout: settings.probeTimeout) { linkEnded(ended) }
            }
        }
        settle()
        // Events go out only once the snapshot they describe is in place: listeners such as
        // the STATUS= line read it (published before `settle`, systemd showed `connecting`
        // while the session was live).
        for event in decided { publish(event, rotatedFrom: rotatedFrom) }
        for generation in draining { drainUplink(generation) }
    }

    /// After every decision: which connection carries audio, whether capture is buffered or
    /// sent, when the machine wants its next tick, and what status shows.
    func settle() {
        let state = machine.state
        uplink.setDraining(machine.drainingGeneration != nil)
        uplink.sessionSettled(in: state, connection: machine.connectionGeneration)
        if state == .live { pumpUplink() }
        pollForQuietMoment(machine.awaitingQuietMoment)
        wakeTimer?.cancel()
        wakeTimer = nil
        if let wake = machine.nextWakeup {
            wakeTimer = loop.assumeIsolated().scheduleTask(in: Self.delay(until: wake)) {
                self.perform(self.machine.tick(now: MonoClock.now()))
            }
        }
        let rtt = machine.connectionGeneration.flatMap { links[$0]?.connection.lastRTT }.map { Int($0.milliseconds) }
        let lastError = self.lastError
        snapshot.update {
            $0.state = state
            $0.rttMs = rtt
            $0.lastError = lastError
        }
    }

    /// A link left the table: its unacknowledged audio goes again elsewhere, and the tool
    /// calls it asked for can no longer be answered.
    func linkEnded(_ generation: UInt64) {
        uplink.connectionEnded(generation)
        tools.generationEnded(generation)
    }

    /// Keeps `failure` as the last error and logs it: the same failure again and again (a long
    /// outage) is logged once, then at debug.
    func recordFailure(_ failure: ConnectionFailure, _ what: String, generation: UInt64) {
        let repeated = lastError == failure.detail
        lastError = failure.detail
        // The brain's cap is routine: the conversation carries on in the next session.
        let level: Logger.Level = repeated ? .debug : (failure.kind == .expired ? .notice : .warning)
        logger.log(level: level, "\(what): \(failure.detail)", metadata: ["generation": "\(generation)"])
    }

    private func publish(_ event: SessionEvent, rotatedFrom: [UInt64: String?]) {
        switch event {
        case .stateChanged(let from, let to, let reason):
            logger.info("session \(from.rawValue) -> \(to.rawValue): \(reason)",
                        metadata: ["state": .string(to.rawValue), "session": .string(sessionID ?? "-")])
            events.publish(.sessionState(from: from, to: to, reason: reason))
        case .live(let generation, let afterMs):
            let timeline = links[generation].map { "\($0.connection.timeline)" } ?? "-"
            logger.notice("session live", metadata: ["session": .string(sessionID ?? "-"), "generation": "\(generation)",
                                                     "after_ms": "\(afterMs)", "connect": .string(timeline)])
            events.publish(.sessionLive(sessionID: sessionID, generation: generation, afterMs: afterMs))
        case .blip(let durationMs):
            logger.notice("link blip of \(durationMs) ms ridden out")
            events.publish(.linkBlip(durationMs: durationMs))
        case .lost(let reason):
            logger.warning("session lost: \(reason)", metadata: ["state": .string(machine.state.rawValue)])
            events.publish(.sessionLost(reason: reason))
        case .rotated(let from, let to, let waitedMs, let reason):
            let fromID = rotatedFrom[from] ?? nil
            let toID = links[to]?.sessionID
            let carried = links[to]?.carriedItems ?? 0
            logger.notice("conversation rotated to a new session (\(reason.rawValue))",
                          metadata: ["session": .string(toID ?? "-"), "previous_session": .string(fromID ?? "-"),
                                     "generation": "\(to)", "waited_ms": "\(waitedMs)", "carried_items": "\(carried)"])
            events.publish(.conversationRotated(from: fromID, to: toID, carriedItems: carried, waitedMs: waitedMs, reason: reason))
        }
    }

    // MARK: Audio

    func pumpUplink() {
        guard machine.state == .live, let generation = uplink.carrier, let link = links[generation] else { return }
        counters.uplinkMessages += uplink.pump(into: link)
    }

    func liveLink() -> UpstreamLink? {
        guard machine.state == .live, let generation = machine.connectionGeneration else { return nil }
        return links[generation]
    }

    func notLive() -> ControlError {
        ControlError(.unavailable, "the session is \(machine.state.rawValue), not live\(lastError.map { " (last error: \($0))" } ?? "")")
    }

    /// Silences the speaker as `BargeInPolicy` says and tells the brain how much was heard.
    /// The engine needs up to a period to silence the device, so that wait happens off the
    /// event loop; a cancel goes out at once, the truncation once the played time is known.
    func bargeIn(_ cause: BargeInPolicy.Cause) -> EventLoopFuture<BargeInPolicy.Heard?> {
        let policy = BargeInPolicy(protocolKind: settings.upstream.protocolKind)
        guard let plan = policy.plan(for: cause) else { return loop.makeSucceededFuture(nil) }
        if plan.cancelResponse, let link = liveLink() { link.send(link.dialect.cancelResponse()) }
        guard let audio else { return loop.makeSucceededFuture(nil) }
        let done = loop.makePromise(of: BargeInPolicy.Heard?.self)
        let me = NIOLoopBound(self, eventLoop: loop)
        DispatchQueue.global().async {
            let heard = audio.bargeIn().map { BargeInPolicy.Heard(itemID: $0.itemID, playedMs: $0.playedMs) }
            me.eventLoop.execute {
                let driver = me.value
                if let heard { driver.conversation.assistantInterrupted(heard.itemID, playedMs: heard.playedMs, now: MonoClock.now()) }
                if let cut = policy.truncation(after: heard), let link = driver.liveLink() {
                    link.send(link.dialect.truncate(itemID: cut.itemID, audioEndMs: cut.playedMs))
                }
                done.succeed(heard)
            }
        }
        return done.futureResult
    }

    // MARK: Tool calls

    func toolCalled(_ callID: String, generation: UInt64) {
        tools.called(callID, generation: generation, now: MonoClock.now())
        armToolTimer()
    }

    var toolCallsPending: Int { tools.count }

    private func armToolTimer() {
        toolTimer?.cancel()
        toolTimer = nil
        guard let deadline = tools.nextDeadline else { return }
        toolTimer = loop.assumeIsolated().scheduleTask(in: Self.delay(until: deadline)) { self.toolDeadlinePassed() }
    }

    /// A call nobody answered gets an error output, so the brain does not wait forever.
    private func toolDeadlinePassed() {
        for call in tools.expire(now: MonoClock.now()) {
            counters.toolTimeouts += 1
            let message = "no robot process answered within \(DurationText.format(call.timeout))"
            events.publish(.error(code: .toolTimeout, message: "\(call.callID): \(message)"))
            if !call.sessionEnded, let link = links[call.generation] {
                let output = JSONWriter.string(["error": .string(message)])
                link.send(link.dialect.toolOutput(callID: call.callID, output: output))
                conversation.toolAnswered(call.callID, output: output, now: MonoClock.now())
            }
        }
        armToolTimer()
        lookForQuietMoment()
    }

    // MARK: Status

    func status() -> JSONObject {
        let now = MonoClock.now()
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
        if let generation = machine.connectionGeneration, let rtt = links[generation]?.connection.lastRTT {
            session["rtt_ms"] = .number(Double(rtt.milliseconds))
        }
        session["counters"] = .object(counters.json)
        session["downlink_paused"] = .bool(downlink.paused)
        session["rotations"] = .number(Double(machine.rotations))
        return ["state": .string(machine.state.rawValue), "session": .object(session), "buffer": .object(uplink.status),
                "conversation": .object(conversationStatus(now: now))]
    }

    static func delay(until deadline: MonoTime) -> TimeAmount {
        .nanoseconds(max(0, (deadline - MonoClock.now()).nanoseconds))
    }
}
