import Testing
@testable import TetherCore

@Suite struct ChannelMixTests {
    @Test func downmixAveragesAndIdenticalChannelsAreExact() {
        let stereo: [Int16] = [100, 100, -32768, -32768, 32767, 32767, 10, 20]
        var mono = [Int16](repeating: 0, count: 4)
        stereo.withUnsafeBufferPointer { src in
            mono.withUnsafeMutableBufferPointer { ChannelMix.downmix(src, channels: 2, into: $0) }
        }
        #expect(mono == [100, -32768, 32767, 15])
    }

    @Test func upmixCopiesToEveryChannel() {
        let mono: [Int16] = [1, -2]
        var out = [Int16](repeating: 0, count: 6)
        mono.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { ChannelMix.upmix(src, channels: 3, into: $0) }
        }
        #expect(out == [1, 1, 1, -2, -2, -2])
    }

    @Test func pcm16RoundTripsLittleEndian() {
        let samples: [Int16] = [0, 1, -1, 0x1234, -32768, 32767]
        let bytes = PCM16.bytes(samples)
        #expect(Array(bytes[6..<8]) == [0x34, 0x12])
        #expect(PCM16.samples(fromLittleEndian: bytes) == samples)
        #expect(PCM16.samples(fromLittleEndian: bytes + [9]) == samples)
        #expect(PCM16.milliseconds(frames: 479, rate: 24000) == 19)
        #expect(PCM16.frames(.milliseconds(20), rate: 24000) == 480)
    }
}

@Suite struct RealTimeCheckTests {
    // 24 kHz, 20 ms periods, 80 ms buffer: windows of 160 ms of audio.
    private func check() -> RealTimeCheck { RealTimeCheck(rate: 24000, periodFrames: 480, bufferFrames: 1920) }

    @Test func realTimeStreamPasses() {
        var c = check()
        var t = MonoTime.milliseconds(0)
        for _ in 0..<500 {
            let fast = c.record(frames: 480, at: t)
            #expect(!fast)
            t = t + .milliseconds(20)
        }
    }

    @Test func backlogAfterAStallPasses() {
        var c = check()
        var t = MonoTime.milliseconds(0)
        _ = c.record(frames: 480, at: t)
        // The thread was held up 100 ms: a full buffer arrives at once, then real time again.
        t = t + .milliseconds(100)
        for _ in 0..<4 {
            let fast = c.record(frames: 480, at: t)
            #expect(!fast)
        }
        for _ in 0..<100 {
            t = t + .milliseconds(20)
            let fast = c.record(frames: 480, at: t)
            #expect(!fast)
        }
    }

    @Test func streamFasterThanRealTimeIsCaughtWithinTwoWindows() {
        var c = check()
        var t = MonoTime.milliseconds(0)
        for _ in 0..<10 {
            _ = c.record(frames: 480, at: t)
            t = t + .milliseconds(20)
        }
        // The input ended: stale periods come back instantly.
        var caught = 0
        for i in 0..<16 {
            t = t + .microseconds(50)
            if c.record(frames: 480, at: t) { caught = i + 1; break }
        }
        #expect(caught > 0 && caught <= 16)
    }
}
