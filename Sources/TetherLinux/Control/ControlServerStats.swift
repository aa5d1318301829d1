import Synchronization
import TetherCore

/// Counters of what the control socket refused, for `status.control` and for tests that
/// check bad input was seen and survived.
public final class ControlServerStats: Sendable {
    public enum Counter: String, CaseIterable, Sendable {
        case accepted, refusedPeer = "refused_peer", refusedBusy = "refused_busy"
        case badRequest = "bad_requests", lineTooLong = "lines_too_long", slowConsumer = "slow_consumers"
        case idleClosed = "idle_closed", rejectedFlood = "flood_rejected"
    }

    private let counts = Mutex<[Counter: Int]>([:])
    private let open = Atomic<Int>(0)

    public init() {}

    func record(_ counter: Counter) {
        counts.withLock { $0[counter, default: 0] += 1 }
    }

    /// Claims a client slot; false when `limit` are already open.
    func claimSlot(limit: Int) -> Bool {
        while true {
            let current = open.load(ordering: .relaxed)
            guard current < limit else { return false }
            if open.compareExchange(expected: current, desired: current + 1, ordering: .relaxed).exchanged { return true }
        }
    }

    func releaseSlot() { open.subtract(1, ordering: .relaxed) }

    public var openConnections: Int { open.load(ordering: .relaxed) }

    public var json: JSONObject {
        let snapshot = counts.withLock { $0 }
        var object: JSONObject = ["clients": .number(Double(openConnections))]
        for counter in Counter.allCases { object[counter.rawValue] = .number(Double(snapshot[counter, default: 0])) }
        return object
    }
}
