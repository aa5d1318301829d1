/// Lets something happen at most once per `minInterval` (`audio.level` at 10 Hz, whichever
/// audio thread gets there first). The first call is always allowed.
public struct RateLimiter: Sendable, Equatable {
    public let minInterval: Duration
    private var last: MonoTime?

    public init(minInterval: Duration) {
        self.minInterval = minInterval
    }

    public mutating func allow(at now: MonoTime) -> Bool {
        if let last, now - last < minInterval { return false }
        last = now
        return true
    }
}
