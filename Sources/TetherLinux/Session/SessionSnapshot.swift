import Synchronization
import TetherCore

/// What the STATUS= line and `state` need, readable from any thread.
struct SessionSnapshot: Sendable {
    var state: SessionState = .idle
    var protocolName = ""
    var rttMs: Int?
    var lastError: String?
}

/// The latest `SessionSnapshot`: the session's loop writes it after every decision, the
/// supervisor reads it from wherever it refreshes the STATUS= line.
final class SessionSnapshotStore: Sendable {
    private let snapshot: Mutex<SessionSnapshot>

    init(protocolName: String) { snapshot = Mutex(SessionSnapshot(protocolName: protocolName)) }

    var current: SessionSnapshot { snapshot.withLock { $0 } }

    func update(_ change: (inout SessionSnapshot) -> Void) { snapshot.withLock { change(&$0) } }
}
