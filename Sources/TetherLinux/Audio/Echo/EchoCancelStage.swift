import Synchronization
import TetherCore

/// The echo canceller on the capture thread, between the mono mix and the uplink: for each
/// period it works out which reference samples the microphone heard (device delays, then the
/// delay estimator's correction), and, while the speaker can be heard, subtracts their echo
/// (speexdsp) and suppresses what remains. While the speaker cannot be heard the period passes
/// untouched (or through noise suppression when that is on). One per open capture device:
/// its learnt state lives as long as the devices do (a reopened playback device is a new
/// timeline and resets it too).
///
/// The residual echo suppressor returns each frame one call late, so in `cancel` mode the whole
/// uplink runs one period late: passed-through periods go through a one-period delay line, and
/// the stream stays continuous (no frame lost or repeated) when the canceller starts or stops.
///
/// Everything it needs per period is allocated when it is made.
final class EchoCancelStage {
    private let context: AudioContext
    private var reference: EchoReference { context.echoReference }
    private let canceller: SpeexEchoCanceller
    private let policy: EchoCancelPolicy
    private let rate: Int
    private let period: Int
    private let extraDelay: Duration
    private var alignment: EchoAlignment
    private var estimator: EchoDelayEstimator
    private var erle: EchoReturnLoss
    private let aligned: UnsafeMutableBufferPointer<Int16>
    private let output: UnsafeMutableBufferPointer<Int16>
    /// The previous period as captured (the delay line).
    private let held: UnsafeMutableBufferPointer<Int16>
    /// The preprocessor ran on the previous period: its delay line is current.
    private var preprocessorCurrent = false
    /// The canceller ran on the previous period: its history of the speaker is current.
    private var cancellerCurrent = false
    private let referencePowers: UnsafeMutableBufferPointer<Float>
    private let scratch: UnsafeMutableBufferPointer<Float>

    /// Capture position of the next period (frames since the device opened).
    private var position: Int64 = 0
    private var ringGeneration = -1
    /// The delay estimator's correction the reference is placed with (frames).
    private var applied = 0
    private var periodsToEstimate = 0
    private var periodsToPublish = 0

    init(context: AudioContext, rate: Int, periodFrames: Int, config: AudioConfig) throws(SpeexEchoCanceller.Unavailable) {
        self.context = context
        self.rate = rate
        period = periodFrames
        extraDelay = config.echoDelay
        policy = EchoCancelPolicy(rate: rate, tail: config.echoTail, noiseSuppression: config.noiseSuppression)
        canceller = try SpeexEchoCanceller(frameSize: periodFrames, filterLength: max(periodFrames, policy.tailFrames), rate: rate,
                                           noiseSuppression: config.noiseSuppression)
        // Each side's timeline from the least late report of the last second.
        alignment = EchoAlignment(rate: rate, tolerance: policy.alignmentTolerance,
                                  reports: max(9, PCM16.frames(.seconds(1), rate: rate) / max(1, periodFrames)))
        estimator = EchoDelayEstimator(rate: rate, minLag: .milliseconds(-60), maxLag: .milliseconds(800))
        erle = EchoReturnLoss(period: PCM16.duration(frames: periodFrames, rate: rate))
        aligned = .allocate(capacity: periodFrames)
        aligned.initialize(repeating: 0)
        output = .allocate(capacity: periodFrames)
        output.initialize(repeating: 0)
        held = .allocate(capacity: periodFrames)
        held.initialize(repeating: 0)
        referencePowers = .allocate(capacity: estimator.referenceBlocks)
        referencePowers.initialize(repeating: 0)
        scratch = .allocate(capacity: estimator.scratchCount)
        scratch.initialize(repeating: 0)
        reference.prepare(rate: rate)
        publish()
    }

    deinit {
        aligned.deallocate()
        output.deallocate()
        held.deallocate()
        referencePowers.deallocate()
        scratch.deallocate()
    }

    /// The period in `mic` (mono, `periodFrames`) was read at `readAt` with `captureDelay`
    /// frames still in the capture buffer (nil: unknown). Cancels the echo in place.
    func process(_ mic: UnsafeMutableBufferPointer<Int16>, readAt: MonoTime, captureDelay: Int?) {
        let start = position
        position += Int64(mic.count)
        let heardAt = readAt - PCM16.duration(frames: mic.count + max(0, captureDelay ?? 0), rate: rate)
        estimator.addMic(UnsafeBufferPointer(mic), at: start)

        periodsToEstimate -= 1
        let estimateNow = periodsToEstimate <= 0 && estimator.isReady
        var audible = false
        var estimated = false
        var restarted = false
        _ = reference.withRing { ring in
            guard let anchor = ring.anchor else { return }
            if ring.generation != ringGeneration {
                ringGeneration = ring.generation
                restarted = true
                alignment.reset()
            }
            alignment.observe(capturePosition: start, heardAt: heardAt, anchor: anchor, extraDelay: extraDelay)
            guard let offset = alignment.offset else { return }
            let residual = estimator.lag.map { $0 * estimator.blockFrames }
            audible = !ring.isSilent(from: policy.earliestAudible(capturePosition: start, offset: offset, residual: residual))
            if audible {
                ring.read(from: policy.referencePosition(capturePosition: start, offset: offset, residual: applied), into: aligned)
            }
            if estimateNow {
                let from = estimator.referenceStart(offset: offset)
                if !ring.isSilent(from: from) {
                    ring.blockPowers(from: from, blockFrames: estimator.blockFrames, into: referencePowers)
                    estimated = true
                }
            }
        }
        if restarted {
            // A new playback timeline: what the filter learnt belongs to the old one.
            canceller.reset()
            estimator.reset()
            erle.reset()
            applied = 0
            estimator.addMic(UnsafeBufferPointer(mic), at: start)
        }
        if estimateNow {
            // Every 100 ms while the delay is unknown or the canceller is not converged (the path
            // may have changed), else every 300 ms.
            let searching = estimator.lag == nil || !erle.converged
            periodsToEstimate = max(1, PCM16.frames(searching ? .milliseconds(100) : .milliseconds(300), rate: rate) / period)
        }
        if estimated, let lag = estimator.estimate(reference: UnsafeBufferPointer(referencePowers), scratch: scratch) {
            let residual = lag * estimator.blockFrames
            // A converged canceller is not moved: its ERLE proves the alignment, whatever an
            // estimate fooled by speech rhythm says. A changed path shows as lost convergence.
            if !erle.converged && policy.shouldRealign(applied: applied, estimated: residual) {
                applied = residual
                canceller.reset()
                erle.reset()
            }
        }

        let step = policy.step(speakerAudible: audible)
        if step != .passThrough && !preprocessorCurrent {
            canceller.prime(with: UnsafeBufferPointer(held))
        }
        preprocessorCurrent = step != .passThrough
        if step == .cancel && !cancellerCurrent { canceller.clearHistory() }
        cancellerCurrent = step == .cancel
        switch step {
        case .passThrough:
            // One period late, byte for byte.
            _ = output.update(fromContentsOf: mic)
            _ = mic.update(fromContentsOf: held)
            _ = held.update(fromContentsOf: output)
        case .denoise:
            _ = held.update(fromContentsOf: mic)
            canceller.denoise(mic)
        case .cancel:
            _ = held.update(fromContentsOf: mic)
            canceller.cancel(mic: UnsafeBufferPointer(mic), reference: UnsafeBufferPointer(aligned), into: output)
            let referencePower = Self.power(UnsafeBufferPointer(aligned))
            // Only periods where the speaker was loud enough to measure count for ERLE.
            if referencePower > 100 {
                erle.record(inputPower: Self.power(UnsafeBufferPointer(mic)), outputPower: Self.power(UnsafeBufferPointer(output)))
            }
            _ = mic.update(fromContentsOf: output)
        }

        periodsToPublish -= 1
        if periodsToPublish <= 0 {
            periodsToPublish = max(1, PCM16.frames(.milliseconds(200), rate: rate) / period)
            publish()
        }
    }

    /// Mean square.
    private static func power(_ samples: UnsafeBufferPointer<Int16>) -> Double {
        Double(PCM16.sumOfSquares(samples)) / Double(max(1, samples.count))
    }

    private func publish() {
        let delay: Int? = estimator.lag.map { PCM16.milliseconds(frames: $0 * estimator.blockFrames, rate: rate) + Int(extraDelay.nanoseconds / 1_000_000) }
        let erleDB = erle.erleDB, converged = erle.converged
        context.echoStatus.withLock { s in
            s.erleDB = erleDB
            s.delayMs = delay
            s.converged = converged
        }
    }
}
