import Synchronization
import TetherCore

/// The `audio.level` event: both audio threads feed their meter, and whichever of them finds
/// 100 ms have passed measures the RMS of everything since, for mic and speaker together, and
/// publishes it if it changed (`LevelReportPolicy`). Nothing is published while neither thread
/// runs, since nothing calls in.
final class AudioLevels: Sendable {
    fileprivate struct State {
        var mic = LevelMeter()
        var out = LevelMeter()
        var policy = LevelReportPolicy()
        /// The window is measured every 100 ms whether or not it is published.
        var window = RateLimiter(minInterval: .milliseconds(100))
    }

    private let state = Mutex(State())
    private let events: EventBus

    init(events: EventBus) {
        self.events = events
    }

    /// A period of mic audio (what goes uplink: after mute and gate), or nil when muted.
    func mic(_ samples: UnsafeBufferPointer<Int16>?, at now: MonoTime) {
        let levels = state.withLock { s -> (Double, Double)? in
            if let samples { s.mic.add(samples) }
            return s.report(at: now)
        }
        if let levels { publish(levels) }
    }

    /// A period sent to the speaker (after the volume).
    func out(_ samples: UnsafeBufferPointer<Int16>, at now: MonoTime) {
        let levels = state.withLock { s -> (Double, Double)? in
            s.out.add(samples)
            return s.report(at: now)
        }
        if let levels { publish(levels) }
    }

    private func publish(_ levels: (mic: Double, out: Double)) {
        events.publish(.audioLevel(micDBFS: Self.tenth(levels.mic), outDBFS: Self.tenth(levels.out)))
    }

    private static func tenth(_ x: Double) -> Double { (x * 10).rounded() / 10 }
}

extension AudioLevels.State {
    mutating func report(at now: MonoTime) -> (Double, Double)? {
        guard window.allow(at: now) else { return nil }
        let levels = (mic.take(), out.take())
        return policy.shouldPublish(mic: levels.0, out: levels.1, at: now) ? levels : nil
    }
}
