/// Notices a capture stream that delivers audio faster than real time. A microphone cannot:
/// after a stall it hands over at most its buffer at once, then one period per period. A
/// stream that runs faster is not listening to anything: a `file` plugin whose input ended
/// and now repeats stale data, a broken plugin chain. Left alone it would flood the uplink
/// with junk and spin a core, so the capture thread treats it as a device fault.
///
/// It judges windows of `bufferFrames + 4 periods` of audio: the window is suspect when it
/// arrived in less than half of (its length minus one buffer), i.e. at more than twice real
/// time even granting a full buffer of backlog. Pure: the caller passes the time.
public struct RealTimeCheck: Sendable, Equatable {
    public let rate: Int
    public let bufferFrames: Int
    public let windowFrames: Int
    private var windowStart: MonoTime?
    private var windowFrameCount = 0

    public init(rate: Int, periodFrames: Int, bufferFrames: Int) {
        self.rate = max(1, rate)
        self.bufferFrames = max(0, bufferFrames)
        self.windowFrames = max(1, bufferFrames + 4 * max(1, periodFrames))
    }

    public mutating func reset() {
        windowStart = nil
        windowFrameCount = 0
    }

    /// `frames` more arrived at `now`. Returns true when the stream runs faster than real time.
    public mutating func record(frames: Int, at now: MonoTime) -> Bool {
        guard let start = windowStart else {
            // The first read may return a backlog; time starts when it has arrived.
            windowStart = now
            return false
        }
        windowFrameCount += frames
        guard windowFrameCount >= windowFrames else { return false }
        let audio = PCM16.duration(frames: windowFrameCount - bufferFrames, rate: rate)
        let elapsed = now - start
        windowStart = now
        windowFrameCount = 0
        return elapsed < audio / 2
    }
}
