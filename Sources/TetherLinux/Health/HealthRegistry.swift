import Glibc
import Synchronization
import TetherCore

/// The daemon's shared `HealthLedger`: every critical loop (capture, playback, session,
/// network, control) registers once and calls `beat()` each time it makes progress. The
/// watchdog asks for a verdict before each `WATCHDOG=1`.
public final class HealthRegistry: Sendable {
    private let ledger = Mutex(HealthLedger())
    private let stallRequests = Mutex<[String: Duration]>([:])
    /// Whether a stall is pending, so that a beat takes no second lock in normal running.
    private let stallPending = Atomic<Bool>(false)

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
        if stallPending.load(ordering: .relaxed), let stall = takeStallRequest(for: loop) {
            // Block the calling thread, which is the loop's own: the loop is really stuck.
            var request = timespec(tv_sec: Int(stall.nanoseconds / 1_000_000_000), tv_nsec: Int(stall.nanoseconds % 1_000_000_000))
            var remaining = timespec()
            while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
        }
        let now = MonoClock.now()
        ledger.withLock { $0.beat(loop, nowNanos: now.nanoseconds) }
    }

    public func verdict(maxAge: Duration) -> HealthLedger.Verdict {
        let now = MonoClock.now()
        return ledger.withLock { $0.verdict(nowNanos: now.nanoseconds, maxAgeNanos: maxAge.nanoseconds) }
    }

    public var loops: [String] { ledger.withLock { $0.loops } }

    /// Tests only (the `debug-stall` control command, enabled by TETHER_TEST_FAULTS=1): the
    /// loop's next heartbeat blocks its own thread for `duration`, so the loop is stuck for
    /// real, as a deadlock or a wedged device call would leave it.
    public func simulateStall(of loop: String, for duration: Duration) -> Bool {
        guard ledger.withLock({ $0.lastBeat(of: loop) != nil }) else { return false }
        stallRequests.withLock { $0[loop] = duration }
        stallPending.store(true, ordering: .relaxed)
        return true
    }

    private func takeStallRequest(for loop: String) -> Duration? {
        stallRequests.withLock { requests in
            defer { stallPending.store(!requests.isEmpty, ordering: .relaxed) }
            return requests.removeValue(forKey: loop)
        }
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
