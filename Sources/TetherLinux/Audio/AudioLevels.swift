import Synchronization
import TetherCore

/// The `audio.level` event: both audio threads feed their meter, and whichever of them finds
/// 100 ms have passed publishes the RMS of everything since, for mic and speaker together.
/// Nothing is published while neither thread runs, since nothing calls in.
final class AudioLevels: Sendable {
    private struct State {
        var mic = LevelMeter()
        var out = LevelMeter()
        var limiter = RateLimiter(minInterval: .milliseconds(100))
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
            return s.limiter.allow(at: now) ? (s.mic.take(), s.out.take()) : nil
        }
        if let levels { publish(levels) }
    }

    /// A period sent to the speaker (after the volume).
    func out(_ samples: UnsafeBufferPointer<Int16>, at now: MonoTime) {
        let levels = state.withLock { s -> (Double, Double)? in
            s.out.add(samples)
            return s.limiter.allow(at: now) ? (s.mic.take(), s.out.take()) : nil
        }
        if let levels { publish(levels) }
    }

    private func publish(_ levels: (mic: Double, out: Double)) {
        events.publish("audio.level", ["mic_dbfs": .number(Self.tenth(levels.mic)), "out_dbfs": .number(Self.tenth(levels.out))])
    }

    private static func tenth(_ x: Double) -> Double { (x * 10).rounded() / 10 }
}
