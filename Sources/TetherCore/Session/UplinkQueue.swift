import DequeModule

/// Mic audio on its way upstream (rule 5). Frames stay here from capture until a pong proves
/// the peer has read past them, so nothing is lost when a connection dies:
///
///     [ sent, not yet acknowledged | not sent yet ]
///       ^ acknowledged by a pong      ^ `send` takes from here
///
/// After a loss, `rewind` makes the unacknowledged frames "not sent" again and they go out
/// first on the next connection, in capture order, before any newer frame: the queue is the
/// only path to the socket, so there is no window in which a new frame could overtake them.
/// Bounded by age and bytes; what falls out unsent is counted in `droppedMs`.
public struct UplinkQueue: Sendable {
    public struct Frame: Sendable, Equatable {
        public var sequence: UInt64
        public var capturedAt: MonoTime
        public var duration: Duration
        public var bytes: [UInt8]
    }

    public struct Limits: Sendable, Equatable {
        public var maxAge: Duration
        public var maxBytes: Int
        public var replay: Bool
        public init(maxAge: Duration, maxBytes: Int, replay: Bool) {
            self.maxAge = maxAge
            self.maxBytes = maxBytes
            self.replay = replay
        }
        public init(_ buffer: BufferConfig) {
            self.init(maxAge: buffer.maxAge, maxBytes: buffer.maxBytes, replay: buffer.replay)
        }
    }

    public private(set) var limits: Limits
    private var frames: Deque<Frame> = []
    /// How many frames at the front have been written on the current connection.
    private var sentCount = 0
    private var nextSequence: UInt64 = 1
    public private(set) var totalBytes = 0
    private var unsentNanos: Int64 = 0
    /// Bytes written on the current connection and not yet acknowledged.
    public private(set) var unacknowledgedBytes = 0
    public private(set) var droppedNanos: Int64 = 0
    public private(set) var droppedFrames = 0
    /// Frames that were sent but fell out of the queue before any pong vouched for them.
    public private(set) var unconfirmedEvictions = 0

    public init(limits: Limits) { self.limits = limits }

    public mutating func update(limits: Limits) {
        self.limits = limits
    }

    // MARK: Capture side

    /// Adds a captured frame. While `sending` is false (not live) and replay is off, the
    /// frame is dropped and counted instead.
    @discardableResult
    public mutating func append(_ bytes: [UInt8], capturedAt: MonoTime, duration: Duration, sending: Bool) -> UInt64 {
        let sequence = nextSequence
        nextSequence += 1
        if !sending && !limits.replay {
            droppedNanos += duration.nanoseconds
            droppedFrames += 1
            return sequence
        }
        frames.append(Frame(sequence: sequence, capturedAt: capturedAt, duration: duration, bytes: bytes))
        totalBytes += bytes.count
        unsentNanos += duration.nanoseconds
        enforceLimits(now: capturedAt)
        return sequence
    }

    /// Drops what is older than `maxAge` or beyond `maxBytes`, oldest first.
    public mutating func enforceLimits(now: MonoTime) {
        let oldest = now - limits.maxAge
        while let first = frames.first, totalBytes > limits.maxBytes || first.capturedAt < oldest {
            evictFirst()
        }
    }

    private mutating func evictFirst() {
        let frame = frames.removeFirst()
        totalBytes -= frame.bytes.count
        if sentCount > 0 {
            sentCount -= 1
            unacknowledgedBytes -= frame.bytes.count
            unconfirmedEvictions += 1
        } else {
            unsentNanos -= frame.duration.nanoseconds
            droppedNanos += frame.duration.nanoseconds
            droppedFrames += 1
        }
    }

    // MARK: Connection side

    public var hasUnsent: Bool { sentCount < frames.count }

    /// Takes the next frames to write, oldest first, up to `maxBytes` (at least one frame),
    /// and marks them sent. Returns nil when everything has been sent.
    public mutating func takeUnsent(maxBytes: Int) -> (bytes: [UInt8], frames: Int, lastSequence: UInt64)? {
        guard sentCount < frames.count else { return nil }
        var out: [UInt8] = []
        var count = 0
        var last: UInt64 = 0
        while sentCount < frames.count {
            let frame = frames[sentCount]
            if count > 0 && out.count + frame.bytes.count > maxBytes { break }
            if count == 0 && frame.bytes.count >= maxBytes {
                out = frame.bytes
            } else {
                out.append(contentsOf: frame.bytes)
            }
            unsentNanos -= frame.duration.nanoseconds
            unacknowledgedBytes += frame.bytes.count
            last = frame.sequence
            sentCount += 1
            count += 1
        }
        return (out, count, last)
    }

    /// The sequence of the newest frame written so far: a ping sent now acknowledges up to
    /// here once its pong returns.
    public var sentMark: UInt64 {
        sentCount == 0 ? (frames.first.map { $0.sequence - 1 } ?? nextSequence - 1) : frames[sentCount - 1].sequence
    }

    /// A pong came back for a ping sent when `sentMark` was `mark`: the peer has read every
    /// frame up to it.
    public mutating func acknowledge(upTo mark: UInt64) {
        while sentCount > 0, let first = frames.first, first.sequence <= mark {
            frames.removeFirst()
            totalBytes -= first.bytes.count
            unacknowledgedBytes -= first.bytes.count
            sentCount -= 1
        }
    }

    /// The connection died: what it did not acknowledge goes out again first next time, or,
    /// without replay, is dropped and counted.
    public mutating func rewind() {
        unacknowledgedBytes = 0
        if limits.replay {
            for i in 0..<sentCount { unsentNanos += frames[i].duration.nanoseconds }
            sentCount = 0
        } else {
            while sentCount > 0 {
                let frame = frames.removeFirst()
                totalBytes -= frame.bytes.count
                droppedNanos += frame.duration.nanoseconds
                droppedFrames += 1
                sentCount -= 1
            }
        }
    }

    /// Forget everything without counting it lost (pause: the robot was told not to listen).
    public mutating func discardAll() {
        frames.removeAll()
        sentCount = 0
        totalBytes = 0
        unsentNanos = 0
        unacknowledgedBytes = 0
    }

    // MARK: Status

    public var queuedMs: Int64 { unsentNanos / 1_000_000 }
    public var droppedMs: Int64 { droppedNanos / 1_000_000 }
    public var unacknowledgedFrames: Int { sentCount }
    public var frameCount: Int { frames.count }
}
