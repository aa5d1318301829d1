/// What was wrong with a datagram or one of its messages. The parser never traps: it skips
/// what it cannot read, reports it here, and returns every message it could decode.
public enum NetlinkParseError: Error, Sendable, Equatable {
    /// Fewer than 16 bytes left where a header should start. The rest of the datagram is lost.
    case truncatedHeader(offset: Int)
    /// `nlmsg_len` is below the header size or runs past the datagram. The rest is lost.
    case badMessageLength(offset: Int, length: UInt32)
    /// The payload is shorter than the fixed family header of its type. The message is skipped.
    case truncatedPayload(offset: Int, type: UInt16)
    /// An attribute's length is impossible, or its value has the wrong size for its type.
    /// The message is skipped: a half-read route or address could be folded wrongly.
    case badAttribute(offset: Int, type: UInt16)
}

/// Everything decoded from one datagram.
public struct NetlinkParseResult: Sendable, Equatable {
    public var messages: [NetlinkMessage] = []
    public var errors: [NetlinkParseError] = []

    public init(messages: [NetlinkMessage] = [], errors: [NetlinkParseError] = []) {
        self.messages = messages
        self.errors = errors
    }

    public var errorCount: Int { errors.count }
}
