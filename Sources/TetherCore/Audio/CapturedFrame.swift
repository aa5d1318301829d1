/// One period of microphone audio on its way uplink.
public struct CapturedFrame: Sendable, Equatable {
    /// PCM16 little-endian mono at the capture rate.
    public var pcm: [UInt8]
    /// When the first sample of the period was captured (monotonic clock).
    public var capturedAt: MonoTime
    public var duration: Duration
    /// The echo gate replaced this period with digital silence (the speaker was playing).
    public var gated: Bool

    public init(pcm: [UInt8], capturedAt: MonoTime, duration: Duration, gated: Bool = false) {
        self.pcm = pcm
        self.capturedAt = capturedAt
        self.duration = duration
        self.gated = gated
    }
}
