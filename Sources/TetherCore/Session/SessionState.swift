/// The session's states, as `status.state` and `session.state` events name them.
public enum SessionState: String, Sendable, Equatable, CaseIterable {
    /// Not started yet.
    case idle
    /// First attempt (or a requested reconnect) under way.
    case connecting
    /// Connected and streaming.
    case live
    /// The link is suspect and we are inside the grace period: audio is buffered, a
    /// reconnect or a probe is under way, and nobody has been told the session is lost.
    case degraded
    /// The session was lost; attempts continue with backoff.
    case reconnecting
    /// The network is down: no attempts are spent until rtnetlink says it is back.
    case offline
    /// Told to pause: no connection, no attempts, mic audio is neither sent nor kept.
    case paused
    /// Shutting down.
    case stopping

    /// Mic audio is kept for replay in these states (from start-up on: the microphone may
    /// open a moment before the first connection attempt).
    public var buffersAudio: Bool {
        switch self {
        case .idle, .connecting, .degraded, .reconnecting, .offline: return true
        case .live, .paused, .stopping: return false
        }
    }
}

/// Why a connection attempt failed or a live connection was lost. The kind decides how we
/// react; the detail is what `status.session.last_error` and the journal say.
public struct ConnectionFailure: Sendable, Equatable, Error, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// The path looks broken (network offline, ping or probe unanswered, timeouts):
        /// a loss inside `link.grace` is a blip.
        case network
        /// The peer or the socket failed while the network looks fine (reset, refused, a
        /// close from the server, a protocol error): retried at once, lost after `failed_grace`.
        case transport
        /// The upstream refused us on purpose (HTTP 401/403, close 1008 or 4xxx): retrying
        /// fast only hammers it, so attempts come no faster than `backoff.max`.
        case refused
        /// The brain closed the session at its maximum duration (the OpenAI Realtime API's
        /// 60-minute cap): a rotation it forced, not a failure. Reconnect at once, seeded,
        /// with the full `link.grace`.
        case expired
    }

    public var kind: Kind
    public var detail: String

    public init(_ kind: Kind, _ detail: String) {
        self.kind = kind
        self.detail = detail
    }

    public var description: String { detail }

    /// How a WebSocket close code from the peer is treated.
    public static func closed(code: UInt16, reason: String) -> ConnectionFailure {
        let detail = reason.isEmpty ? "closed by upstream (\(code))" : "closed by upstream (\(code) \(reason.prefix(120)))"
        if code == 1008 || (4000...4999).contains(code) { return ConnectionFailure(.refused, detail) }
        if code == 1001 && reason.containsText("maximum duration") { return ConnectionFailure(.expired, detail) }
        return ConnectionFailure(.transport, detail)
    }

    /// How an HTTP status on the upgrade request is treated.
    public static func httpStatus(_ status: Int, reason: String) -> ConnectionFailure {
        let detail = "upgrade refused: HTTP \(status)\(reason.isEmpty ? "" : " " + reason.prefix(120))"
        if status == 401 || status == 403 { return ConnectionFailure(.refused, detail) }
        return ConnectionFailure(.transport, detail)
    }
}
