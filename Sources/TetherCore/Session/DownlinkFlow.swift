/// Reading from the brain follows the speaker. A brain that sends reply audio far faster than
/// real time, or without end, fills the playback buffer up to `pauseAtMs`; then tetherd stops
/// reading its socket (TCP back-pressure: the brain's writes wait, nothing is dropped) until
/// the speaker has played the buffer down below `resumeBelowMs`. Pure: the session asks it
/// after every reply chunk and on a timer while reading is paused.
public struct DownlinkFlow: Sendable, Equatable {
    public enum Action: Sendable, Equatable { case pauseReading, resumeReading }

    public private(set) var pauseAtMs: Int
    public private(set) var resumeBelowMs: Int
    public private(set) var paused = false

    /// Resumes once a quarter of the limit has played (at least a second): not so early that
    /// every chunk pauses again, not so late that the speaker runs dry.
    public init(maxBufferMs: Int) {
        pauseAtMs = 0
        resumeBelowMs = 0
        update(maxBufferMs: maxBufferMs)
    }

    /// A reloaded `max_buffer`: a paused reader stays paused until the new threshold.
    public mutating func update(maxBufferMs: Int) {
        pauseAtMs = max(1, maxBufferMs)
        resumeBelowMs = max(0, pauseAtMs - max(1000, pauseAtMs / 4))
    }

    public mutating func playbackQueued(ms: Int) -> Action? {
        if !paused && ms >= pauseAtMs {
            paused = true
            return .pauseReading
        }
        if paused && ms < resumeBelowMs {
            paused = false
            return .resumeReading
        }
        return nil
    }

    /// A new connection reads from the start.
    public mutating func connectionChanged() { paused = false }
}
