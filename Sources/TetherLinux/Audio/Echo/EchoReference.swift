import Synchronization
import TetherCore

/// The hand-off of what the speaker played to the echo canceller: the playback thread appends
/// each period it wrote (after volume, mono, converted to the capture rate) with the device's
/// delay, the capture thread reads back what its microphone heard. One short lock around a
/// copy of one period each way; the ring is allocated once, the first time `cancel` runs.
final class EchoReference: Sendable {
    /// Four seconds of reference: the delay estimator's reach (800 ms past the device delays
    /// plus its 1.2 s window) with room to spare.
    static let seconds = 4

    private let ring = Mutex<EchoReferenceRing?>(nil)

    /// Make the ring for reference at `rate` (once; a later call for another rate replaces it).
    func prepare(rate: Int) {
        let capacity = rate * Self.seconds
        ring.withLock { r in
            if r?.capacity != capacity { r = EchoReferenceRing(capacity: capacity) }
        }
    }

    /// nil until `prepare`.
    func withRing<R>(_ body: (inout EchoReferenceRing) -> R) -> R? {
        ring.withLock { r -> R? in
            guard r != nil else { return nil }
            return body(&r!)
        }
    }
}

/// The playback thread's side: one per open playback device. Converts the speaker's periods
/// to the capture rate (speexdsp's resampler, when the rates differ) and appends them with
/// the playout anchor. Its buffers are allocated when the device opens.
final class EchoReferenceWriter {
    private let reference: EchoReference
    let playbackRate: Int
    let captureRate: Int
    private let resampler: SpeexResampler?
    private let converted: UnsafeMutableBufferPointer<Int16>

    /// nil only when the rates differ and speexdsp's resampler refuses them (a zero rate, which
    /// the configuration does not allow).
    init?(reference: EchoReference, playbackRate: Int, captureRate: Int, periodFrames: Int) {
        self.reference = reference
        self.playbackRate = playbackRate
        self.captureRate = captureRate
        if playbackRate != captureRate {
            guard let r = SpeexResampler(from: playbackRate, to: captureRate) else { return nil }
            resampler = r
        } else {
            resampler = nil
        }
        converted = .allocate(capacity: periodFrames * max(1, captureRate) / max(1, playbackRate) + 16)
        converted.initialize(repeating: 0)
        reference.prepare(rate: captureRate)
        // A new device is a new timeline.
        _ = reference.withRing { $0.reset() }
    }

    deinit { converted.deallocate() }

    /// `period` (mono, after volume) was just written; the device reported `queued` frames
    /// (at the playback rate) still in front of the speaker at `now`.
    func wrote(_ period: UnsafeBufferPointer<Int16>, queued: Int?, at now: MonoTime) {
        var samples = period
        if let resampler {
            let n = resampler.process(period, into: converted)
            samples = UnsafeBufferPointer(rebasing: converted[0..<n])
        }
        let queuedFrames = (queued ?? 0) * captureRate / max(1, playbackRate)
        _ = reference.withRing { ring in
            ring.append(samples)
            ring.anchor(at: now, queuedFrames: queuedFrames)
        }
    }

    /// Barge-in took `frames` (playback rate) back from the device unplayed.
    func rewound(_ frames: Int) {
        let n = frames * captureRate / max(1, playbackRate)
        _ = reference.withRing { $0.unplay(n) }
    }
}
