/// The echo canceller's decisions, apart from the arithmetic (speexdsp's) and the I/O:
///
/// - **When it runs** (`step`): only while the microphone may hear the speaker, i.e. while some
///   reference sample that is not silence lies in the stretch the current period can have heard
///   (the search range of the delay estimator plus the filter's tail). Otherwise the microphone
///   passes untouched (byte for byte), or through noise suppression only when that is on.
/// - **Where the reference goes** (`referencePosition`): `lead` ahead of the echo, so the
///   filter's first taps cover an estimate that is a little late; the rest of the filter
///   (`echo_tail - lead`) models the room.
/// - **When to move it** (`shouldRealign`): only when the echo would leave the filter's good
///   region (before its start, or so far in that the room's tail falls off its end): moving the
///   reference makes the filter start over, so a small drift is left to the filter to follow.
///   The same holds for the device delays (`alignmentTolerance`): the alignment follows them
///   only when they changed by more than half the lead.
public struct EchoCancelPolicy: Sendable, Equatable {
    public enum Step: Sendable, Equatable {
        /// The microphone goes to the uplink as it was captured.
        case passThrough
        /// Noise suppression only (the speaker cannot be heard).
        case denoise
        /// Echo cancellation (and residual echo suppression, and noise suppression when on).
        case cancel
    }

    public let tailFrames: Int
    public let leadFrames: Int
    /// How much later than the devices say the echo may arrive (the estimator's search range).
    public let searchFrames: Int
    /// How far past `lead` the echo may drift inside the filter before the reference moves.
    public let slackFrames: Int
    /// How much longer than estimated the path may have grown before the estimator says so.
    public let marginFrames: Int
    /// How far the device delays must move before the reference follows them (`EchoAlignment`):
    /// half the lead, so an echo the reference did not follow is still inside the filter's good
    /// region, where the filter follows it by itself. Each move of the reference throws the
    /// filter's model off (#15, measured: a converged canceller fell from 58 dB of ERLE to 5 dB
    /// on a 3 ms move and the residual echo reached the brain as speech; one still learning lost
    /// its progress), and the 2 ms this used to be let the threads' lateness alone move it. A
    /// device restart, or an xrun's lost frames (a period or more), still moves it.
    public let alignmentTolerance: Duration
    public let noiseSuppression: NoiseSuppression

    /// `lead` 16 ms: an echo placed before the filter's start cannot be cancelled at all, and
    /// every millisecond of lead is taken from the room's tail (measured: 24 ms or more of
    /// lead cost 4 dB of ERLE in a 200 ms room with a 200 ms filter).
    public init(rate: Int, tail: Duration, noiseSuppression: NoiseSuppression, lead: Duration = .milliseconds(16),
                search: Duration = .milliseconds(800), slack: Duration = .milliseconds(30), margin: Duration = .milliseconds(100)) {
        tailFrames = PCM16.frames(tail, rate: rate)
        leadFrames = min(PCM16.frames(lead, rate: rate), tailFrames / 4)
        searchFrames = PCM16.frames(search, rate: rate)
        slackFrames = PCM16.frames(slack, rate: rate)
        marginFrames = PCM16.frames(margin, rate: rate)
        alignmentTolerance = PCM16.duration(frames: leadFrames / 2, rate: max(1, rate))
        self.noiseSuppression = noiseSuppression
    }

    /// The earliest reference position a period starting at capture `position` may have heard,
    /// with the alignment `offset` (ring position heard, by the device delays): the echo's
    /// delay (`residual`, the estimator's, with `margin` for a path that just grew; unknown:
    /// the whole search range) and the room's tail back from there.
    public func earliestAudible(capturePosition position: Int64, offset: Int64, residual: Int? = nil) -> Int64 {
        let late = residual.map { max(0, $0) + marginFrames } ?? searchFrames
        return position + offset - Int64(late + tailFrames)
    }

    /// How many capture periods the canceller takes at once: two when the uplink waits for two
    /// anyway (its batch is at least two periods), so the first of them can wait for the second
    /// without the brain hearing it later; else one. speexdsp's ~200 KB of filter and
    /// preprocessor state is cold again after the capture thread's sleep between periods, and
    /// two periods back to back pay for that once (#15, measured in docs/BENCHMARKS.md).
    public static func periodsPerRun(period: Duration, uplinkBatch: Duration) -> Int {
        period > .zero && period * 2 <= uplinkBatch ? 2 : 1
    }

    public func step(speakerAudible: Bool) -> Step {
        if speakerAudible { return .cancel }
        return noiseSuppression == .off ? .passThrough : .denoise
    }

    /// The reference position to pair with capture `position`: the echo's, `lead` earlier.
    /// `residual` is the delay estimator's correction (frames later than the devices say).
    public func referencePosition(capturePosition position: Int64, offset: Int64, residual: Int) -> Int64 {
        position + offset - Int64(residual) + Int64(leadFrames)
    }

    /// With the reference placed for `applied` residual frames, whether an echo that really
    /// comes `estimated` frames late has left the filter's good region.
    public func shouldRealign(applied: Int, estimated: Int) -> Bool {
        let tap = leadFrames + estimated - applied
        return tap < leadFrames / 2 || tap > leadFrames + slackFrames
    }
}
