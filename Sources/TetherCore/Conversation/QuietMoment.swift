/// Whether the conversation is at a quiet moment, where a rotation may switch sessions
/// without anyone noticing: nobody speaking (no `speech_started` without its
/// `speech_stopped`), no response in progress, the speaker idle, no tool call pending.
/// Pure: the session feeds it what the brain says and asks with what the audio engine and
/// the tool-call ledger know.
public struct QuietMoment: Sendable, Equatable {
    public private(set) var speaking = false
    public private(set) var responding = false

    public init() {}

    public mutating func speechStarted() { speaking = true }
    public mutating func speechStopped() { speaking = false }
    /// A response began (or its audio arrived, for brains that do not announce responses).
    public mutating func responseStarted() { responding = true }
    public mutating func responseDone() { responding = false }

    /// A new upstream session: what the old one had in progress ended with it.
    public mutating func sessionChanged() { self = QuietMoment() }

    public func isQuiet(speakerIdle: Bool, toolCallsPending: Int) -> Bool {
        !speaking && !responding && speakerIdle && toolCallsPending == 0
    }
}
