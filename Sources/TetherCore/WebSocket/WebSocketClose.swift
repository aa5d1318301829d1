/// The payload of a WebSocket close frame (RFC 6455 5.5.1, 7.4), read and written the same way
/// by both ends: tetherd's client and the mock brain's server. (They once drifted: the client
/// took any code and any bytes, and cut its own reasons by Characters, so a non-ASCII reason
/// could pass the 125-byte control frame limit.)
public enum WebSocketClose {
    /// A control frame carries at most 125 bytes: the 2-byte code and up to 123 of reason.
    public static let maxReasonBytes = 123

    public enum Received: Sendable, Equatable {
        /// An empty payload: no status code (reported as 1005, never sent).
        case noStatus
        case status(code: UInt16, reason: String)
        /// A malformed close: answer with `code` (1002 protocol error, 1007 invalid text).
        case violation(code: UInt16, message: String)
    }

    public static func parse(_ payload: [UInt8]) -> Received {
        if payload.isEmpty { return .noStatus }
        guard payload.count >= 2 else { return .violation(code: 1002, message: "close frame with a 1-byte payload") }
        let code = UInt16(payload[0]) << 8 | UInt16(payload[1])
        guard isValidReceivedCode(code) else { return .violation(code: 1002, message: "invalid close code \(code)") }
        guard let reason = String(validating: payload[2...], as: UTF8.self) else {
            return .violation(code: 1007, message: "close reason is not valid UTF-8")
        }
        return .status(code: code, reason: reason)
    }

    /// Codes a peer may put on the wire: 1004, 1005, 1006 and 1015 are reserved (never sent),
    /// 0-999 and 1016-2999 are not in use, 3000-4999 are for libraries and applications.
    public static func isValidReceivedCode(_ code: UInt16) -> Bool {
        switch code {
        case 1000...1003, 1007...1014, 3000...4999: return true
        default: return false
        }
    }

    /// Code and reason for a close frame we send; the reason is cut to `maxReasonBytes` at a
    /// character boundary, so it stays valid UTF-8.
    public static func payload(code: UInt16, reason: String) -> [UInt8] {
        [UInt8(code >> 8), UInt8(code & 0xFF)] + truncatedReason(reason)
    }

    public static func truncatedReason(_ reason: String) -> [UInt8] {
        let bytes = Array(reason.utf8)
        guard bytes.count > maxReasonBytes else { return bytes }
        var end = maxReasonBytes
        // Back off continuation bytes (10xxxxxx): the cut then falls before a scalar's lead byte.
        while end > 0 && bytes[end] & 0xC0 == 0x80 { end -= 1 }
        return Array(bytes[..<end])
    }
}
