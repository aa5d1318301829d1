import Synchronization
import TetherCore

/// The queue between `EventBus.publish` and its delivery thread, and the listeners that thread
/// calls. Kept apart from the bus so that the thread can outlive it and drain what was queued.
final class EventDelivery: Sendable {
    enum Entry: Sendable {
        case event(TetherEvent)
        /// Signalled once everything queued before it has been delivered.
        case barrier(OnceSignal<Void>)
    }

    private struct Queue {
        var entries: [Entry] = []
        var closed = false
    }

    private struct Subscription {
        let id: Int
        let topics: Set<EventTopic>
        /// `audio.level`, ten a second while anything plays or listens: only for who asks.
        let levels: Bool
        let listener: EventBus.Listener

        func wants(_ kind: TetherEventKind) -> Bool {
            if case .audioLevel = kind, !levels { return false }
            return topics.contains(kind.topic) || kind.topic == .error
        }
    }

    private struct Listeners {
        var nextID = 0
        var all: [Subscription] = []
    }

    private let capacity: Int
    private let queue: Monitor<Queue>
    private let listeners = Mutex(Listeners())
    let dropped = Atomic<Int>(0)

    init(capacity: Int) {
        self.capacity = max(1, capacity)
        var initial = Queue()
        // Reserved up front so that publishing (on an audio thread) does not allocate.
        initial.entries.reserveCapacity(self.capacity)
        queue = Monitor(initial)
    }

    /// Never waits for delivery: the lock is held only to append. Events past `capacity` are
    /// dropped and counted; barriers always go in (a flush must not hang on a full queue).
    func enqueue(_ entry: Entry) {
        let wake = queue.withLock { q -> Bool in
            if case .event = entry, q.entries.count >= capacity {
                dropped.add(1, ordering: .relaxed)
                return false
            }
            q.entries.append(entry)
            // The thread waits only on an empty queue; otherwise it is busy and will look again.
            return q.entries.count == 1
        }
        if wake { queue.notifyAll() }
    }

    func close() {
        queue.withLock { $0.closed = true }
        queue.notifyAll()
    }

    /// The delivery thread: takes everything queued at once, then delivers it in order.
    func run() {
        // Two buffers swapped under the lock: the queue always gets back one with capacity.
        var batch: [Entry] = []
        batch.reserveCapacity(capacity)
        while true {
            let open = queue.wait(until: MonoTime(nanoseconds: .max)) { q -> Bool? in
                if !q.entries.isEmpty {
                    swap(&batch, &q.entries)
                    return true
                }
                return q.closed ? false : nil
            }
            guard open == true else { return }
            for entry in batch {
                switch entry {
                case .event(let event): deliver(event)
                case .barrier(let done): done.signal(())
                }
            }
            batch.removeAll(keepingCapacity: true)
        }
    }

    func deliver(_ event: TetherEvent) {
        let targets = listeners.withLock { l in
            l.all.filter { $0.wants(event.kind) }.map(\.listener)
        }
        for listener in targets { listener(event) }
    }

    /// Whether any listener would be given an event of `kind`: one that nobody wants is not
    /// queued, so it costs its publisher (an audio thread) no wake-up of the delivery thread.
    func wanted(_ kind: TetherEventKind) -> Bool {
        listeners.withLock { l in l.all.contains { $0.wants(kind) } }
    }

    func subscribe(topics: Set<EventTopic>, levels: Bool, _ listener: @escaping EventBus.Listener) -> Int {
        listeners.withLock { l in
            l.nextID += 1
            l.all.append(Subscription(id: l.nextID, topics: topics, levels: levels, listener: listener))
            return l.nextID
        }
    }

    func unsubscribe(_ id: Int) {
        listeners.withLock { $0.all.removeAll { $0.id == id } }
    }
}
