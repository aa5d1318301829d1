/// When `audio.level` is worth publishing: at most every `minInterval` (10 Hz), and then only
/// if a level moved by at least `minChange` dB or `keepAlive` passed since the last report.
/// A robot's room is quiet most of the time; repeating the same number ten times a second
/// costs every subscriber a wake-up for nothing, while speech changes by several dB per
/// tenth of a second and still streams at 10 Hz.
public struct LevelReportPolicy: Sendable {
    public let minInterval: Duration
    public let keepAlive: Duration
    public let minChange: Double
    private var last: (time: MonoTime, mic: Double, out: Double)?

    public init(minInterval: Duration = .milliseconds(100), keepAlive: Duration = .seconds(1), minChange: Double = 1.0) {
        self.minInterval = minInterval
        self.keepAlive = keepAlive
        self.minChange = minChange
    }

    /// Decide on the levels measured over the window ending `now`; remembers what it let out.
    public mutating func shouldPublish(mic: Double, out: Double, at now: MonoTime) -> Bool {
        if let last {
            guard now - last.time >= minInterval else { return false }
            let moved = abs(mic - last.mic) >= minChange || abs(out - last.out) >= minChange
            guard moved || now - last.time >= keepAlive else { return false }
        }
        last = (now, mic, out)
        return true
    }
}
