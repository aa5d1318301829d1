/// One turn of the conversation as text, the form in which it outlives its upstream session
/// (rule 13): the next session is seeded with these, in order.
public enum ConversationTurn: Sendable, Equatable {
    /// What the person said, from the brain's input transcription.
    case user(String)
    /// What the robot said. `interrupted`: the person talked over it, and the text holds only
    /// the share that was really played.
    case assistant(String, interrupted: Bool)
    /// A tool the brain called and what the robot process answered.
    case tool(callID: String, name: String, arguments: String, output: String)

    /// What it costs of `conversation.max_chars`.
    public var chars: Int {
        switch self {
        case .user(let text), .assistant(let text, _): return text.count
        case .tool(_, let name, let arguments, let output): return name.count + arguments.count + output.count
        }
    }
}

/// Who said a message the brain added to its conversation.
public enum ConversationRole: String, Sendable, Equatable {
    case user, assistant
}
