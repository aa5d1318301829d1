/// Application-level liveness (rule 6): a ping with a random payload every `interval`; only a
/// pong with a matching payload counts. A ping is unanswered once `answerTimeout` passes
/// without its pong; the first miss sends a second ping at once instead of waiting for the
/// next interval, and when that one goes unanswered too the connection is dead. A half-open
/// connection is therefore found within one interval plus two answer timeouts, inside the
/// promised two intervals plus a second.
///
/// Pongs also acknowledge uplink audio: TCP keeps order, so the pong to a ping proves the
/// peer has read everything written before that ping (`mark`).
public struct PingTracker: Sendable {
    public struct Outstanding: Sendable, Equatable {
        public var payload: [UInt8]
        public var sentAt: MonoTime
        public var deadline: MonoTime
        public var mark: UInt64
        public var isProbe: Bool
    }

    public enum Answer: Sendable, Equatable {
        /// The payload matches no outstanding ping: ignored (only a matching pong counts).
        case unmatched
        /// The pong answers a ping: everything up to `mark` has been read by the peer.
        case matched(mark: UInt64, rtt: Duration, answeredProbe: Bool)
    }

    public let interval: Duration
    public let answerTimeout: Duration
    public private(set) var outstanding: [Outstanding] = []
    public private(set) var lastRTT: Duration?
    public private(set) var unmatchedPongs = 0

    public init(interval: Duration, answerTimeout: Duration? = nil) {
        self.interval = interval
        // Half the interval, at most a second: generous for a pong on a working path.
        self.answerTimeout = answerTimeout ?? min(interval / 2, .seconds(1))
    }

    public mutating func sent(payload: [UInt8], mark: UInt64, now: MonoTime, probeTimeout: Duration? = nil) {
        let deadline = now + (probeTimeout ?? answerTimeout)
        outstanding.append(Outstanding(payload: payload, sentAt: now, deadline: deadline, mark: mark, isProbe: probeTimeout != nil))
    }

    public mutating func received(pong payload: [UInt8], now: MonoTime) -> Answer {
        guard let index = outstanding.firstIndex(where: { $0.payload == payload }) else {
            unmatchedPongs += 1
            return .unmatched
        }
        let ping = outstanding[index]
        // Pongs come back in order: one answer vouches for every older ping too.
        let answeredProbe = outstanding[...index].contains { $0.isProbe }
        outstanding.removeFirst(index + 1)
        let rtt = now - ping.sentAt
        lastRTT = rtt
        return .matched(mark: ping.mark, rtt: rtt, answeredProbe: answeredProbe)
    }

    public enum Verdict: Sendable, Equatable {
        case alive
        /// One ping went unanswered and no other is out: send another now.
        case missedOne
        /// Two pings went unanswered.
        case dead
        /// A probe went unanswered: the path is broken now, not after two intervals.
        case probeFailed
    }

    public func verdict(now: MonoTime) -> Verdict {
        let overdue = outstanding.filter { $0.deadline <= now }
        if overdue.contains(where: \.isProbe) { return .probeFailed }
        if overdue.count >= 2 { return .dead }
        return overdue.count == 1 && outstanding.count == 1 ? .missedOne : .alive
    }

    /// When `verdict` may next change.
    public var nextDeadline: MonoTime? { outstanding.map(\.deadline).min() }

    /// When a verdict taken at `now` may next change: the first deadline still ahead. The ones
    /// passed are in that verdict (waiting for them again would be a check every instant), and
    /// between deadlines only `sent` and `received` change it.
    public func nextDeadline(after now: MonoTime) -> MonoTime? {
        outstanding.lazy.map(\.deadline).filter { $0 > now }.min()
    }

    public var hasProbeOutstanding: Bool { outstanding.contains(where: \.isProbe) }

    /// Forget the pings in flight: the network went away under them, so their silence says
    /// nothing about the peer. A pong that still arrives is simply unmatched.
    public mutating func forgetOutstanding() {
        outstanding.removeAll()
    }
}
