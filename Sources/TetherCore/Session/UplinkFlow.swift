/// When queued mic audio goes out, and in what portions (rule 5). Pure: the uplink stage
/// asks it before every message it writes and when a pong comes back.
///
/// Live audio leaves in batches, not one message per period: waking the event loop costs
/// more than the work it then does. A backlog (after an outage) is replayed in big chunks
/// but never more than a window ahead of the last pong: a ping then follows and the rest
/// waits for its answer, so the ping is never stuck behind more than a window (a slow link
/// is not taken for a dead one) and a connection that dies mid-replay leaves at most a
/// window to send again.
public struct UplinkFlow: Sendable, Equatable {
    public struct Limits: Sendable, Equatable {
        /// Uplink messages carry at most this much PCM: one period while streaming live,
        /// bigger chunks while a backlog is replayed.
        public var maxChunkBytes = 32 * 1024
        /// While a backlog is replayed, at most this much may be in flight unacknowledged.
        public var replayWindowBytes = 64 * 1024
        /// A backlog is more queued audio than this.
        public var backlogMs: Int64 = 200
        /// Live audio is sent once this much is queued.
        public var batchMs: Int64 = 40
        public init() {}

        /// Capture side: whether the frames queued while live are worth waking the loop for.
        public func batchReady(queuedMs: Int64) -> Bool { queuedMs >= batchMs }
    }

    /// The uplink queue as the policy sees it.
    public struct Backlog: Sendable, Equatable {
        /// Captured and not sent yet.
        public var queuedMs: Int64
        /// Written on this connection and not yet acknowledged by a pong.
        public var inFlightBytes: Int
        public var hasUnsent: Bool
        public init(queuedMs: Int64, inFlightBytes: Int, hasUnsent: Bool) {
            self.queuedMs = queuedMs
            self.inFlightBytes = inFlightBytes
            self.hasUnsent = hasUnsent
        }
    }

    public enum Step: Sendable, Equatable {
        /// Write the next chunk of at most this many bytes.
        case send(maxBytes: Int)
        /// The replay window is full: ping now and send nothing more until its pong.
        case pingAndAwaitWindow
        /// Nothing to send, the socket is full, or a window ping is out.
        case hold
    }

    public let limits: Limits
    /// A window ping is out: sending resumes on its pong.
    public private(set) var awaitingWindowAck = false

    public init(limits: Limits = Limits()) { self.limits = limits }

    public mutating func next(_ backlog: Backlog, writable: Bool) -> Step {
        guard writable && !awaitingWindowAck else { return .hold }
        if backlog.queuedMs > limits.backlogMs && backlog.inFlightBytes >= limits.replayWindowBytes {
            awaitingWindowAck = true
            return .pingAndAwaitWindow
        }
        return backlog.hasUnsent ? .send(maxBytes: limits.maxChunkBytes) : .hold
    }

    /// A pong acknowledged what the connection carried. True when a window ping was out,
    /// so sending may resume.
    public mutating func acknowledged() -> Bool {
        defer { awaitingWindowAck = false }
        return awaitingWindowAck
    }

    /// Another connection carries the uplink (or none): its window starts empty.
    public mutating func connectionChanged() { awaitingWindowAck = false }
}

extension UplinkQueue {
    public var backlog: UplinkFlow.Backlog {
        UplinkFlow.Backlog(queuedMs: queuedMs, inFlightBytes: unacknowledgedBytes, hasUnsent: hasUnsent)
    }
}
