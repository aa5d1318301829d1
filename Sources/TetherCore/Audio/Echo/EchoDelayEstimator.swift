/// Finds how much later than the device delays say the microphone hears the speaker: the part
/// of the echo path no device reports (a plugin chain that buffers, a Bluetooth or USB speaker,
/// the air), so the canceller's reference can be lined up with the echo before its filter
/// (only `echo_tail` long) has to model it.
///
/// It correlates envelopes, not samples: the power of each `blockFrames` block of the
/// microphone against the reference's, over the last `window` blocks, at every lag from
/// `minLag` to `maxLag` blocks (negative lags: the echo arrives earlier than predicted). Cheap
/// (a few tens of thousands of multiply-adds per estimate) and robust to the room's
/// reverberation, to the block's resolution (4 ms at 24 kHz with the defaults). An estimate is
/// believed only when the peak correlation is clear and two estimates in a row agree, so near
/// end speech or noise does not move the canceller's alignment.
///
/// Pure: the caller feeds microphone samples as they come and, for an estimate, the
/// reference's block powers for the stretch the lags cover (`referenceSpan`).
public struct EchoDelayEstimator: Sendable {
    public let blockFrames: Int
    public let window: Int
    public let minLag: Int
    public let maxLag: Int
    /// The smallest peak correlation (Pearson, of log powers) believed.
    public let threshold: Float

    private var mic: [Float]
    private var micNext = 0
    private var micBlocks = 0
    private var partial: Float = 0
    private var partialCount = 0
    /// Capture position after the last complete microphone block.
    public private(set) var micEnd: Int64 = 0
    private var candidate: Int?
    /// The lag (blocks) believed, once two estimates agreed.
    public private(set) var lag: Int?
    public private(set) var lastPeak: Float = 0

    public init(rate: Int, block: Duration = .milliseconds(4), window: Duration = .milliseconds(1200),
                minLag: Duration = .milliseconds(-60), maxLag: Duration = .milliseconds(800), threshold: Float = 0.5) {
        blockFrames = max(1, PCM16.frames(block, rate: rate))
        let blockNanos = block.nanoseconds
        self.window = max(8, Int(window.nanoseconds / blockNanos))
        self.minLag = Int(minLag.nanoseconds / blockNanos)
        self.maxLag = max(self.minLag + 1, Int(maxLag.nanoseconds / blockNanos))
        self.threshold = threshold
        mic = [Float](repeating: 0, count: self.window)
    }

    /// How many reference blocks an estimate needs, and the capture-aligned position of the
    /// first: the reference the microphone's window heard at `maxLag` (the earliest).
    public var referenceBlocks: Int { window + maxLag - minLag }
    public func referenceStart(offset: Int64) -> Int64 {
        micEnd - Int64(window * blockFrames) + offset - Int64(maxLag * blockFrames)
    }
    public var isReady: Bool { micBlocks >= window }

    /// Microphone samples starting at capture position `position` (consecutive calls continue
    /// where the last ended; a jump restarts the history).
    public mutating func addMic(_ samples: UnsafeBufferPointer<Int16>, at position: Int64) {
        if position != micEnd + Int64(partialCount) {
            micBlocks = 0
            partial = 0
            partialCount = 0
            micEnd = position
        }
        for s in samples {
            let f = Float(s)
            partial += f * f
            partialCount += 1
            if partialCount == blockFrames {
                mic[micNext] = partial / Float(blockFrames)
                micNext = (micNext + 1) % window
                micBlocks = min(micBlocks + 1, window)
                micEnd += Int64(blockFrames)
                partial = 0
                partialCount = 0
            }
        }
    }

    /// Correlate the microphone's window with the reference's block powers (`referenceBlocks`
    /// of them from `referenceStart`); returns the lag believed now (nil: none yet). `scratch`
    /// holds `scratchCount` floats, so nothing is allocated.
    public var scratchCount: Int { window + referenceBlocks }

    public mutating func estimate(reference: UnsafeBufferPointer<Float>, scratch: UnsafeMutableBufferPointer<Float>) -> Int? {
        guard isReady, reference.count >= referenceBlocks, scratch.count >= scratchCount else { return lag }
        // Log powers, mean removed: the envelope's shape, whatever the echo's level.
        var micMean: Float = 0
        for i in 0..<window {
            let v = Self.level(mic[(micNext + i) % window])
            scratch[i] = v
            micMean += v
        }
        micMean /= Float(window)
        var micVar: Float = 0
        for i in 0..<window {
            scratch[i] -= micMean
            micVar += scratch[i] * scratch[i]
        }
        guard micVar > 0 else { return lag }
        let ref = UnsafeMutableBufferPointer(rebasing: scratch[window..<(window + referenceBlocks)])
        for i in 0..<referenceBlocks { ref[i] = Self.level(reference[i]) }
        // The microphone's window is mean-free, so the reference's mean drops out of the dot
        // product; only its variance needs it (sums over a sliding window).
        // Lag maxLag starts at reference block 0. Double sums: they slide over hundreds of lags.
        var sum: Double = 0
        var sumSq: Double = 0
        for i in 0..<window {
            sum += Double(ref[i])
            sumSq += Double(ref[i] * ref[i])
        }
        var best: Float = -1
        var bestLag = 0
        // The room smears the microphone's envelope late, so the peak is broad and its top lies
        // after the direct path: take the earliest lag of the peak (within `peakWidth` of its
        // top, contiguous with it). An echo placed late in the filter costs a little; one
        // placed before its start is not cancelled at all.
        var onPeak = false
        // Lag L: microphone block i heard reference block i + (maxLag - L); walking L down
        // from maxLag slides the reference window forward one block at a time.
        var l = maxLag
        while true {
            let base = maxLag - l
            let refVar = Float(sumSq - sum * sum / Double(window))
            if refVar > 1e-3 * Float(window) {
                let dot = Self.dot(ref.baseAddress! + base, scratch.baseAddress!, count: window)
                let c = dot / (refVar * micVar).squareRoot()
                if c > best {
                    best = c
                    bestLag = l
                    onPeak = true
                } else if onPeak && c >= best - Self.peakWidth {
                    bestLag = l
                } else {
                    onPeak = false
                }
            }
            if l == minLag { break }
            let leaving = ref[base], entering = ref[base + window]
            sum += Double(entering - leaving)
            sumSq += Double(entering * entering - leaving * leaving)
            l -= 1
        }
        lastPeak = best
        guard best >= threshold else {
            candidate = nil
            return lag
        }
        if let c = candidate, abs(c - bestLag) <= 1 { lag = bestLag }
        candidate = bestLag
        return lag
    }

    /// Forget the believed lag (the echo path was reset).
    public mutating func reset() {
        lag = nil
        candidate = nil
        micBlocks = 0
        partial = 0
        partialCount = 0
    }

    /// The dot product of `count` floats, in eight lanes: a plain `+=` loop is one long chain
    /// of dependent additions the compiler may not reorder (float addition is not
    /// associative), and this runs for every lag of every estimate (about 65,000
    /// multiply-adds ten times a second; measured in docs/BENCHMARKS.md, "Echo cancellation").
    @inline(__always) static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> Float {
        var lanes = SIMD8<Float>()
        var i = 0
        while i + 8 <= count {
            let x = UnsafeRawPointer(a + i).loadUnaligned(as: SIMD8<Float>.self)
            let y = UnsafeRawPointer(b + i).loadUnaligned(as: SIMD8<Float>.self)
            lanes += x * y
            i += 8
        }
        var sum = lanes.sum()
        while i < count {
            sum += a[i] * b[i]
            i += 1
        }
        return sum
    }

    /// How far below its top a lag still counts as the peak (Pearson correlation).
    static let peakWidth: Float = 0.02

    /// Log power, floored (digital silence must not weigh as -infinity), as the piecewise
    /// linear log2 of the float's exponent and significand: within 0.09 of log2, plenty for
    /// an envelope's shape, and no libm on the capture thread.
    @inline(__always) static func level(_ power: Float) -> Float {
        let x = max(power, 1.0)
        return Float(x.exponent) + (x.significand - 1)
    }
}
