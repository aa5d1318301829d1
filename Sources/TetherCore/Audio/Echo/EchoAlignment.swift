/// Which reference sample the microphone heard: the capture frame at capture position `c` heard
/// the ring's sample `c + offset` (before the delay estimator's correction). The offset follows
/// from the device delays: a capture period read at `t` with `d` frames still in the capture
/// buffer was heard from `t - (period + d) / rate`; the playback anchor says which sample the
/// speaker played then; `echo_delay` moves it back for paths longer than the devices report.
///
/// Each period gives a measurement, noisy by the threads' scheduling (a millisecond or so); the
/// offset follows the median of the last few and moves only when that is off by more than
/// `tolerance`: a reference that shifted by a sample every period would keep the adaptive
/// filter from ever converging. So it moves when the path really changed (a device restarted,
/// an xrun lost capture frames, two clocks drifted apart by the tolerance).
public struct EchoAlignment: Sendable {
    public let rate: Int
    public let tolerance: Int64
    public private(set) var offset: Int64?
    private var recent: [Int64]
    private var sorted: [Int64]
    private var next = 0
    private var count = 0

    public init(rate: Int, tolerance: Duration = .milliseconds(2), window: Int = 9) {
        self.rate = max(1, rate)
        self.tolerance = Int64(PCM16.frames(tolerance, rate: self.rate))
        recent = [Int64](repeating: 0, count: max(1, window))
        sorted = recent
    }

    /// The ring position the frame at capture `position` heard, were the reported delays the
    /// whole path: the sample playing at `heardAt - extraDelay`.
    public static func measure(capturePosition position: Int64, heardAt: MonoTime, anchor: PlayoutAnchor,
                               extraDelay: Duration, rate: Int) -> Int64 {
        let since = (heardAt - extraDelay).nanoseconds - anchor.time.nanoseconds
        let played = anchor.position + since * Int64(rate) / 1_000_000_000
        return played - position
    }

    /// One period's measurement; returns true when the offset changed (it is set at the first).
    @discardableResult
    public mutating func observe(_ measured: Int64) -> Bool {
        recent[next] = measured
        next = (next + 1) % recent.count
        count = min(count + 1, recent.count)
        guard let current = offset else {
            offset = measured
            return true
        }
        guard count == recent.count else { return false }
        let median = medianOfRecent()
        guard abs(median - current) > tolerance else { return false }
        offset = median
        return true
    }

    /// Forget everything (a device reopened).
    public mutating func reset() {
        offset = nil
        count = 0
        next = 0
    }

    /// An insertion sort of a few values in storage kept for it: nothing allocated per period.
    private mutating func medianOfRecent() -> Int64 {
        for i in 0..<recent.count { sorted[i] = recent[i] }
        for i in 1..<sorted.count {
            var j = i
            while j > 0 && sorted[j - 1] > sorted[j] {
                sorted.swapAt(j - 1, j)
                j -= 1
            }
        }
        return sorted[sorted.count / 2]
    }
}
