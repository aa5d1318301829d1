/// The one-line human summary systemd shows in `systemctl status tether` (`STATUS=`), e.g.
/// `live · openai-realtime · rtt 41 ms · buffered 0 ms`.
public struct StatusLine: Sendable, Equatable {
    public var state: SessionState
    public var protocolName: String
    public var rttMs: Int?
    public var bufferedMs: Int
    public var networkOnline: Bool?
    public var muted = false
    public var lastError: String?

    public init(state: SessionState, protocolName: String, rttMs: Int? = nil, bufferedMs: Int = 0,
                networkOnline: Bool? = nil, muted: Bool = false, lastError: String? = nil) {
        self.state = state
        self.protocolName = protocolName
        self.rttMs = rttMs
        self.bufferedMs = bufferedMs
        self.networkOnline = networkOnline
        self.muted = muted
        self.lastError = lastError
    }

    public var text: String {
        var parts = [state.rawValue, protocolName]
        if state == .live, let rttMs { parts.append("rtt \(rttMs) ms") }
        parts.append("buffered \(bufferedMs) ms")
        if networkOnline == false { parts.append("network offline") }
        if muted { parts.append("muted") }
        if state != .live, state != .paused, let lastError, !lastError.isEmpty {
            parts.append(String(lastError.prefix(80)))
        }
        return parts.joined(separator: " · ")
    }
}
