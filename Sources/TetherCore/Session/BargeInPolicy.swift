/// Barge-in (rule 9): what to do when the person talks over the robot, or is asked to be
/// spoken over. Pure: the session asks it when a cause arrives, silences the speaker as it
/// says, and then asks what to tell the brain about what was really heard.
public struct BargeInPolicy: Sendable, Equatable {
    public enum Cause: Sendable, Equatable {
        /// The `interrupt` command: a robot process wants the robot quiet now.
        case interruptCommand
        /// The brain heard the user start talking (its voice activity detection).
        case userStartedSpeaking
        /// The brain asked for playback to be flushed (pcm-stream `clear`).
        case brainAskedToClear
    }

    public struct Plan: Sendable, Equatable {
        /// Also stop the response the brain is generating. Not needed when the brain itself
        /// noticed (its voice detection already cancels the response).
        public var cancelResponse: Bool
    }

    /// How much of an item reached the speaker before it was silenced.
    public struct Heard: Sendable, Equatable {
        public var itemID: String?
        public var playedMs: Int
        public init(itemID: String?, playedMs: Int) {
            self.itemID = itemID
            self.playedMs = playedMs
        }
    }

    public let protocolKind: UpstreamProtocol

    public init(protocolKind: UpstreamProtocol) { self.protocolKind = protocolKind }

    /// nil: leave the speaker alone; otherwise silence it, and maybe cancel the response.
    public func plan(for cause: Cause) -> Plan? {
        switch cause {
        case .interruptCommand:
            return Plan(cancelResponse: true)
        case .userStartedSpeaking:
            // A pcm-stream brain decides itself and sends `clear` when it wants silence;
            // openai-realtime leaves stopping the speaker to the client.
            return protocolKind == .openaiRealtime ? Plan(cancelResponse: false) : nil
        case .brainAskedToClear:
            return Plan(cancelResponse: false)
        }
    }

    /// Once the speaker is silent: the brain is told to cut the item that was playing at the
    /// milliseconds that were played, so its transcript matches what the person heard.
    /// Nothing was playing: nothing to truncate.
    public func truncation(after heard: Heard?) -> Heard? {
        guard let heard else { return nil }
        return Heard(itemID: heard.itemID, playedMs: max(0, heard.playedMs))
    }
}
