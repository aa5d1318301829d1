/// The rules of RFC 6455 for frames after the upgrade, for either end of a connection: tetherd
/// (client) and the mock brain (server) both feed every decoded frame through this one machine
/// and perform the action it returns. (They once had a frame layer each, and the two drifted: the
/// client took any close code, the server never checked control frame sizes.)
///
/// It holds no I/O and no NIO types, only what the rules need: whether a fragmented message is
/// under way (and its bytes), and whether a close was sent or received. The payload is borrowed
/// for the call, so an unfragmented binary frame (the audio path, 50 a second) costs a few
/// comparisons and no copy: `.deliverBinary(.thisFrame)` tells the caller to hand on the frame
/// it already holds.
public struct WebSocketStateMachine: Sendable {
    /// The ends differ only in masking: client frames must be masked, server frames must not be.
    public enum Role: Sendable { case client, server }

    public enum State: Sendable, Equatable {
        case open
        /// We sent a close: only the peer's close (and pongs) still mean something.
        case closing
        /// The closing handshake is over, or the connection ended: nothing is acted on.
        case closed
    }

    /// The header fields of one decoded frame that the rules look at.
    public struct Frame: Sendable, Equatable {
        public var fin: Bool
        /// Any of RSV1-3; no extension is ever negotiated, so any set bit is a violation.
        public var reservedBitsSet: Bool
        /// The 4-bit opcode as on the wire.
        public var opcode: UInt8
        public var masked: Bool

        public init(fin: Bool, reservedBitsSet: Bool = false, opcode: UInt8, masked: Bool) {
            self.fin = fin
            self.reservedBitsSet = reservedBitsSet
            self.opcode = opcode
            self.masked = masked
        }
    }

    /// Where a delivered message's bytes are.
    public enum Message: Sendable, Equatable {
        /// The frame just received is the whole message: the caller delivers its payload.
        case thisFrame
        /// The message came in fragments, reassembled here.
        case assembled([UInt8])
    }

    public enum Action: Sendable, Equatable {
        /// Nothing to do: a fragment was kept, or the frame no longer matters (closing).
        case ignore
        /// A whole text message, already checked to be UTF-8.
        case deliverText(Message)
        case deliverBinary(Message)
        /// Answer with a pong carrying this ping's payload.
        case replyPong
        /// A pong arrived; its payload is this frame's.
        case receivedPong
        /// The peer started the closing handshake (code 1005 when it gave none): answer its
        /// close and end the connection.
        case peerClosed(code: UInt16, reason: String)
        /// The peer answered the close we sent: the handshake is complete, close TCP.
        case closeAcknowledged
        /// The peer broke the protocol: send a close with this code and end the connection.
        case close(code: UInt16, reason: String)
    }

    /// RFC 6455 opcodes, as the raw byte the frame layer hands over.
    public enum Opcode {
        public static let continuation: UInt8 = 0x0
        public static let text: UInt8 = 0x1
        public static let binary: UInt8 = 0x2
        public static let close: UInt8 = 0x8
        public static let ping: UInt8 = 0x9
        public static let pong: UInt8 = 0xA
    }

    /// A control frame carries at most 125 bytes of payload (RFC 6455 5.5).
    public static let maxControlPayloadBytes = 125

    public let role: Role
    public let maxMessageBytes: Int
    public private(set) var state = State.open
    /// The opcode (text or binary) of the fragmented message under way, if any.
    private var fragmentOpcode: UInt8?
    private var fragments: [UInt8] = []

    public init(role: Role, maxMessageBytes: Int) {
        self.role = role
        self.maxMessageBytes = maxMessageBytes
    }

    /// One decoded frame; `payload` is unmasked (the server end unmasks before asking).
    public mutating func received(_ frame: Frame, payload: UnsafeRawBufferPointer) -> Action {
        guard state != .closed else { return .ignore }
        if frame.reservedBitsSet { return violation(1002, "reserved bits set without an extension") }
        switch role {
        case .client where frame.masked: return violation(1002, "masked frame from the server")
        case .server where !frame.masked: return violation(1002, "client frame not masked")
        default: break
        }
        switch frame.opcode {
        case Opcode.ping, Opcode.pong, Opcode.close:
            guard frame.fin else { return violation(1002, "fragmented control frame") }
            guard payload.count <= Self.maxControlPayloadBytes else {
                return violation(1002, "control frame larger than \(Self.maxControlPayloadBytes) bytes")
            }
            return control(frame.opcode, payload)
        case Opcode.text, Opcode.binary:
            guard state == .open else { return .ignore }
            guard fragmentOpcode == nil else { return violation(1002, "new message inside a fragmented one") }
            guard payload.count <= maxMessageBytes else { return tooLarge() }
            guard frame.fin else {
                fragmentOpcode = frame.opcode
                fragments = Array(payload)
                return .ignore
            }
            return deliver(frame.opcode, .thisFrame, payload)
        case Opcode.continuation:
            guard state == .open else { return .ignore }
            guard let opcode = fragmentOpcode else { return violation(1002, "continuation without a message") }
            guard fragments.count + payload.count <= maxMessageBytes else { return tooLarge() }
            fragments.append(contentsOf: payload)
            guard frame.fin else { return .ignore }
            let message = fragments
            fragments = []
            fragmentOpcode = nil
            return message.withUnsafeBytes { deliver(opcode, .assembled(message), $0) }
        default:
            return violation(1002, "unknown opcode \(frame.opcode)")
        }
    }

    /// The frame decoder gave up on the byte stream: a length beyond the frame limit (refused
    /// from the header, before any allocation) or an undecodable header.
    public mutating func decodingFailed(frameTooLarge: Bool) -> Action {
        frameTooLarge ? violation(1009, "frame larger than \(maxMessageBytes) bytes") : violation(1002, "invalid frame")
    }

    /// We sent a close frame (on purpose, or answering the peer's).
    public mutating func sentClose() {
        if state == .open { state = .closing }
        dropFragments()
    }

    /// TCP is gone: nothing more will be acted on.
    public mutating func connectionEnded() {
        state = .closed
        dropFragments()
    }

    private mutating func control(_ opcode: UInt8, _ payload: UnsafeRawBufferPointer) -> Action {
        switch opcode {
        case Opcode.ping:
            // Once we have sent a close, nothing but a close may follow it (RFC 6455 5.5.1).
            return state == .open ? .replyPong : .ignore
        case Opcode.pong:
            return .receivedPong
        default:
            if state == .closing {
                // Whatever it carries, it completes the handshake we started.
                state = .closed
                return .closeAcknowledged
            }
            switch WebSocketClose.parse(Array(payload)) {
            case .noStatus:
                closeReceived()
                return .peerClosed(code: 1005, reason: "")
            case .status(let code, let reason):
                closeReceived()
                return .peerClosed(code: code, reason: reason)
            case .violation(let code, let message):
                return violation(code, message)
            }
        }
    }

    private mutating func deliver(_ opcode: UInt8, _ message: Message, _ bytes: UnsafeRawBufferPointer) -> Action {
        guard opcode == Opcode.text else { return .deliverBinary(message) }
        guard UTF8Validation.isValid(bytes) else { return violation(1007, "text message is not valid UTF-8") }
        return .deliverText(message)
    }

    private mutating func closeReceived() {
        state = .closed
        dropFragments()
    }

    private mutating func tooLarge() -> Action {
        violation(1009, "message larger than \(maxMessageBytes) bytes")
    }

    /// A violation while open closes with `code`; once closing, we have nothing more to say.
    private mutating func violation(_ code: UInt16, _ reason: String) -> Action {
        guard state == .open else { return .ignore }
        state = .closing
        dropFragments()
        return .close(code: code, reason: reason)
    }

    private mutating func dropFragments() {
        fragmentOpcode = nil
        fragments = []
    }
}
