/// Which reference sample the microphone heard: the capture frame at capture position `c` heard
/// the ring's sample `c + offset` (before the delay estimator's correction). The offset follows
/// from the device delays: a capture period read at `t` with `d` frames still in the capture
/// buffer was heard from `t - (period + d) / rate`; the playback anchor says which sample the
/// speaker played then; `echo_delay` moves it back for paths longer than the devices report.
///
/// Each period gives a measurement, late by the threads' scheduling: a capture period read late
/// looks heard late, a playout anchor taken late puts the speaker behind. Where the devices say
/// what they hold (`snd_pcm_delay` from a pointer that moves with the converter) the delays
/// make up for it; where they cannot (a plugin that reports no delay, a pointer that moves by
/// whole periods) the lateness is the thread's, tens of milliseconds under load and for
/// stretches longer than a few periods (#15: the median of nine moved by 3 to 11 ms while the
/// path had not changed, and each move threw a converged filter's model off). So each side's
/// timeline is taken from its least late report of the last `reports` (`LeastLateTimeline`);
/// then the offset follows the median of the last few measurements and moves only when that is
/// off by more than `tolerance`: a reference that shifted by a sample every period would keep
/// the adaptive filter from ever converging. So it moves when the path really changed (a
/// device restarted, an xrun lost capture frames, two clocks drifted apart by the tolerance).
/// The canceller's tolerance is half its filter's lead (`EchoCancelPolicy.alignmentTolerance`).
public struct EchoAlignment: Sendable {
    public let rate: Int
    public let tolerance: Int64
    public private(set) var offset: Int64?
    private var recent: [Int64]
    private var sorted: [Int64]
    private var next = 0
    private var count = 0
    private var playout: LeastLateTimeline
    private var capture: LeastLateTimeline

    /// `reports`: how many periods' reports each side's timeline is taken from (a second's).
    public init(rate: Int, tolerance: Duration = .milliseconds(2), window: Int = 9, reports: Int = 50) {
        self.rate = max(1, rate)
        self.tolerance = Int64(PCM16.frames(tolerance, rate: self.rate))
        recent = [Int64](repeating: 0, count: max(1, window))
        sorted = recent
        playout = LeastLateTimeline(rate: self.rate, reports: reports)
        capture = LeastLateTimeline(rate: self.rate, reports: reports)
    }

    /// One period: the frame at capture `position` was heard at `heardAt` (by the capture
    /// device's delay), and `anchor` is the latest playout anchor. Measures against both sides'
    /// least late timelines; returns true when the offset changed.
    @discardableResult
    public mutating func observe(capturePosition position: Int64, heardAt: MonoTime, anchor: PlayoutAnchor,
                                 extraDelay: Duration) -> Bool {
        let at = heardAt - extraDelay
        playout.report(time: anchor.time, position: anchor.position)
        capture.report(time: at, position: position)
        let played = playout.position(at: at) ?? anchor.position
        let heard = capture.position(at: at) ?? position
        return observe(played - heard)
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
        playout.reset()
        capture.reset()
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
