import NIOSSL
import TetherCore

/// What the session needs from the configuration, resolved (TLS context built, credentials
/// located) so that a reload can compare old and new and reconnect only when the upstream
/// really changed.
public struct SessionSettings: Sendable {
    public var upstream: UpstreamConfig
    public var link: LinkConfig
    public var probeTimeout: Duration
    /// PCM rate of uplink and downlink audio.
    public var rate: Int
    /// `audio.playback.max_buffer`: reading from the brain pauses while the speaker holds this much.
    public var playbackMaxBuffer: Duration
    public var tls: NIOSSLContext?
    public var credentials: any UpstreamCredentials
    public var conversation: ConversationConfig

    public init(config: TetherConfig, tls: NIOSSLContext?, credentials: any UpstreamCredentials) {
        upstream = config.upstream
        link = config.link
        probeTimeout = config.network.probeTimeout
        rate = config.audio.capture.rate
        playbackMaxBuffer = config.audio.playback.maxBuffer
        self.tls = tls
        self.credentials = credentials
        conversation = config.conversation
    }

    /// The machine's settings: the link's timing, the rotation schedule for this protocol, and
    /// a rotation's hand-over bounded like a probe.
    var machine: SessionMachine.Settings {
        .init(link: link, rotation: conversation.rotation(for: upstream.protocolKind), handoverTimeout: probeTimeout)
    }

    /// The transcription model openai-realtime sessions are asked for (nil for pcm-stream).
    var transcribe: String? { upstream.protocolKind == .openaiRealtime ? conversation.transcribe : nil }

    /// True when a live session must be replaced to honour the new settings (rule 8: a
    /// reload of the upstream closes the old session at once and starts a fresh one).
    ///
    /// Credentials are deliberately not compared (the key, the key file, `upstream.token`):
    /// they are only presented when a connection is opened, so a rotated key or a new token
    /// endpoint takes effect at the next connection and never tears down a working session.
    public func upstreamDiffers(from other: SessionSettings) -> Bool {
        upstream.url != other.upstream.url || upstream.protocolKind != other.upstream.protocolKind
            || upstream.headers != other.upstream.headers || upstream.session != other.upstream.session
            || upstream.caFile != other.upstream.caFile || rate != other.rate
            || transcribe != other.transcribe
    }
}

/// Where the `Authorization` header comes from: nothing, a static key, or a token endpoint.
/// Asked before every connection attempt; a failure counts as a failed attempt.
public protocol UpstreamCredentials: Sendable {
    func authorization() async -> Result<Secret?, ConnectionFailure>
    /// True when `authorization()` answers at once without I/O (no task hop needed).
    var immediate: Secret?? { get }
    /// The upstream refused what `authorization()` returned (HTTP 401/403 on the upgrade):
    /// a cached token must not be offered again.
    func upstreamRefused()
}

extension UpstreamCredentials {
    public func upstreamRefused() {}
}

public struct StaticCredentials: UpstreamCredentials {
    let key: Secret?
    public init(key: Secret?) { self.key = key }
    public func authorization() async -> Result<Secret?, ConnectionFailure> { .success(key) }
    public var immediate: Secret?? { .some(key) }
}
