/// The session's decision logic: when to connect, when a loss is only a blip, when it is a
/// lost session, how long to wait between attempts, and what to do when the network comes
/// and goes. Pure and clock-injected: inputs carry `now`, outputs are `SessionAction`s that
/// the session service performs; the service arms one timer for `nextWakeup` and calls
/// `tick` when it fires.
///
/// Every connection attempt has a generation. Inputs about an older generation are stale
/// and are dropped (a connection that went live too late is closed), so a callback from an
/// old socket can never tear down or announce anything about a newer one. Teardown is
/// idempotent: an outage produces at most one `session.lost`.
public struct SessionMachine: Sendable {
    public struct Settings: Sendable, Equatable {
        public var grace: Duration
        public var failedGrace: Duration
        public var backoff: BackoffConfig
        /// nil: sessions are never rotated before the brain's cap.
        public var rotation: RotationSchedule?
        /// How long a rotation waits for the old connection to acknowledge the last mic audio
        /// it was sent before switching anyway (and sending the unacknowledged tail again).
        public var handoverTimeout: Duration
        public init(grace: Duration, failedGrace: Duration, backoff: BackoffConfig, rotation: RotationSchedule? = nil,
                    handoverTimeout: Duration = .seconds(2)) {
            self.grace = grace
            self.failedGrace = failedGrace
            self.backoff = backoff
            self.rotation = rotation
            self.handoverTimeout = handoverTimeout
        }
        public init(link: LinkConfig, rotation: RotationSchedule? = nil, handoverTimeout: Duration = .seconds(2)) {
            self.init(grace: link.grace, failedGrace: link.failedGrace, backoff: link.backoff, rotation: rotation,
                      handoverTimeout: handoverTimeout)
        }
    }

    public private(set) var state: SessionState = .idle
    /// The newest generation handed out; inputs for any other generation are stale.
    public private(set) var generation: UInt64 = 0
    /// Successful connections after the first.
    public private(set) var reconnects = 0
    /// When the current connection went live (nil while not live).
    public private(set) var connectedAt: MonoTime?
    /// Whether the network is known to be usable (true until told otherwise).
    public private(set) var networkOnline = true
    /// Stale inputs that were dropped, for status and tests.
    public private(set) var staleInputs = 0
    /// Sessions replaced by a rotation (scheduled, or forced by the brain's cap).
    public private(set) var rotations = 0

    private var settings: Settings
    private var backoff: Backoff
    /// The attempt under way, if any.
    private var attempt: UInt64?
    /// The established connection, if any; it stays while `degraded` after a network loss
    /// so that it can be probed and carried on if it survived.
    private var connection: UInt64?
    /// When the session stopped being live (or was started): `after_ms` counts from here.
    private var outageStart: MonoTime?
    /// When the current outage began, while it may still turn out to be a blip.
    private var lossAt: MonoTime?
    private var lossReason = ""
    private var graceDeadline: MonoTime?
    private var nextAttemptAt: MonoTime?
    private var everLive = false
    private var pendingProbe = false

    // Rotation (rule 13): make-before-break while live.
    /// The rotation under way: the next connection dialled, ready and waiting for a quiet
    /// moment, or handing the uplink over.
    private var rotation: Rotation?
    /// When the live session began, and when its server said it would close it.
    private var sessionBegan: MonoTime?
    private var sessionExpiresIn: Duration?
    private var rotationDue: MonoTime?
    private var rotationDeadline: MonoTime?
    private var rotationBackoff: Backoff
    /// The brain closed the session at its cap: the reconnect that follows is a rotation.
    private var expiredGeneration: UInt64?
    /// A rotation that failed is tried again after the rotation backoff.
    private var rotationRetryAt: MonoTime?
    /// What the server of the next session said about its cap, until the switch.
    private var pendingExpiry: (generation: UInt64, expiresIn: Duration?)?

    struct Rotation: Sendable, Equatable {
        enum Phase: Sendable, Equatable {
            case dialing
            case standby
            /// The old connection is acknowledging the last mic audio sent on it.
            case handover(since: MonoTime, reason: RotationReason)
        }
        var generation: UInt64
        var phase: Phase
        /// When the next session was ready (seeded): `waited_ms` counts from here.
        var readyAt: MonoTime?
    }

    public init(settings: Settings) {
        self.settings = settings
        self.backoff = Backoff(config: settings.backoff)
        self.rotationBackoff = Backoff(config: settings.backoff)
    }

    /// The earliest time `tick` has work to do.
    public var nextWakeup: MonoTime? {
        var times = [graceDeadline, nextAttemptAt].compactMap { $0 }
        if state == .live {
            switch rotation?.phase {
            case nil: if let due = rotationRetryAt ?? rotationDue { times.append(due) }
            case .dialing?: break
            case .standby?: if let deadline = rotationDeadline { times.append(deadline) }
            case .handover(let since, _)?: times.append(since + settings.handoverTimeout)
            }
        }
        return times.min()
    }

    /// The connection a rotation is handing over from, while the uplink drains on it: no
    /// new mic audio goes out until it has acknowledged what it was sent (`uplinkDrained`).
    public var drainingGeneration: UInt64? {
        if case .handover? = rotation?.phase { return connection }
        return nil
    }

    /// True while the next session is ready and the switch waits for a quiet moment.
    public var awaitingQuietMoment: Bool { rotation?.phase == .standby }

    /// When the live session is due to be rotated, and by when at the latest.
    public var rotationTimes: (due: MonoTime, deadline: MonoTime)? {
        guard let rotationDue, let rotationDeadline else { return nil }
        return (rotationDue, rotationDeadline)
    }

    /// When the live session began (its server session was created and seeded).
    public var liveSessionBegan: MonoTime? { sessionBegan }

    /// True while a connection is established and may carry audio.
    public var isLive: Bool { state == .live }

    /// The established connection (live, or kept through a network loss inside grace).
    public var connectionGeneration: UInt64? { connection }

    /// The attempt under way, if any.
    public var attemptGeneration: UInt64? { attempt }

    /// True while the connection of `generation` is being dialled for the machine: a
    /// (re)connect attempt, or the successor of a rotation.
    public func isDialling(_ generation: UInt64) -> Bool {
        attempt == generation || (rotation?.generation == generation && rotation?.phase == .dialing)
    }

    public mutating func update(settings: Settings) {
        self.settings = settings
        backoff = Backoff(config: settings.backoff)
        rotationBackoff = Backoff(config: settings.backoff)
        scheduleRotation()
    }

    // MARK: Inputs

    public mutating func start(now: MonoTime) -> [SessionAction] {
        guard state == .idle || state == .paused else { return [] }
        var actions: [SessionAction] = []
        outageStart = now
        beginAttempts(now: now, reason: state == .idle ? "start" : "resume", into: &actions)
        return actions
    }

    public mutating func resume(now: MonoTime) -> [SessionAction] {
        guard state == .paused else { return [] }
        return start(now: now)
    }

    /// The connection of `generation` completed its handshake and the session is usable.
    /// `expiresIn`: its server said it will close it after this long.
    public mutating func connected(generation g: UInt64, now: MonoTime, expiresIn: Duration? = nil) -> [SessionAction] {
        if var next = rotation, next.generation == g, next.phase == .dialing {
            // The next session is ready: it waits for a quiet moment (or the deadline).
            next.phase = .standby
            next.readyAt = now
            rotation = next
            rotationBackoff.reset()
            pendingExpiry = (g, expiresIn)
            // The session looks for a quiet moment from now on (`quietMoment`).
            var actions: [SessionAction] = []
            if let deadline = rotationDeadline, now >= deadline { beginHandover(now: now, reason: .deadline, into: &actions) }
            return actions
        }
        guard g == attempt, g == generation else {
            staleInputs += 1
            // A late success of an abandoned attempt is a live socket nobody wants.
            return g == connection ? [] : [.close(generation: g, code: .normal)]
        }
        var actions: [SessionAction] = []
        attempt = nil
        if let old = connection, old != g { actions.append(.close(generation: old, code: .normal)) }
        connection = g
        if let lossAt, graceDeadline != nil {
            actions.append(.emit(.blip(durationMs: (now - lossAt).milliseconds)))
        }
        if everLive { reconnects += 1 }
        everLive = true
        let after = outageStart.map { (now - $0).milliseconds } ?? 0
        goLive(now: now, reason: "connected", into: &actions)
        actions.append(.emit(.live(generation: g, afterMs: after)))
        if let expired = expiredGeneration {
            // The brain closed the last session at its cap; this one carries the conversation on.
            expiredGeneration = nil
            rotations += 1
            actions.append(.emit(.rotated(from: expired, to: g, waitedMs: after, reason: .serverCap)))
        }
        sessionStarted(now: now, expiresIn: expiresIn)
        return actions
    }

    // MARK: Rotation

    /// The conversation is at a quiet moment (nobody speaking, no response, the speaker idle,
    /// no tool call pending): a successor waiting for one is switched to now.
    public mutating func quietMoment(now: MonoTime) -> [SessionAction] {
        var actions: [SessionAction] = []
        if rotation?.phase == .standby { beginHandover(now: now, reason: .quiet, into: &actions) }
        return actions
    }

    /// Rotate now (a test hook, or a reload that wants a fresh session without a gap): the
    /// next session is dialled at once and switched to at the next quiet moment.
    public mutating func rotateRequested(now: MonoTime) -> [SessionAction] {
        guard state == .live, rotation == nil, sessionBegan != nil else { return [] }
        var actions: [SessionAction] = []
        startRotation(into: &actions)
        // The deadline keeps its distance from now, as if the session were due now.
        rotationDeadline = now + (settings.rotation.map { $0.deadline - $0.after } ?? .seconds(10))
        return actions
    }

    /// The connection a rotation hands over from has acknowledged every mic frame sent on it:
    /// switch, at a frame boundary, without sending any frame twice.
    public mutating func uplinkDrained(generation g: UInt64, now: MonoTime) -> [SessionAction] {
        guard case .handover(_, let reason)? = rotation?.phase, g == connection else {
            staleInputs += 1
            return []
        }
        var actions: [SessionAction] = []
        finishRotation(now: now, reason: reason, into: &actions)
        return actions
    }

    /// An attempt failed before the session went live, or a live connection was lost.
    public mutating func failed(generation g: UInt64, _ failure: ConnectionFailure, now: MonoTime, random: Double = 0.5) -> [SessionAction] {
        if let next = rotation, next.generation == g {
            // The next session could not be had: the live one carries on; try again later.
            rotation = nil
            pendingExpiry = nil
            rotationRetryAt = now + rotationBackoff.nextDelay(unit: random)
            return [.close(generation: g, code: .normal)]
        }
        if let next = rotation, g == connection, state == .live {
            return lostDuringRotation(next, failure: failure, now: now)
        }
        if g == attempt {
            attempt = nil
            var actions: [SessionAction] = []
            if state == .connecting {
                transition(to: .reconnecting, reason: failure.detail, into: &actions)
            }
            scheduleRetry(after: failure, now: now, random: random)
            return actions
        }
        if g == connection {
            connection = nil
            var actions: [SessionAction] = [.close(generation: g, code: .goingAway)]
            switch state {
            case .live:
                beginOutage(now: now, failure: failure, into: &actions)
                if failure.kind == .expired { expiredGeneration = g }
                if failure.kind == .refused {
                    scheduleRetry(after: failure, now: now, random: random)
                } else if networkOnline {
                    connectNow(now: now, into: &actions)
                }
            case .degraded:
                // The connection we kept through a network loss is gone too; if the network is
                // back, replace it at once.
                if networkOnline && attempt == nil && nextAttemptAt == nil { connectNow(now: now, into: &actions) }
            default:
                break
            }
            return actions
        }
        staleInputs += 1
        return []
    }

    /// A probe ping on the established connection was answered.
    public mutating func probeSucceeded(generation g: UInt64, now: MonoTime) -> [SessionAction] {
        guard g == connection else { staleInputs += 1; return [] }
        pendingProbe = false
        guard state == .degraded, networkOnline else { return [] }
        var actions: [SessionAction] = []
        if let lossAt { actions.append(.emit(.blip(durationMs: (now - lossAt).milliseconds))) }
        // Abandon any replacement attempt: the old connection carries on.
        if let a = attempt { actions.append(.close(generation: a, code: .normal)); attempt = nil }
        goLive(now: now, reason: "link verified", into: &actions)
        return actions
    }

    public mutating func networkWentOffline(now: MonoTime) -> [SessionAction] {
        guard networkOnline else { return [] }
        networkOnline = false
        var actions: [SessionAction] = []
        switch state {
        case .live:
            // Keep the socket, quiet: if the link returns inside grace, a probe may find it
            // alive, and pings sent into a dead link would only get it declared dead.
            if let c = connection { actions.append(.suspend(generation: c)) }
            beginOutage(now: now, failure: ConnectionFailure(.network, "network offline"), into: &actions)
        case .connecting, .reconnecting:
            abandonAttempt(into: &actions)
            transition(to: .offline, reason: "network.offline", into: &actions)
        case .degraded:
            abandonAttempt(into: &actions)
        default:
            break
        }
        return actions
    }

    public mutating func networkCameOnline(now: MonoTime) -> [SessionAction] {
        guard !networkOnline else { return [] }
        networkOnline = true
        backoff.reset()
        var actions: [SessionAction] = []
        switch state {
        case .degraded:
            if let c = connection {
                pendingProbe = true
                actions.append(.probe(generation: c))
            } else if attempt == nil {
                connectNow(now: now, into: &actions)
            }
        case .offline:
            transition(to: .reconnecting, reason: "network.online", into: &actions)
            connectNow(now: now, into: &actions)
        case .reconnecting, .connecting:
            if attempt == nil { connectNow(now: now, into: &actions) }
        default:
            break
        }
        return actions
    }

    /// The default route moved or the local address went away: check the live connection.
    public mutating func networkChanged(now: MonoTime) -> [SessionAction] {
        switch state {
        case .live:
            guard let c = connection else { return [] }
            pendingProbe = true
            return [.probe(generation: c)]
        case .reconnecting where attempt == nil && networkOnline:
            // A new path may work where the old one did not: try now instead of after backoff.
            var actions: [SessionAction] = []
            backoff.reset()
            connectNow(now: now, into: &actions)
            return actions
        default:
            return []
        }
    }

    /// The `reconnect` command, or a reload that changed the upstream: a fresh session now.
    public mutating func reconnectRequested(now: MonoTime, reason: String = "reconnect requested") -> [SessionAction] {
        switch state {
        case .idle, .stopping: return []
        case .paused: return start(now: now)
        default: break
        }
        var actions: [SessionAction] = []
        abandonAttempt(into: &actions)
        forgetRotation(into: &actions)
        expiredGeneration = nil
        if let c = connection {
            actions.append(.close(generation: c, code: .normal))
            connection = nil
        }
        clearOutage()
        backoff.reset()
        outageStart = now
        transition(to: .connecting, reason: reason, into: &actions)
        connectNow(now: now, into: &actions)
        return actions
    }

    public mutating func pause(now: MonoTime) -> [SessionAction] {
        guard state != .paused, state != .stopping else { return [] }
        var actions: [SessionAction] = []
        closeEverything(code: .normal, into: &actions)
        transition(to: .paused, reason: "pause", into: &actions)
        return actions
    }

    public mutating func stop(now: MonoTime) -> [SessionAction] {
        guard state != .stopping else { return [] }
        var actions: [SessionAction] = []
        closeEverything(code: .goingAway, into: &actions)
        transition(to: .stopping, reason: "stop", into: &actions)
        return actions
    }

    /// Timers: the end of a grace period and the next backoff attempt.
    public mutating func tick(now: MonoTime) -> [SessionAction] {
        var actions: [SessionAction] = []
        if let deadline = graceDeadline, deadline <= now {
            graceDeadline = nil
            lossAt = nil
            if state == .degraded {
                pendingProbe = false
                expiredGeneration = nil
                actions.append(.emit(.lost(reason: lossReason)))
                if let c = connection {
                    // A connection that has not proven itself within grace is not trusted.
                    // With the network down a close frame cannot arrive, and the kernel would go on
                    // retransmitting into the dead link, keeping the neighbour entry resolving
                    // when the link returns and so delaying the next connect: reset instead.
                    actions.append(networkOnline ? .close(generation: c, code: .goingAway) : .abort(generation: c))
                    connection = nil
                }
                if networkOnline {
                    transition(to: .reconnecting, reason: "grace expired", into: &actions)
                    if attempt == nil && nextAttemptAt == nil { connectNow(now: now, into: &actions) }
                } else {
                    transition(to: .offline, reason: "network offline", into: &actions)
                }
            }
        }
        if let at = nextAttemptAt, at <= now {
            nextAttemptAt = nil
            if networkOnline, attempt == nil, [.connecting, .degraded, .reconnecting].contains(state) {
                connectNow(now: now, into: &actions)
            }
        }
        if state == .live { rotationTick(now: now, into: &actions) }
        return actions
    }

    private mutating func rotationTick(now: MonoTime, into actions: inout [SessionAction]) {
        switch rotation?.phase {
        case nil:
            // After a failed attempt the backoff decides, not the (long past) due time.
            if let due = rotationRetryAt ?? rotationDue, due <= now, networkOnline {
                rotationRetryAt = nil
                startRotation(into: &actions)
            }
        case .dialing?:
            break
        case .standby?:
            if let deadline = rotationDeadline, deadline <= now { beginHandover(now: now, reason: .deadline, into: &actions) }
        case .handover(let since, let reason)?:
            // The old connection did not acknowledge in time: switch; its unacknowledged
            // tail goes again on the new one (a repeat, never a gap).
            if since + settings.handoverTimeout <= now { finishRotation(now: now, reason: reason, into: &actions) }
        }
    }

    private mutating func startRotation(into actions: inout [SessionAction]) {
        generation += 1
        rotation = Rotation(generation: generation, phase: .dialing)
        actions.append(.connect(generation: generation))
    }

    private mutating func beginHandover(now: MonoTime, reason: RotationReason, into actions: inout [SessionAction]) {
        guard var next = rotation, let old = connection else { return }
        next.phase = .handover(since: now, reason: reason)
        rotation = next
        actions.append(.drainUplink(generation: old))
    }

    private mutating func finishRotation(now: MonoTime, reason: RotationReason, into actions: inout [SessionAction]) {
        guard let next = rotation, let old = connection else { return }
        rotation = nil
        connection = next.generation
        rotations += 1
        let readyAt = next.readyAt ?? now
        connectedAt = readyAt
        actions.append(.close(generation: old, code: .normal))
        actions.append(.emit(.rotated(from: old, to: next.generation, waitedMs: (now - readyAt).milliseconds, reason: reason)))
        let expiry = pendingExpiry?.generation == next.generation ? pendingExpiry?.expiresIn : nil
        pendingExpiry = nil
        sessionStarted(now: readyAt, expiresIn: expiry)
    }

    /// The live connection went while its successor was dialled or waiting: a ready successor
    /// takes over at once (no outage: its unacknowledged audio goes again on it); one still
    /// dialling becomes the reconnect attempt.
    private mutating func lostDuringRotation(_ next: Rotation, failure: ConnectionFailure, now: MonoTime) -> [SessionAction] {
        guard let old = connection else { return [] }
        var actions: [SessionAction] = [.close(generation: old, code: .goingAway)]
        if next.phase == .dialing {
            rotation = nil
            connection = nil
            attempt = next.generation
            beginOutage(now: now, failure: failure, into: &actions)
            if failure.kind == .expired { expiredGeneration = old }
            return actions
        }
        rotation = nil
        connection = next.generation
        rotations += 1
        let readyAt = next.readyAt ?? now
        connectedAt = readyAt
        let reason: RotationReason = failure.kind == .expired ? .serverCap : .connectionLost
        actions.append(.emit(.rotated(from: old, to: next.generation, waitedMs: (now - readyAt).milliseconds, reason: reason)))
        let expiry = pendingExpiry?.generation == next.generation ? pendingExpiry?.expiresIn : nil
        pendingExpiry = nil
        sessionStarted(now: readyAt, expiresIn: expiry)
        return actions
    }

    /// A new session is live: its rotation is scheduled from its start.
    private mutating func sessionStarted(now: MonoTime, expiresIn: Duration?) {
        sessionBegan = now
        sessionExpiresIn = expiresIn
        rotationRetryAt = nil
        scheduleRotation()
    }

    private mutating func scheduleRotation() {
        guard let schedule = settings.rotation, let began = sessionBegan else {
            rotationDue = nil
            rotationDeadline = nil
            return
        }
        (rotationDue, rotationDeadline) = schedule.times(began: began, expiresIn: sessionExpiresIn)
    }

    private mutating func abandonRotation(into actions: inout [SessionAction]) {
        if let next = rotation { actions.append(.close(generation: next.generation, code: .normal)) }
        rotation = nil
        pendingExpiry = nil
        rotationRetryAt = nil
    }

    /// The live session ended: nothing of its rotation remains.
    private mutating func forgetRotation(into actions: inout [SessionAction]) {
        abandonRotation(into: &actions)
        sessionBegan = nil
        sessionExpiresIn = nil
        rotationDue = nil
        rotationDeadline = nil
        rotationRetryAt = nil
    }

    // MARK: Helpers

    private mutating func beginAttempts(now: MonoTime, reason: String, into actions: inout [SessionAction]) {
        if networkOnline {
            transition(to: .connecting, reason: reason, into: &actions)
            connectNow(now: now, into: &actions)
        } else {
            transition(to: .offline, reason: "network offline", into: &actions)
        }
    }

    private mutating func beginOutage(now: MonoTime, failure: ConnectionFailure, into actions: inout [SessionAction]) {
        // A successor being dialled is given up; the session's schedule stays, should a probe
        // find the connection alive after all.
        abandonRotation(into: &actions)
        lossAt = now
        outageStart = now
        lossReason = failure.detail
        connectedAt = nil
        let grace = failure.kind == .network || failure.kind == .expired ? settings.grace : settings.failedGrace
        graceDeadline = now + grace
        transition(to: .degraded, reason: failure.detail, into: &actions)
        if grace <= .zero { actions.append(contentsOf: tick(now: now)) }
    }

    private mutating func goLive(now: MonoTime, reason: String, into actions: inout [SessionAction]) {
        clearOutage()
        backoff.reset()
        connectedAt = connectedAt ?? now
        transition(to: .live, reason: reason, into: &actions)
    }

    private mutating func clearOutage() {
        lossAt = nil
        graceDeadline = nil
        nextAttemptAt = nil
        pendingProbe = false
    }

    private mutating func connectNow(now: MonoTime, into actions: inout [SessionAction]) {
        generation += 1
        attempt = generation
        nextAttemptAt = nil
        actions.append(.connect(generation: generation))
    }

    private mutating func scheduleRetry(after failure: ConnectionFailure, now: MonoTime, random: Double) {
        guard networkOnline, [.connecting, .degraded, .reconnecting].contains(state) else { return }
        var delay = backoff.nextDelay(unit: random)
        if failure.kind == .refused {
            // Refusals are deliberate: never faster than the cap, jitter only adds.
            let cap = settings.backoff.max.nanoseconds
            delay = .nanoseconds(cap + Int64(Double(cap) * settings.backoff.jitter * random))
        }
        nextAttemptAt = now + delay
    }

    private mutating func abandonAttempt(into actions: inout [SessionAction]) {
        if let a = attempt {
            actions.append(.close(generation: a, code: .normal))
            attempt = nil
        }
        nextAttemptAt = nil
    }

    private mutating func closeEverything(code: CloseCode, into actions: inout [SessionAction]) {
        abandonAttempt(into: &actions)
        forgetRotation(into: &actions)
        expiredGeneration = nil
        if let c = connection {
            actions.append(.close(generation: c, code: code))
            connection = nil
        }
        clearOutage()
        connectedAt = nil
    }

    private mutating func transition(to newState: SessionState, reason: String, into actions: inout [SessionAction]) {
        guard newState != state else { return }
        let old = state
        state = newState
        if newState != .live { connectedAt = nil }
        actions.append(.emit(.stateChanged(from: old, to: newState, reason: reason)))
    }
}

public enum CloseCode: UInt16, Sendable, Equatable {
    case normal = 1000
    case goingAway = 1001
}

public enum SessionAction: Sendable, Equatable {
    /// Open a new connection for this generation.
    case connect(generation: UInt64)
    /// Close (or abandon) the connection or attempt of this generation. Idempotent.
    case close(generation: UInt64, code: CloseCode)
    /// Drop the connection at once (TCP reset, no close frame): the network is down.
    case abort(generation: UInt64)
    /// Ping the connection of this generation and report `probeSucceeded` or `failed`.
    case probe(generation: UInt64)
    /// The network is down: stop pinging this connection (it cannot answer) until a probe.
    case suspend(generation: UInt64)
    /// A rotation hands over from this connection: send no more mic audio on it, and report
    /// `uplinkDrained` once it has acknowledged all it was sent.
    case drainUplink(generation: UInt64)
    case emit(SessionEvent)
}

/// Why a rotation switched when it did.
public enum RotationReason: String, Sendable, Equatable {
    /// A quiet moment after the session was due.
    case quiet
    /// No quiet moment came before `rotate_deadline`.
    case deadline
    /// The brain closed the session at its cap.
    case serverCap = "server_cap"
    /// The old connection was lost while its successor was ready.
    case connectionLost = "connection_lost"

    /// Not at a moment tether chose.
    public var forced: Bool { self != .quiet }
}

public enum SessionEvent: Sendable, Equatable {
    case stateChanged(from: SessionState, to: SessionState, reason: String)
    case live(generation: UInt64, afterMs: Int64)
    case blip(durationMs: Int64)
    case lost(reason: String)
    /// The conversation moved from the session of one generation to the next's.
    case rotated(from: UInt64, to: UInt64, waitedMs: Int64, reason: RotationReason)
}
