/// Half-duplex echo suppression for robots without an acoustic echo canceller: in `gate`
/// mode, microphone periods captured while the speaker plays, and for `tail` after it stops
/// (room reverb, the device's own latency), are replaced by digital silence of the same
/// length. The uplink timeline stays continuous: the brain hears a pause, not a splice.
/// In `none` mode everything passes (a robot with hardware AEC, or headphones).
///
/// Pure: the playback side reports when the speaker starts and stops, the capture side asks
/// about each period with its capture time.
public struct EchoGate: Sendable {
    public var mode: EchoMode
    public var tail: Duration

    private var speakingSince: MonoTime?
    private var lastSpeech: (start: MonoTime, end: MonoTime)?

    public init(mode: EchoMode, tail: Duration) {
        self.mode = mode
        self.tail = tail
    }

    public var isSpeakerActive: Bool { speakingSince != nil }

    public mutating func speakerStarted(at time: MonoTime) {
        if speakingSince == nil { speakingSince = time }
    }

    public mutating func speakerStopped(at time: MonoTime) {
        guard let start = speakingSince else { return }
        speakingSince = nil
        lastSpeech = (start, max(start, time))
    }

    /// Whether a period captured over `[start, start + duration)` may have the speaker in it.
    public func isClosed(start: MonoTime, duration: Duration) -> Bool {
        guard mode == .gate else { return false }
        let end = start + duration
        if let since = speakingSince, end > since { return true }
        if let last = lastSpeech, end > last.start, start < last.end + tail { return true }
        return false
    }

    /// Silence `samples` if the gate is closed for them; returns whether it did.
    @discardableResult
    public func apply(to samples: UnsafeMutableBufferPointer<Int16>, start: MonoTime, duration: Duration) -> Bool {
        guard isClosed(start: start, duration: duration) else { return false }
        samples.update(repeating: 0)
        return true
    }
}
