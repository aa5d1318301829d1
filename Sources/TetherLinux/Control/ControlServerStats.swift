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
    private let admissions = Mutex(ControlAdmissions(limits: ControlServer.connectionLimits))

    public init() {}

    func record(_ counter: Counter) {
        counts.withLock { $0[counter, default: 0] += 1 }
    }

    /// Claims a connection for a peer (see `ControlAdmissions`); counts the verdict.
    func admit(uid: UInt32, privileged: Bool) -> ControlAdmissions.Verdict {
        let verdict = admissions.withLock { $0.admit(uid: uid, privileged: privileged) }
        record(verdict == .admitted ? .accepted : .refusedBusy)
        return verdict
    }

    func release(uid: UInt32, privileged: Bool) {
        admissions.withLock { $0.release(uid: uid, privileged: privileged) }
    }

    public var json: JSONObject {
        let snapshot = counts.withLock { $0 }
        let (open, refused, total) = admissions.withLock { ($0.open, $0.refused, $0.totalOpen) }
        var object: JSONObject = ["clients": .number(Double(total))]
        for counter in Counter.allCases { object[counter.rawValue] = .number(Double(snapshot[counter, default: 0])) }
        object["clients_by_uid"] = .object(Self.byUID(open))
        object["refused_busy_by_uid"] = .object(Self.byUID(refused))
        object["limits"] = ["per_uid": .number(Double(ControlServer.connectionLimits.perUID)),
                            "total": .number(Double(ControlServer.connectionLimits.total))]
        return object
    }

    private static func byUID(_ counts: [UInt32: Int]) -> JSONObject {
        JSONObject(counts.sorted { $0.key < $1.key }.map { ("\($0.key)", .number(Double($0.value))) })
    }
}
