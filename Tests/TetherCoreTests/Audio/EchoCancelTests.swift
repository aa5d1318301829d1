import Testing
@testable import TetherCore

/// The echo canceller's pure parts (#15): the reference ring, the alignment of capture to
/// reference, the delay estimator, the ERLE meter and the policy.
@Suite struct EchoReferenceRingTests {
    private func append(_ ring: inout EchoReferenceRing, _ samples: [Int16]) {
        samples.withUnsafeBufferPointer { ring.append($0) }
    }

    private func read(_ ring: EchoReferenceRing, from: Int64, count: Int) -> [Int16] {
        var out = [Int16](repeating: 7, count: count)
        out.withUnsafeMutableBufferPointer { ring.read(from: from, into: $0) }
        return out
    }

    @Test func keepsTheLastCapacitySamplesByPositionAndSilenceOutside() {
        var ring = EchoReferenceRing(capacity: 8)
        append(&ring, [1, 2, 3, 4, 5])
        append(&ring, [6, 7, 8, 9, 10, 11])
        #expect(ring.end == 11)
        #expect(read(ring, from: 3, count: 8) == [4, 5, 6, 7, 8, 9, 10, 11])
        // Overwritten (before 3) and not yet written (from 11) read as silence.
        #expect(read(ring, from: 1, count: 4) == [0, 0, 4, 5])
        #expect(read(ring, from: 10, count: 3) == [11, 0, 0])
    }

    @Test func knowsWhereTheLastSoundEnded() {
        var ring = EchoReferenceRing(capacity: 16)
        append(&ring, [0, 0, 0, 0])
        #expect(ring.isSilent(from: -100), "nothing ever played: silent however far back")
        ring.reset()
        append(&ring, [0, 0, 5, 0])
        #expect(ring.soundEnd == 3)
        append(&ring, [0, 0, 0, 0])
        #expect(ring.soundEnd == 3 && ring.isSilent(from: 3) && !ring.isSilent(from: 2))
        // Rewound audio never played: no echo to expect from it.
        append(&ring, [9, 9, 9, 9])
        ring.unplay(4)
        #expect(ring.isSilent(from: 8) && read(ring, from: 8, count: 4) == [0, 0, 0, 0])
    }

    @Test func anchorsTheSamplePlayingNow() {
        var ring = EchoReferenceRing(capacity: 16)
        append(&ring, [Int16](repeating: 1, count: 10))
        ring.anchor(at: .milliseconds(5), queuedFrames: 4)
        #expect(ring.anchor == PlayoutAnchor(time: .milliseconds(5), position: 6))
        ring.reset()
        #expect(ring.anchor == nil && ring.end == 0 && ring.generation == 1)
    }

    @Test func blockPowersAreMeanSquares() {
        var ring = EchoReferenceRing(capacity: 16)
        append(&ring, [2, 2, 4, 4])
        var out = [Float](repeating: -1, count: 3)
        out.withUnsafeMutableBufferPointer { ring.blockPowers(from: 0, blockFrames: 2, into: $0) }
        #expect(out == [4, 16, 0])
        // Across the storage's wrap, and partly before what is kept.
        var small = EchoReferenceRing(capacity: 4)
        append(&small, [1, 1, 1, 3, 3, 5])
        var wrapped = [Float](repeating: -1, count: 3)
        wrapped.withUnsafeMutableBufferPointer { small.blockPowers(from: 1, blockFrames: 2, into: $0) }
        #expect(wrapped == [0.5, 9, 12.5])
    }
}

@Suite struct EchoAlignmentTests {
    @Test func measuresFromTheAnchorAndTheExtraDelay() {
        // 24 kHz: the sample at 1000 played at t = 1 s. A period heard from t = 1.1 s with no
        // extra delay heard ring sample 1000 + 2400; with 50 ms extra, 1000 + 1200.
        let anchor = PlayoutAnchor(time: .milliseconds(1000), position: 1000)
        var a = EchoAlignment(rate: 24000)
        a.observe(capturePosition: 500, heardAt: .milliseconds(1100), anchor: anchor, extraDelay: .zero)
        #expect(a.offset == 2900)
        var b = EchoAlignment(rate: 24000)
        b.observe(capturePosition: 500, heardAt: .milliseconds(1100), anchor: anchor, extraDelay: .milliseconds(50))
        #expect(b.offset == 1700)
    }

    @Test func lateThreadsOnEitherSideMoveNothingARealChangeMovesIt() {
        // #15, as measured on the rig, whose devices report no delay: for stretches of 100 to
        // 200 ms the capture thread read its periods 11 ms late, or the playback thread wrote 3
        // to 13 ms late, and the median of the raw measurements moved the reference that far.
        // 20 ms periods; capture period k heard at k * 20 ms, ring sample 3000 + 480 k playing then.
        var a = EchoAlignment(rate: 24000, tolerance: .milliseconds(2), window: 9, reports: 50)
        func period(_ k: Int, captureLate: Int64 = 0, playbackLate: Int64 = 0, shift: Int64 = 0) -> Bool {
            let t = Int64(k) * 20
            return a.observe(capturePosition: Int64(k) * 480, heardAt: .milliseconds(t + captureLate),
                             anchor: PlayoutAnchor(time: .milliseconds(t + playbackLate), position: 3000 + shift + Int64(k) * 480),
                             extraDelay: .zero)
        }
        _ = period(0)
        var moved = false
        for k in 1..<200 {
            let captureLate: Int64 = (50..<60).contains(k) ? 11 : 0
            let playbackLate: Int64 = (100..<110).contains(k) ? 13 : (k % 7 == 0 ? 3 : 0)
            moved = period(k, captureLate: captureLate, playbackLate: playbackLate) || moved
        }
        #expect(!moved && a.offset == 3000)
        // The speaker really fell 100 ms behind (it lost time to an underrun): followed once the
        // reports from before have left the window (a second), not before.
        var movedAt: Int?
        for k in 200..<300 where period(k, shift: -2400) && movedAt == nil { movedAt = k }
        #expect(a.offset == 600)
        #expect(movedAt.map { $0 >= 250 } == true, "moved at period \(String(describing: movedAt))")
        // Ahead (a restarted device took unplayed audio back): at once, but for the median.
        movedAt = nil
        for k in 300..<320 where period(k, shift: -2400 + 1920) && movedAt == nil { movedAt = k }
        #expect(a.offset == 2520)
        #expect(movedAt.map { $0 <= 305 } == true, "moved at period \(String(describing: movedAt))")
    }

    @Test func followsTheMedianAndIgnoresJitterWithinTolerance() {
        var a = EchoAlignment(rate: 24000, tolerance: .milliseconds(2), window: 5)
        let first = a.observe(1000)
        #expect(first && a.offset == 1000)
        // Scheduling jitter of a millisecond (24 frames) and one wild outlier: no move.
        for m: Int64 in [1020, 980, 5000, 1010, 990, 1024] {
            let moved = a.observe(m)
            #expect(!moved)
        }
        #expect(a.offset == 1000)
        // A real change (a restarted device, 100 ms): followed once it holds for the median.
        var moved = false
        for _ in 0..<5 { moved = a.observe(3400) || moved }
        #expect(moved && a.offset == 3400)
        a.reset()
        #expect(a.offset == nil)
    }
}

@Suite struct LeastLateTimelineTests {
    @Test func takesTheLeastLateReport() {
        var t = LeastLateTimeline(rate: 24000, reports: 5)
        #expect(t.position(at: .milliseconds(0)) == nil)
        // Frame 480 k at k * 20 ms; the reports of periods 2 and 3 came 13 and 4 ms late.
        for k: Int64 in 0..<5 { t.report(time: .milliseconds(k * 20 + (k == 2 ? 13 : k == 3 ? 4 : 0)), position: k * 480) }
        #expect(t.position(at: .milliseconds(100)) == 2400)
        // All of the window late by 6 ms: that is what it says.
        for k: Int64 in 5..<10 { t.report(time: .milliseconds(k * 20 + 6), position: k * 480) }
        #expect(t.position(at: .milliseconds(200)) == 4656)  // 4800 - 6 ms
        t.reset()
        #expect(t.position(at: .milliseconds(200)) == nil)
    }
}

@Suite struct EchoDelayEstimatorTests {
    @Test func theLaneWiseDotProductIsTheDotProduct() {
        // Counts around the eight lanes, so the tail loop is covered too; integers, so every
        // partial sum is exact in Float and the order of additions cannot matter.
        for count in [1, 7, 8, 9, 16, 300, 301] {
            let a = (0..<count).map { Float($0 % 13) - 6 }
            let b = (0..<count).map { Float($0 % 7) - 3 }
            let expected = zip(a, b).reduce(Float(0)) { $0 + $1.0 * $1.1 }
            let got = a.withUnsafeBufferPointer { pa in
                b.withUnsafeBufferPointer { pb in EchoDelayEstimator.dot(pa.baseAddress!, pb.baseAddress!, count: count) }
            }
            #expect(got == expected, "count \(count)")
        }
    }

    /// A bursty far-end signal (on/off noise), and a microphone hearing it `delayBlocks` late.
    private func signal(_ n: Int, seed: UInt64) -> [Int16] {
        var rng = SplitMix64(seed: seed)
        var out = [Int16](repeating: 0, count: n)
        var on = false
        for i in 0..<n {
            if i % 480 == 0 { on = rng.next() % 3 != 0 }
            out[i] = on ? Int16(truncatingIfNeeded: Int(rng.next() % 8000) - 4000) : 0
        }
        return out
    }

    private func run(delayFrames: Int, offsetError: Int64 = 0, micGain: Int = 4) -> (Int?, EchoDelayEstimator) {
        let rate = 24000
        var e = EchoDelayEstimator(rate: rate)
        let far = signal(rate * 3, seed: 1)
        var ring = EchoReferenceRing(capacity: rate * 4)
        far.withUnsafeBufferPointer { ring.append($0) }
        // The microphone: the far end delayed and attenuated, plus faint noise of its own.
        var rng = SplitMix64(seed: 9)
        var mic = [Int16](repeating: 0, count: far.count)
        for i in 0..<mic.count {
            let echo = i >= delayFrames ? Int(far[i - delayFrames]) / micGain : 0
            mic[i] = Int16(echo + Int(rng.next() % 21) - 10)
        }
        var lag: Int?
        var reference = [Float](repeating: 0, count: e.referenceBlocks)
        var scratch = [Float](repeating: 0, count: e.scratchCount)
        // Feed in 20 ms periods; estimate every 250 ms, as the capture thread does.
        for start in stride(from: 0, to: mic.count, by: 480) {
            mic[start..<(start + 480)].withUnsafeBufferPointer { e.addMic($0, at: Int64(start)) }
            if start % 6000 == 0 && e.isReady {
                let from = e.referenceStart(offset: offsetError)
                reference.withUnsafeMutableBufferPointer { ring.blockPowers(from: from, blockFrames: e.blockFrames, into: $0) }
                lag = reference.withUnsafeBufferPointer { r in scratch.withUnsafeMutableBufferPointer { e.estimate(reference: r, scratch: $0) } }
            }
        }
        return (lag, e)
    }

    @Test(arguments: [0, 960, 4800, 7200])
    func findsTheDelayToTheBlock(delayFrames: Int) {
        let (lag, e) = run(delayFrames: delayFrames)
        let blocks = delayFrames / e.blockFrames
        #expect(lag != nil && abs(lag! - blocks) <= 1, "lag \(String(describing: lag)) for \(blocks) blocks, peak \(e.lastPeak)")
    }

    @Test func anEchoEarlierThanPredictedIsANegativeLag() {
        // The devices said 40 ms more than the truth: the echo comes 40 ms early.
        let (lag, e) = run(delayFrames: 0, offsetError: -960)
        #expect(lag != nil && abs(lag! + 960 / e.blockFrames) <= 1, "lag \(String(describing: lag))")
    }

    @Test func believesNothingWithoutACorrelatedMicrophone() {
        let (lag, _) = run(delayFrames: 2400, micGain: 100_000)
        #expect(lag == nil)
    }
}

@Suite struct EchoReturnLossTests {
    @Test func convergesAfterHoldingAndLosesItWithHysteresis() {
        var m = EchoReturnLoss(period: .milliseconds(20), timeConstant: .milliseconds(20), hold: .milliseconds(100))
        #expect(m.erleDB == 0 && !m.converged)
        for _ in 0..<4 { m.record(inputPower: 1e9, outputPower: 1e7) }   // 20 dB
        #expect(abs(m.erleDB - 20) < 0.1 && !m.converged)
        m.record(inputPower: 1e9, outputPower: 1e7)
        #expect(m.converged)
        m.record(inputPower: 1e9, outputPower: 1.25e8)                     // 9 dB: still converged
        #expect(m.converged)
        m.record(inputPower: 1e9, outputPower: 5e8)                        // 3 dB: lost
        #expect(!m.converged)
        m.reset()
        #expect(m.periods == 0 && m.erleDB == 0)
    }

    @Test func losesConvergenceWhenErleStaysBelowTheConvergedLevel() {
        // The echo path moved before the filter's start between two replies: the filter cancels
        // next to nothing and the residual suppressor keeps ERLE at 8 dB, above `lostDB`. Held
        // for `hold`, that is lost convergence (the delay estimator may realign again); a dip
        // shorter than that (a word's worth of the person talking over the robot) is not.
        var m = EchoReturnLoss(period: .milliseconds(20), timeConstant: .milliseconds(20), hold: .milliseconds(100))
        for _ in 0..<5 { m.record(inputPower: 1e9, outputPower: 1e6) }    // 30 dB
        #expect(m.converged)
        for _ in 0..<4 { m.record(inputPower: 1e9, outputPower: 1.6e8) }  // 8 dB
        #expect(m.converged)
        m.record(inputPower: 1e9, outputPower: 1e6)
        for _ in 0..<4 { m.record(inputPower: 1e9, outputPower: 1.6e8) }
        #expect(m.converged, "the dips were not consecutive")
        m.record(inputPower: 1e9, outputPower: 1.6e8)
        #expect(!m.converged)
    }
}

@Suite struct EchoCancelPolicyTests {
    let policy = EchoCancelPolicy(rate: 24000, tail: .milliseconds(200), noiseSuppression: .off)

    @Test func passesTheMicrophoneThroughWhileTheSpeakerCannotBeHeard() {
        #expect(policy.step(speakerAudible: false) == .passThrough)
        #expect(policy.step(speakerAudible: true) == .cancel)
        let denoising = EchoCancelPolicy(rate: 24000, tail: .milliseconds(200), noiseSuppression: .high)
        #expect(denoising.step(speakerAudible: false) == .denoise)
        // Audible: anything up to the search range plus the tail before the aligned position.
        #expect(policy.earliestAudible(capturePosition: 48000, offset: 1000) == 49000 - 19200 - 4800)
        // Once the delay is known: that delay, a margin for a growing path, and the tail.
        #expect(policy.earliestAudible(capturePosition: 48000, offset: 1000, residual: 2400) == 49000 - 2400 - 2400 - 4800)
    }

    @Test func placesTheReferenceALeadAheadAndMovesItOnlyWhenTheEchoLeavesTheFilter() {
        #expect(policy.leadFrames == 384)
        #expect(policy.referencePosition(capturePosition: 1000, offset: 500, residual: 2400) == 1000 + 500 - 2400 + 384)
        #expect(!policy.shouldRealign(applied: 2400, estimated: 2400 + 96))    // 4 ms drift: the filter follows
        #expect(!policy.shouldRealign(applied: 2400, estimated: 2400 - 96))
        #expect(policy.shouldRealign(applied: 2400, estimated: 2400 + 1200))   // a 50 ms jump
        #expect(policy.shouldRealign(applied: 2400, estimated: 2400 - 480))    // earlier than the lead covers
    }

    @Test func theDeviceDelaysMoveTheReferenceOnlyByMoreThanHalfTheLead() {
        // #15, measured on the rig: the path never changed, yet the median of the measurements
        // drifted by 85 frames (3.5 ms) mid-reply, and by 49 frames (2 ms) while the canceller was
        // still learning; each move threw the filter's model off.
        #expect(policy.alignmentTolerance == .milliseconds(8))
        var a = EchoAlignment(rate: 24000, tolerance: policy.alignmentTolerance, window: 5)
        a.observe(3452)
        for m: Int64 in [3367, 3367, 3367, 3367, 3367, 3501, 3501, 3501] {
            let moved = a.observe(m)
            #expect(!moved)
        }
        #expect(a.offset == 3452)
        // An xrun lost a period of capture (20 ms): followed.
        var moved = false
        for _ in 0..<5 { moved = a.observe(3452 + 480) || moved }
        #expect(moved && a.offset == 3452 + 480)
        #expect(EchoCancelPolicy(rate: 16000, tail: .milliseconds(200), noiseSuppression: .off).alignmentTolerance == .milliseconds(8))
    }

    @Test func takesTwoPeriodsAtOnceOnlyWhenTheUplinkWaitsForBoth() {
        // The default: 20 ms periods, 40 ms uplink batches.
        #expect(EchoCancelPolicy.periodsPerRun(period: .milliseconds(20), uplinkBatch: .milliseconds(40)) == 2)
        #expect(EchoCancelPolicy.periodsPerRun(period: .milliseconds(10), uplinkBatch: .milliseconds(40)) == 2)
        // A 40 ms period is a whole batch: waiting for the next would delay the uplink 40 ms.
        #expect(EchoCancelPolicy.periodsPerRun(period: .milliseconds(40), uplinkBatch: .milliseconds(40)) == 1)
        #expect(EchoCancelPolicy.periodsPerRun(period: .milliseconds(25), uplinkBatch: .milliseconds(40)) == 1)
        #expect(EchoCancelPolicy.periodsPerRun(period: .zero, uplinkBatch: .milliseconds(40)) == 1)
    }
}
