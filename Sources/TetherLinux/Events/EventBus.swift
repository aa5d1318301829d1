import Synchronization
import TetherCore

/// Fans events out to whoever listens: control-socket subscribers, the systemd STATUS line,
/// the journal. Publishing never blocks: each subscriber gets its events through its own
/// callback, which must be quick (control connections queue them on their event loop and
/// drop subscribers that fall too far behind).
public final class EventBus: Sendable {
    public typealias Listener = @Sendable (TetherEvent) -> Void

    private struct State {
        var nextID = 0
        var listeners: [(id: Int, topics: Set<EventTopic>, listener: Listener)] = []
    }

    private let state = Mutex(State())

    public init() {}

    public func publish(_ kind: TetherEventKind) {
        publish(TetherEvent(kind, unixMillis: MonoClock.unixMillis()))
    }

    public func publish(_ event: TetherEvent) {
        let topic = event.topic
        let targets = state.withLock { s in
            s.listeners.filter { $0.topics.contains(topic) || topic == .error }.map(\.listener)
        }
        for listener in targets { listener(event) }
    }

    /// Returns a token for `unsubscribe`.
    @discardableResult
    public func subscribe(topics: Set<EventTopic> = Set(EventTopic.allCases), _ listener: @escaping Listener) -> Int {
        state.withLock { s in
            s.nextID += 1
            s.listeners.append((s.nextID, topics, listener))
            return s.nextID
        }
    }

    public func unsubscribe(_ id: Int) {
        state.withLock { s in s.listeners.removeAll { $0.id == id } }
    }
}
