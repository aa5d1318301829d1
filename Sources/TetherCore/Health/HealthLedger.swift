/// The record of which critical loops have shown progress, and when. The watchdog asks it
/// whether every loop is fresh; one stale loop is enough to stop the `WATCHDOG=1` pings so
/// that systemd restarts a daemon whose timer still ticks but whose work has stopped.
///
/// Pure: times are injected as monotonic nanoseconds, so tests drive it with plain numbers.
public struct HealthLedger: Sendable {
    public struct Verdict: Sendable, Equatable {
        public var healthy: Bool
        /// Loops whose last heartbeat is older than the allowed age, by name.
        public var stale: [String]
    }

    private var lastBeat: [String: Int64] = [:]
    private var order: [String] = []

    public init() {}

    /// A loop takes part from the moment it registers; registration counts as a beat.
    public mutating func register(_ loop: String, nowNanos: Int64) {
        if lastBeat[loop] == nil { order.append(loop) }
        lastBeat[loop] = nowNanos
    }

    /// A loop that ends on purpose (shutdown) stops being judged.
    public mutating func unregister(_ loop: String) {
        lastBeat[loop] = nil
        order.removeAll { $0 == loop }
    }

    public mutating func beat(_ loop: String, nowNanos: Int64) {
        guard lastBeat[loop] != nil else { return }
        lastBeat[loop] = nowNanos
    }

    public var loops: [String] { order }

    public func lastBeat(of loop: String) -> Int64? { lastBeat[loop] }

    public func verdict(nowNanos: Int64, maxAgeNanos: Int64) -> Verdict {
        let stale = order.filter { loop in
            guard let beat = lastBeat[loop] else { return false }
            return nowNanos - beat > maxAgeNanos
        }
        return Verdict(healthy: stale.isEmpty, stale: stale)
    }
}

/// How the watchdog paces itself from systemd's `WATCHDOG_USEC`.
public struct WatchdogTiming: Sendable, Equatable {
    /// systemd's deadline between two pings.
    public var period: Duration

    public init(period: Duration) { self.period = period }

    /// Pings go out at half the period, as sd_watchdog_enabled(3) advises.
    public var pingInterval: Duration { period / 2 }

    /// A loop is stale once it has been silent for half the period: a stalled loop then stops
    /// the pings no later than one period after its last sign of life.
    public var maxHeartbeatAge: Duration { period / 2 }

    /// Loops beat at least this often, well inside `maxHeartbeatAge`.
    public var heartbeatInterval: Duration { min(.seconds(1), period / 8) }
}
