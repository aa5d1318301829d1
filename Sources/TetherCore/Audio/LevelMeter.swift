/// Loudness of PCM16 audio in dBFS: 20·log10(RMS / 32768), so a full-scale square wave is
/// 0 dBFS and a full-scale sine about -3 dBFS. Digital silence reads `floor` instead of -inf
/// (JSON has no infinity, and a robot's LED code wants a number).
///
/// It accumulates over as many periods as the caller likes and reports the RMS of all of
/// them: `audio.level` at 10 Hz covers every sample, not just the last period.
public struct LevelMeter: Sendable, Equatable {
    public static let floor: Double = -120

    private var sumOfSquares: Double = 0
    private var count = 0

    public init() {}

    public var isEmpty: Bool { count == 0 }

    public mutating func add(_ samples: UnsafeBufferPointer<Int16>) {
        // Integer squares summed per period: exact, and cheap enough for every period.
        sumOfSquares += Double(PCM16.sumOfSquares(samples))
        count += samples.count
    }

    /// The level of everything added since the last call, then start over. Nothing added
    /// reads as `floor`.
    public mutating func take() -> Double {
        defer {
            sumOfSquares = 0
            count = 0
        }
        return Self.dbfs(sumOfSquares: sumOfSquares, count: count)
    }

    /// The level of one buffer.
    public static func dbfs(_ samples: UnsafeBufferPointer<Int16>) -> Double {
        var meter = LevelMeter()
        meter.add(samples)
        return meter.take()
    }

    public static func dbfs(sumOfSquares: Double, count: Int) -> Double {
        guard count > 0, sumOfSquares > 0 else { return floor }
        let meanSquare = sumOfSquares / Double(count) / (32768.0 * 32768.0)
        // 20·log10(rms) = 10·log10(mean square)
        return max(floor, 10 * Decibel.log10(meanSquare))
    }
}

/// log10 without libm: TetherCore stays free of C. Splits x into m·2^e with m near 1 and
/// sums the atanh series of ln(m); 1e-15 relative accuracy, far below what a level needs.
enum Decibel {
    static func log10(_ x: Double) -> Double {
        guard x > 0, x.isFinite else { return x == 0 ? -.infinity : .nan }
        var m = x.significand  // [1, 2)
        var e = Double(x.exponent)
        if m > 1.4142135623730951 {
            m /= 2
            e += 1
        }
        let t = (m - 1) / (m + 1)  // |t| < 0.172
        let t2 = t * t
        var term = t
        var sum = 0.0
        var k = 1.0
        while true {
            let add = term / k
            sum += add
            if abs(add) < 1e-18 { break }
            term *= t2
            k += 2
        }
        let ln = 2 * sum + e * 0.6931471805599453
        return ln / 2.302585092994046
    }
}
