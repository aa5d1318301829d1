import Synchronization
import TetherCore

/// The daemon's shared `HealthLedger`: every critical loop (capture, playback, session,
/// network, control) registers once and calls `beat()` each time it makes progress. The
/// watchdog asks for a verdict before each `WATCHDOG=1`.
public final class HealthRegistry: Sendable {
    private let ledger = Mutex(HealthLedger())
    private let stalls = Mutex<[String: MonoTime]>([:])

    public init() {}

    public func register(_ loop: String) -> Heartbeat {
        let now = MonoClock.now()
        ledger.withLock { $0.register(loop, nowNanos: now.nanoseconds) }
        return Heartbeat(loop: loop, registry: self)
    }

    public func unregister(_ loop: String) {
        ledger.withLock { $0.unregister(loop) }
    }

    func beat(_ loop: String) {
        let now = MonoClock.now()
        if let until = stalls.withLock({ $0[loop] }) {
            if now < until { return }
            stalls.withLock { $0[loop] = nil }
        }
        ledger.withLock { $0.beat(loop, nowNanos: now.nanoseconds) }
    }

    public func verdict(maxAge: Duration) -> HealthLedger.Verdict {
        let now = MonoClock.now()
        return ledger.withLock { $0.verdict(nowNanos: now.nanoseconds, maxAgeNanos: maxAge.nanoseconds) }
    }

    public var loops: [String] { ledger.withLock { $0.loops } }

    /// Debug builds only (the `debug-stall` control command): pretend a loop is stuck by
    /// swallowing its heartbeats for a while, exactly what a blocked loop looks like.
    public func simulateStall(of loop: String, for duration: Duration) -> Bool {
        guard ledger.withLock({ $0.lastBeat(of: loop) != nil }) else { return false }
        stalls.withLock { $0[loop] = MonoClock.now() + duration }
        return true
    }
}

/// A loop's handle on the registry. Cheap to call on every iteration.
public struct Heartbeat: Sendable {
    public let loop: String
    private let registry: HealthRegistry

    init(loop: String, registry: HealthRegistry) {
        self.loop = loop
        self.registry = registry
    }

    public func beat() { registry.beat(loop) }

    /// The loop is ending on purpose; stop judging it.
    public func retire() { registry.unregister(loop) }
}
