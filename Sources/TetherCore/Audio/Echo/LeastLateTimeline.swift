/// Where a device's timeline stands, from the least late of its recent reports. A report says
/// that the frame at `position` was at the device's converter at `time` (a playout anchor; a
/// capture period's first frame and when it was heard). Such a report can come late, never
/// early: the thread that took it was woken late, or the device could not say what it still
/// held (a plugin that reports no delay, a pointer that moves by whole periods), so the time
/// is that of the thread, not of the device. Of the last `reports`, the one that puts the
/// timeline furthest ahead is the least late: its position at any time is the estimate.
///
/// So a few late reports, or a run of them shorter than the window, move nothing; a timeline
/// that really jumped ahead (a device restarted on fresh audio) is followed at once, one that
/// fell behind (an xrun lost capture frames) once the reports from before have left the window.
///
/// Pure storage, allocated once: the capture thread keeps one per device.
public struct LeastLateTimeline: Sendable {
    public let rate: Int
    private var times: [Int64]
    private var positions: [Int64]
    private var next = 0
    private var count = 0

    public init(rate: Int, reports: Int) {
        self.rate = max(1, rate)
        times = [Int64](repeating: 0, count: max(1, reports))
        positions = times
    }

    public mutating func report(time: MonoTime, position: Int64) {
        times[next] = time.nanoseconds
        positions[next] = position
        next = (next + 1) % times.count
        count = min(count + 1, times.count)
    }

    /// The position at `time` by the least late report (nil before the first).
    public func position(at time: MonoTime) -> Int64? {
        guard count > 0 else { return nil }
        var best = Int64.min
        for i in 0..<count {
            let p = positions[i] + (time.nanoseconds - times[i]) * Int64(rate) / 1_000_000_000
            best = max(best, p)
        }
        return best
    }

    public mutating func reset() {
        next = 0
        count = 0
    }
}
