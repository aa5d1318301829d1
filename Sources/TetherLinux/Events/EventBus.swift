import Synchronization
import TetherCore

/// Fans events out to whoever listens: control-socket subscribers, the systemd STATUS line,
/// the journal. Events are published from real-time audio threads, the netlink thread and the
/// session loop, so `publish` only stamps the event and puts it in a bounded queue: it never
/// waits for a listener, never blocks, and drops (and counts) when the queue is full rather
/// than stall capture. One thread of the bus's own delivers to the listeners, one event at a
/// time in publish order, so a listener may be slow (sd_notify, a control write) without
/// costing an audio period, and a listener never runs on the thread that published.
public final class EventBus: Sendable {
    public typealias Listener = @Sendable (TetherEvent) -> Void

    /// Room for bursts: a reconnect storm or a barge-in publishes a handful at once, audio
    /// levels at most ten a second; a thousand waiting events means delivery is stuck.
    public static let defaultCapacity = 1024

    private let delivery: EventDelivery
    private let thread: DedicatedThread?

    public init(capacity: Int = EventBus.defaultCapacity) {
        let delivery = EventDelivery(capacity: capacity)
        self.delivery = delivery
        // Without a thread (the system refuses one) events are delivered inline rather than lost.
        thread = try? DedicatedThread.start(name: "tether-events") { delivery.run() }
    }

    deinit {
        // The thread holds the delivery state, not the bus: it drains what is queued and ends.
        delivery.close()
        thread?.detach()
    }

    /// An event no listener wants (levels with no control client subscribed to them, most of a
    /// robot's day) is dropped here, before it wakes the delivery thread.
    public func publish(_ kind: TetherEventKind) {
        guard delivery.wanted(kind) else { return }
        hand(TetherEvent(kind, unixMillis: MonoClock.unixMillis()))
    }

    public func publish(_ event: TetherEvent) {
        guard delivery.wanted(event.kind) else { return }
        hand(event)
    }

    private func hand(_ event: TetherEvent) {
        if thread == nil { delivery.deliver(event); return }
        delivery.enqueue(.event(event))
    }

    /// Events that found the queue full and were not delivered.
    public var dropped: Int { delivery.dropped.load(ordering: .relaxed) }

    /// `status.events`.
    public var statusJSON: JSONObject { ["dropped": .number(Double(dropped))] }

    /// Returns a token for `unsubscribe`. A listener gets the events published after it
    /// subscribed, on the bus's thread: those of `topics` (and errors), `audio.level` only
    /// with `levels`.
    @discardableResult
    public func subscribe(topics: Set<EventTopic> = Set(EventTopic.allCases), levels: Bool = true, _ listener: @escaping Listener) -> Int {
        delivery.subscribe(topics: topics, levels: levels, listener)
    }

    public func unsubscribe(_ id: Int) {
        delivery.unsubscribe(id)
    }

    /// Resumes once every event published before the call has been delivered (false when
    /// `timeout` passes first): a component about to close its subscribers lets them hear the
    /// last events (the session's `stopping`) first.
    @discardableResult
    public func flush(within timeout: Duration) async -> Bool {
        if thread == nil { return true }
        let done = OnceSignal<Void>()
        delivery.enqueue(.barrier(done))
        return await done.wait(timeout: timeout) != nil
    }
}
