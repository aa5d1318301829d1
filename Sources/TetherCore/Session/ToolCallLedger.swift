/// Tool calls the brain made that a robot process has not answered yet (`tool.call` events,
/// `tool-result` commands). Pure and clock-injected: the session arms one timer for
/// `nextDeadline` and calls `expire` when it fires.
///
/// A call belongs to the upstream session (generation) that asked for it. When that session
/// ends, the call stays until its deadline, so a late answer is told the session has ended
/// (not that the call is unknown) and the timeout is still reported, but nothing is sent.
public struct ToolCallLedger: Sendable {
    public struct Call: Sendable, Equatable {
        public var callID: String
        public var generation: UInt64
        public var deadline: MonoTime
        /// The timeout it was given, for the error that reports it.
        public var timeout: Duration
        /// The upstream session that asked has ended: its answer has nowhere to go.
        public var sessionEnded = false
    }

    public enum Answer: Sendable, Equatable {
        /// Send the output on this generation's connection.
        case deliver(generation: UInt64)
        /// The session that asked has ended; the call is forgotten.
        case sessionEnded
        /// No such call is waiting: answered already, timed out, or never made.
        case unknown
    }

    public var timeout: Duration
    private var pending: [String: Call] = [:]

    public init(timeout: Duration) { self.timeout = timeout }

    /// The brain asked; a call id seen again starts over (new generation, new deadline).
    public mutating func called(_ callID: String, generation: UInt64, now: MonoTime) {
        pending[callID] = Call(callID: callID, generation: generation, deadline: now + timeout, timeout: timeout)
    }

    public mutating func answer(_ callID: String) -> Answer {
        guard let call = pending.removeValue(forKey: callID) else { return .unknown }
        return call.sessionEnded ? .sessionEnded : .deliver(generation: call.generation)
    }

    /// Calls whose deadline has passed, oldest deadline first; they are forgotten.
    public mutating func expire(now: MonoTime) -> [Call] {
        let due = pending.values.filter { $0.deadline <= now }.sorted { ($0.deadline, $0.callID) < ($1.deadline, $1.callID) }
        for call in due { pending[call.callID] = nil }
        return due
    }

    /// The connection of `generation` is gone.
    public mutating func generationEnded(_ generation: UInt64) {
        for (id, call) in pending where call.generation == generation { pending[id]?.sessionEnded = true }
    }

    public mutating func removeAll() { pending.removeAll() }

    public var nextDeadline: MonoTime? { pending.values.map(\.deadline).min() }

    public var count: Int { pending.count }
}
