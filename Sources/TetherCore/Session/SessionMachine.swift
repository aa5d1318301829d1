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
        public init(grace: Duration, failedGrace: Duration, backoff: BackoffConfig) {
            self.grace = grace
            self.failedGrace = failedGrace
            self.backoff = backoff
        }
        public init(link: LinkConfig) {
            self.init(grace: link.grace, failedGrace: link.failedGrace, backoff: link.backoff)
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

    public init(settings: Settings) {
        self.settings = settings
        self.backoff = Backoff(config: settings.backoff)
    }

    /// The earliest time `tick` has work to do.
    public var nextWakeup: MonoTime? {
        switch (graceDeadline, nextAttemptAt) {
        case (let g?, let a?): return min(g, a)
        case (let g?, nil): return g
        case (nil, let a?): return a
        case (nil, nil): return nil
        }
    }

    /// True while a connection is established and may carry audio.
    public var isLive: Bool { state == .live }

    /// The established connection (live, or kept through a network loss inside grace).
    public var connectionGeneration: UInt64? { connection }

    /// The attempt under way, if any.
    public var attemptGeneration: UInt64? { attempt }

    public mutating func update(settings: Settings) {
        self.settings = settings
        backoff = Backoff(config: settings.backoff)
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
    public mutating func connected(generation g: UInt64, now: MonoTime) -> [SessionAction] {
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
        return actions
    }

    /// An attempt failed before the session went live, or a live connection was lost.
    public mutating func failed(generation g: UInt64, _ failure: ConnectionFailure, now: MonoTime, random: Double = 0.5) -> [SessionAction] {
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
        return actions
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
        lossAt = now
        outageStart = now
        lossReason = failure.detail
        connectedAt = nil
        let grace = failure.kind == .network ? settings.grace : settings.failedGrace
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
    case emit(SessionEvent)
}

public enum SessionEvent: Sendable, Equatable {
    case stateChanged(from: SessionState, to: SessionState, reason: String)
    case live(generation: UInt64, afterMs: Int64)
    case blip(durationMs: Int64)
    case lost(reason: String)
}
