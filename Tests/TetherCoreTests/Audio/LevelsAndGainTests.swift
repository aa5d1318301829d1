import Testing
@testable import TetherCore

private func level(_ samples: [Int16]) -> Double {
    samples.withUnsafeBufferPointer { LevelMeter.dbfs($0) }
}

@Suite struct SumOfSquaresTests {
    @Test func isExactAtFullScale() {
        // 100,000 samples of -32768: 100,000 * 2^30, beyond Float's and Int32's exact range.
        let loud = [Int16](repeating: .min, count: 100_000)
        let full: Int64 = 100_000 * 1_073_741_824
        #expect(loud.withUnsafeBufferPointer(PCM16.sumOfSquares) == full)
        let mixed: [Int16] = [3, -4, 0, .max, 1]
        let expected: Int64 = 9 + 16 + 0 + 1_073_676_289 + 1  // 32767^2
        #expect(mixed.withUnsafeBufferPointer(PCM16.sumOfSquares) == expected)
        #expect([Int16]().withUnsafeBufferPointer(PCM16.sumOfSquares) == 0)
    }
}

@Suite struct LevelMeterTests {
    @Test func referenceLevels() {
        #expect(level([Int16](repeating: 0, count: 480)) == LevelMeter.floor)
        #expect(abs(level([Int16](repeating: -32768, count: 480))) < 1e-9)
        // Half scale is -6.02 dB.
        #expect(abs(level([Int16](repeating: 16384, count: 480)) - (-6.020599913279624)) < 1e-9)
        // A full-scale sine is about -3.01 dBFS.
        let sine = (0..<4800).map { Int16((32767 * sinApprox(Double($0) / 48)).rounded()) }
        #expect(abs(level(sine) - (-3.0103)) < 0.01)
        // One LSB of noise is about -90.3 dBFS.
        #expect(abs(level([Int16](repeating: 1, count: 10)) - (-90.309)) < 0.001)
    }

    @Test func accumulatesAcrossPeriods() {
        var meter = LevelMeter()
        let loud = [Int16](repeating: 16384, count: 100)
        let quiet = [Int16](repeating: 0, count: 100)
        loud.withUnsafeBufferPointer { meter.add($0) }
        quiet.withUnsafeBufferPointer { meter.add($0) }
        // Mean square halves: -6.02 - 3.01.
        #expect(abs(meter.take() - (-9.030899869919434)) < 1e-9)
        let r1 = meter.take()
        #expect(r1 == LevelMeter.floor)
    }

    @Test func log10MatchesKnownValues() {
        for (x, expected) in [(1.0, 0.0), (10.0, 1.0), (1e-9, -9.0), (2.0, 0.3010299956639812), (0.5, -0.3010299956639812), (12345.678, 4.091514945)] {
            #expect(abs(Decibel.log10(x) - expected) < 1e-9)
        }
    }

    /// sin(2πx) by Taylor series: the test must not lean on libm either.
    private func sinApprox(_ turns: Double) -> Double {
        var x = (turns - (turns).rounded(.down)) * 2 * Double.pi
        if x > Double.pi { x -= 2 * Double.pi }
        var term = x
        var sum = x
        for n in 1..<12 {
            term *= -x * x / Double((2 * n) * (2 * n + 1))
            sum += term
        }
        return sum
    }
}

@Suite struct RateLimiterTests {
    @Test func atMostOncePerInterval() {
        var limiter = RateLimiter(minInterval: .milliseconds(100))
        let r2 = limiter.allow(at: .milliseconds(0))
        #expect(r2)
        let r3 = limiter.allow(at: .milliseconds(20))
        #expect(!r3)
        let r4 = limiter.allow(at: .milliseconds(99))
        #expect(!r4)
        let r5 = limiter.allow(at: .milliseconds(100))
        #expect(r5)
        let r6 = limiter.allow(at: .milliseconds(150))
        #expect(!r6)
        let r7 = limiter.allow(at: .milliseconds(260))
        #expect(r7)
    }
}

@Suite struct LevelReportPolicyTests {
    @Test func publishesChangesAtMostTenTimesASecondAndKeepsAlive() {
        var policy = LevelReportPolicy()
        func publish(_ mic: Double, _ out: Double, _ ms: Int64) -> Bool {
            policy.shouldPublish(mic: mic, out: out, at: .milliseconds(ms))
        }
        #expect(publish(-60, -120, 0))           // the first one always
        #expect(!publish(-20, -120, 50))         // a change, but too soon
        #expect(publish(-20, -120, 100))         // a change, 100 ms later
        #expect(!publish(-20.5, -120, 200))      // under 1 dB: nothing new to say
        #expect(!publish(-20, -120, 900))
        #expect(publish(-20, -120, 1100))        // but say it again after a second
        #expect(publish(-20, -30, 1200))         // the speaker moved
        #expect(!publish(-20, -30.4, 1300))
    }
}

@Suite struct SoftwareGainTests {
    @Test func cubicCurve() {
        #expect(SoftwareGain.gain(forVolume: 100) == 1)
        #expect(SoftwareGain.gain(forVolume: 0) == 0)
        #expect(abs(SoftwareGain.gain(forVolume: 50) - 0.125) < 1e-6)
        #expect(SoftwareGain.gain(forVolume: 150) == 1)
        #expect(SoftwareGain.gain(forVolume: -3) == 0)
    }

    @Test func unityIsBitExactAndZeroIsSilence() {
        var full = SoftwareGain(volume: 100, rampFrames: 8)
        var samples: [Int16] = [-32768, 32767, 1, -1, 1234]
        samples.withUnsafeMutableBufferPointer { full.apply(to: $0) }
        #expect(samples == [-32768, 32767, 1, -1, 1234])
        var mute = SoftwareGain(volume: 0, rampFrames: 8)
        samples.withUnsafeMutableBufferPointer { mute.apply(to: $0) }
        #expect(samples == [0, 0, 0, 0, 0])
    }

    @Test func changesRampPerSampleWithoutAJump() {
        var gain = SoftwareGain(volume: 100, rampFrames: 10)
        gain.setVolume(0)
        var samples = [Int16](repeating: 10000, count: 16)
        samples.withUnsafeMutableBufferPointer { gain.apply(to: $0) }
        // Falls by a tenth per sample, reaches zero at the tenth sample and stays there.
        #expect(Array(samples[0..<10]) == [9000, 8000, 7000, 6000, 5000, 4000, 3000, 2000, 1000, 0])
        #expect(Array(samples[10...]) == [0, 0, 0, 0, 0, 0])
        #expect(!gain.isRamping)
        // Back up across a buffer boundary: the ramp carries on where it left off.
        gain.setVolume(100)
        var a = [Int16](repeating: 10000, count: 4)
        var b = [Int16](repeating: 10000, count: 8)
        a.withUnsafeMutableBufferPointer { gain.apply(to: $0) }
        b.withUnsafeMutableBufferPointer { gain.apply(to: $0) }
        #expect(a == [1000, 2000, 3000, 4000])
        #expect(b == [5000, 6000, 7000, 8000, 9000, 10000, 10000, 10000])
        for (x, y) in zip(a + b, (a + b).dropFirst()) { #expect(y - x <= 1000) }
    }

    @Test func scalingClampsInsteadOfWrapping() {
        var gain = SoftwareGain(volume: 80, rampFrames: 1)
        var samples: [Int16] = [-32768, 32767]
        samples.withUnsafeMutableBufferPointer { gain.apply(to: $0) }
        #expect(samples == [-16777, 16777])
    }
}
