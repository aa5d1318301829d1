/// The speaker volume, applied to samples: 0...100 maps onto a cubic curve (loudness
/// follows roughly the cube root of amplitude, so equal steps sound like equal steps; 0 is
/// silence, 100 is unity and leaves the audio bit-exact). A change glides to the new gain
/// over `rampFrames` samples instead of jumping, because a jump in gain is a click.
public struct SoftwareGain: Sendable, Equatable {
    public private(set) var volume: Int
    public private(set) var gain: Float
    public private(set) var target: Float
    public let rampFrames: Int
    private var step: Float = 0

    public init(volume: Int, rampFrames: Int) {
        let v = Self.clamp(volume)
        self.volume = v
        self.gain = Self.gain(forVolume: v)
        self.target = gain
        self.rampFrames = max(1, rampFrames)
    }

    public static func clamp(_ volume: Int) -> Int { min(100, max(0, volume)) }

    /// The linear gain of a volume level.
    public static func gain(forVolume volume: Int) -> Float {
        let x = Float(clamp(volume)) / 100
        return x * x * x
    }

    public var isRamping: Bool { gain != target }

    public mutating func setVolume(_ newVolume: Int) {
        volume = Self.clamp(newVolume)
        target = Self.gain(forVolume: volume)
        step = (target - gain) / Float(rampFrames)
    }

    /// Scale `samples` in place.
    public mutating func apply(to samples: UnsafeMutableBufferPointer<Int16>) {
        var i = 0
        // The ramp: one step per sample until the target is reached.
        while isRamping && i < samples.count {
            gain += step
            if (step > 0 && gain >= target) || (step < 0 && gain <= target) || step == 0 { gain = target }
            samples[i] = Self.scale(samples[i], by: gain)
            i += 1
        }
        guard i < samples.count else { return }
        if gain == 1 { return }
        if gain == 0 {
            for j in i..<samples.count { samples[j] = 0 }
            return
        }
        let g = gain
        for j in i..<samples.count { samples[j] = Self.scale(samples[j], by: g) }
    }

    private static func scale(_ sample: Int16, by gain: Float) -> Int16 {
        let v = (Float(sample) * gain).rounded()
        return Int16(min(32767, max(-32768, v)))
    }
}
