/// Between the mono stream tether speaks and hears and the interleaved frames of a device
/// that only runs with more channels (many USB microphones are stereo-only, HDMI and many
/// DACs likewise).
public enum ChannelMix {
    /// Mono from interleaved `channels`-channel frames: the average of the channels, so
    /// identical channels come out bit-exact and nothing clips.
    public static func downmix(_ interleaved: UnsafeBufferPointer<Int16>, channels: Int, into mono: UnsafeMutableBufferPointer<Int16>) {
        precondition(channels >= 1 && interleaved.count >= mono.count * channels)
        if channels == 1 {
            _ = mono.initialize(from: interleaved[0..<mono.count])
            return
        }
        var base = 0
        for frame in 0..<mono.count {
            var sum = 0
            for c in 0..<channels { sum += Int(interleaved[base + c]) }
            mono[frame] = Int16(sum / channels)
            base += channels
        }
    }

    /// Interleaved `channels`-channel frames with the mono signal on every channel.
    public static func upmix(_ mono: UnsafeBufferPointer<Int16>, channels: Int, into interleaved: UnsafeMutableBufferPointer<Int16>) {
        precondition(channels >= 1 && interleaved.count >= mono.count * channels)
        var base = 0
        for sample in mono {
            for c in 0..<channels { interleaved[base + c] = sample }
            base += channels
        }
    }
}
