import Testing
@testable import TetherCore

/// Small numbers keep the arithmetic readable: a period of 10 frames, prebuffer of 30, fades
/// of 4 frames.
private func makeBuffer(prebuffer: Int = 30, stallLimit: Int = 1000, maxQueued: Int = 100_000) -> JitterBuffer {
    JitterBuffer(settings: .init(framesPerPeriod: 10, prebufferFrames: prebuffer, rampFrames: 4,
                                 maxQueuedFrames: maxQueued, stallLimitFrames: stallLimit))
}

private func bytes(_ samples: [Int16]) -> [UInt8] { PCM16.bytes(samples) }

/// Samples 1, 2, 3, ... offset by `start`.
private func ramp(_ count: Int, from start: Int = 1) -> [Int16] { (0..<count).map { Int16(start + $0) } }

private func pull(_ jb: inout JitterBuffer, frames: Int = 10) -> (samples: [Int16], period: JitterBuffer.Period) {
    var out = [Int16](repeating: 99, count: frames)
    let period = out.withUnsafeMutableBufferPointer { jb.pull(into: $0) }
    return (out, period)
}

@Suite struct JitterBufferTests {
    @Test func waitsForPrebufferThenPlaysBitExact() {
        var jb = makeBuffer()
        jb.enqueue(itemID: "a", pcm: bytes(ramp(20)))
        #expect(!jb.isReadyToPlay)
        let (silent, p0) = pull(&jb)
        #expect(silent == [Int16](repeating: 0, count: 10))
        #expect(p0.audioFrames == 0)
        #expect(!p0.startsItem)
        jb.enqueue(itemID: "a", pcm: bytes(ramp(20, from: 21)))
        #expect(jb.isReadyToPlay)
        var played: [Int16] = []
        var periods: [JitterBuffer.Period] = []
        for _ in 0..<4 {
            let (s, p) = pull(&jb)
            played += s
            periods.append(p)
        }
        #expect(played == ramp(40))
        #expect(periods[0].startsItem)
        #expect(periods.dropFirst().allSatisfy { !$0.startsItem })
        #expect(periods.allSatisfy { $0.audioFrames == 10 && $0.itemID == "a" })
        #expect(jb.deliveredFrames(of: "a") == 40)
        #expect(jb.underruns == 0)
    }

    @Test func wouldStarveOnlyMidItemWithLessThanAPeriodQueued() {
        var jb = makeBuffer()
        jb.enqueue(itemID: "a", pcm: bytes(ramp(35)))
        #expect(!jb.wouldStarve, "not playing yet: prebuffering decides")
        _ = pull(&jb)
        _ = pull(&jb)
        _ = pull(&jb)
        #expect(jb.wouldStarve, "5 frames left of an unfinished item")
        jb.enqueue(itemID: "a", pcm: bytes(ramp(10, from: 36)))
        #expect(!jb.wouldStarve)
        _ = pull(&jb)
        jb.finishItem(itemID: "a")
        #expect(!jb.wouldStarve, "a complete item ends, it does not starve")
    }

    @Test func shortCompleteItemStartsWithoutPrebuffer() {
        var jb = makeBuffer()
        jb.enqueue(itemID: "a", pcm: bytes(ramp(15)))
        #expect(!jb.isReadyToPlay)
        jb.finishItem(itemID: "a")
        #expect(jb.isReadyToPlay)
        let (s1, p1) = pull(&jb)
        let (s2, p2) = pull(&jb)
        #expect(s1 == ramp(10))
        #expect(s2 == ramp(5, from: 11) + [0, 0, 0, 0, 0])  // a natural end: no fade
        #expect(p1.startsItem && !p1.endsItem)
        #expect(p2.endsItem && p2.audioFrames == 5)
        #expect(jb.isIdle)
        #expect(jb.phase == .idle)
        #expect(jb.underruns == 0)
        #expect(jb.deliveredFrames(of: "a") == 15)
    }

    @Test func underrunMidItemPadsWithFadedSilenceAndRebuffers() {
        var jb = makeBuffer()
        jb.enqueue(itemID: "a", pcm: bytes([Int16](repeating: 1000, count: 35)))
        _ = pull(&jb)
        _ = pull(&jb)
        _ = pull(&jb)
        // 5 frames left, the item is not complete: the period ends in a fade, not a step.
        let (s, p) = pull(&jb)
        #expect(p.underrun)
        #expect(p.audioFrames == 5)
        #expect(Array(s[0..<5]) == [1000, 1000, 1000, 1000, 1000])
        #expect(Array(s[5..<8]) == [750, 500, 250])
        #expect(Array(s[8..<10]) == [0, 0])
        #expect(jb.underruns == 1)
        #expect(jb.insertedSilenceFrames == 5)
        #expect(jb.phase == .buffering)
        // While it rebuffers the device gets silence, counted as part of the gap.
        jb.enqueue(itemID: "a", pcm: bytes([Int16](repeating: 1000, count: 20)))
        let (gap, gp) = pull(&jb)
        #expect(gap == [Int16](repeating: 0, count: 10))
        #expect(gp.audioFrames == 0 && gp.itemID == "a")
        #expect(jb.insertedSilenceFrames == 15)
        // Prebuffer again, then the audio resumes with a fade in.
        jb.enqueue(itemID: "a", pcm: bytes([Int16](repeating: 1000, count: 20)))
        let (resumed, rp) = pull(&jb)
        #expect(rp.audioFrames == 10 && !rp.underrun && !rp.startsItem)
        #expect(Array(resumed[0..<4]) == [200, 400, 600, 800])
        #expect(Array(resumed[4...]) == [Int16](repeating: 1000, count: 6))
        // Delivered counts real audio frames, faded or not, never the inserted silence.
        #expect(jb.deliveredFrames(of: "a") == 45)
        #expect(jb.underruns == 1)
    }

    @Test func underrunAtPeriodBoundaryFadesFromLastSample() {
        var jb = makeBuffer(prebuffer: 10)
        jb.enqueue(itemID: "a", pcm: bytes([Int16](repeating: -2000, count: 10)))
        _ = pull(&jb)
        let (s, p) = pull(&jb)
        #expect(p.underrun && p.audioFrames == 0)
        #expect(Array(s[0..<3]) == [-1500, -1000, -500])
        #expect(Array(s[3...]) == [Int16](repeating: 0, count: 7))
    }

    @Test func flushReturnsPlayingItemAndDeliveredFrames() {
        var jb = makeBuffer()
        jb.enqueue(itemID: "a", pcm: bytes(ramp(100)))
        for _ in 0..<3 { _ = pull(&jb) }
        let r1 = jb.flush()
        #expect(r1?.itemID == "a")
        #expect(r1?.deliveredFrames == 30)
        #expect(jb.isIdle && jb.queuedFrames == 0)
        // Audio of the flushed item still in flight is dropped, not played.
        jb.enqueue(itemID: "a", pcm: bytes(ramp(50)))
        #expect(jb.isIdle)
        #expect(jb.discardedFrames == 50)
        // A new item plays normally, after prebuffering again.
        jb.enqueue(itemID: "b", pcm: bytes(ramp(30)))
        #expect(jb.isReadyToPlay)
        let (s, p) = pull(&jb)
        #expect(p.itemID == "b" && p.startsItem)
        #expect(s == ramp(10))
    }

    @Test func flushNeverReportsMoreThanReceived() {
        var jb = makeBuffer(prebuffer: 10)
        jb.enqueue(itemID: "a", pcm: bytes(ramp(12)))
        _ = pull(&jb)
        _ = pull(&jb)  // underrun: 2 real frames, 8 silence
        _ = pull(&jb)  // gap
        let r2 = jb.flush()
        #expect(r2?.deliveredFrames == 12)
    }

    @Test func flushBeforeStartReportsZeroAndNothingWhenIdle() {
        var jb = makeBuffer()
        let r3 = jb.flush()
        #expect(r3 == nil)
        jb.enqueue(itemID: "a", pcm: bytes(ramp(10)))
        let r4 = jb.flush()
        #expect(r4?.itemID == "a" && r4?.deliveredFrames == 0)
    }

    @Test func lastItemStaysNamedUntilTheDeviceDrains() {
        var jb = makeBuffer(prebuffer: 10)
        jb.enqueue(itemID: "a", pcm: bytes(ramp(20)))
        jb.finishItem(itemID: "a")
        _ = pull(&jb)
        _ = pull(&jb)
        #expect(jb.isIdle)
        // Its tail may still be in the device: barge-in names it.
        var copy = jb
        let r5 = copy.flush()
        #expect(r5?.itemID == "a")
        let r6 = copy.flush()
        #expect(r6 == nil)
        jb.deviceDrained()
        let r7 = jb.flush()
        #expect(r7 == nil)
        #expect(jb.deliveredFrames(of: "a") == 20)
    }

    @Test func newItemIdCompletesThePreviousAndEachItemPrebuffers() {
        var jb = makeBuffer(prebuffer: 20)
        jb.enqueue(itemID: "a", pcm: bytes(ramp(10)))
        jb.enqueue(itemID: "b", pcm: bytes(ramp(10, from: 101)))
        // "a" is complete now (a new item began), so it may start below prebuffer.
        #expect(jb.isReadyToPlay)
        let (s1, p1) = pull(&jb)
        #expect(s1 == ramp(10))
        #expect(p1.itemID == "a" && p1.startsItem && p1.endsItem)
        // "b" has 10 < 20 frames and is not complete: it waits.
        let (s2, p2) = pull(&jb)
        #expect(s2 == [Int16](repeating: 0, count: 10))
        #expect(p2.audioFrames == 0 && !p2.underrun)
        jb.finishItem(itemID: "b")
        let (s3, p3) = pull(&jb)
        #expect(s3 == ramp(10, from: 101))
        #expect(p3.itemID == "b" && p3.startsItem && p3.endsItem)
        #expect(jb.underruns == 0)
    }

    @Test func oddByteChunksAreJoined() {
        var jb = makeBuffer(prebuffer: 0)
        let all = bytes(ramp(10))
        jb.enqueue(itemID: nil, pcm: all[0..<3])
        jb.enqueue(itemID: nil, pcm: all[3..<20])
        jb.finishItem(itemID: nil)
        let (s, p) = pull(&jb)
        #expect(s == ramp(10))
        #expect(p.hasItem && p.itemID == nil && p.endsItem)
    }

    @Test func stalledItemIsGivenUpSoTheDeviceCanStop() {
        var jb = makeBuffer(prebuffer: 10, stallLimit: 30)
        jb.enqueue(itemID: "a", pcm: bytes(ramp(10)))
        _ = pull(&jb)
        let (_, under) = pull(&jb)
        #expect(under.underrun)
        _ = pull(&jb)
        let (_, last) = pull(&jb)
        #expect(last.endsItem)
        #expect(jb.isIdle)
    }

    @Test func overflowIsRefusedAndCounted() {
        var jb = makeBuffer(maxQueued: 25)
        jb.enqueue(itemID: "a", pcm: bytes(ramp(20)))
        jb.enqueue(itemID: "a", pcm: bytes(ramp(10)))
        #expect(jb.queuedFrames == 20)
        #expect(jb.overflowFrames == 10)
    }

    @Test func emptyAndGarbageInputNeverTraps() {
        var jb = makeBuffer()
        jb.enqueue(itemID: "a", pcm: [UInt8]())
        jb.enqueue(itemID: "a", pcm: [7])
        jb.finishItem(itemID: "zzz")
        jb.finishItem(itemID: nil)
        #expect(jb.isIdle)
        let (s, p) = pull(&jb, frames: 0)
        #expect(s.isEmpty && p == .silence)
    }
}
