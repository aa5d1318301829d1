import Logging

/// Everything `tetherd` can be told in `tether.yaml`. Defaults here are the defaults of the
/// product: `config/tether.yaml` documents the same values and a test keeps the two in step.
public struct TetherConfig: Sendable, Equatable {
    public var upstream = UpstreamConfig()
    public var link = LinkConfig()
    public var audio = AudioConfig()
    public var conversation = ConversationConfig()
    public var network = NetworkConfig()
    public var control = ControlConfig()
    public var log = LogConfig()

    public init() {}
}

public enum UpstreamProtocol: String, Sendable, Equatable, CaseIterable {
    case openaiRealtime = "openai-realtime"
    case pcmStream = "pcm-stream"

    /// Whether the brain can call robot tools (`tool.call` / `tool-result`).
    public var supportsTools: Bool { self == .openaiRealtime }
}

public struct UpstreamConfig: Sendable, Equatable {
    public static let defaultAPIKeyFile = "/etc/tether/api-key"

    public var url = UpstreamURL.parse("wss://api.openai.com/v1/realtime?model=gpt-realtime")!
    public var protocolKind: UpstreamProtocol = .openaiRealtime
    /// nil: no key file (explicit `null`). The default path may be absent; an explicitly
    /// configured one must be readable.
    public var apiKeyFile: String? = UpstreamConfig.defaultAPIKeyFile
    public var apiKeyFileIsExplicit = false
    public var headers: [HTTPHeader] = []
    public var caFile: String?
    public var connectTimeout: Duration = .seconds(10)
    public var handshakeTimeout: Duration = .seconds(10)
    public var pingInterval: Duration = .seconds(3)
    public var toolTimeout: Duration = .seconds(10)
    /// Largest WebSocket message accepted from the upstream; larger ones close with 1009.
    public var maxFrameBytes: Int = 4 << 20
    public var token: TokenConfig?
    public var session: JSONObject = [:]

    public init() {}
}

public struct HTTPHeader: Sendable, Equatable {
    public var name: String
    public var value: String
    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

public struct TokenConfig: Sendable, Equatable {
    public enum Method: String, Sendable, Equatable { case get = "GET", post = "POST" }
    public var url: String
    public var method: Method = .post
    public var credentialFile: String?
    public var headers: [HTTPHeader] = []
    public var body: String?
    public var field = "value"
    public var expiresField = "expires_at"
    public var refreshBefore: Duration = .seconds(60)
    public var connectTimeout: Duration = .seconds(5)
    public var timeout: Duration = .seconds(10)

    public init(url: String) { self.url = url }
}

public struct LinkConfig: Sendable, Equatable {
    public var grace: Duration = .seconds(3)
    public var failedGrace: Duration = .seconds(1)
    public var backoff = BackoffConfig()
    public var buffer = BufferConfig()
    public init() {}
}

public struct BackoffConfig: Sendable, Equatable {
    public var initial: Duration = .milliseconds(500)
    public var max: Duration = .seconds(30)
    public var multiplier: Double = 2
    public var jitter: Double = 0.2
    public init() {}
}

public struct BufferConfig: Sendable, Equatable {
    public var maxAge: Duration = .seconds(30)
    public var maxBytes: Int = 1_440_000
    public var replay = true
    public init() {}
}

/// How tetherd keeps the robot from hearing itself (README "Echo"): `cancel` subtracts what
/// the speaker played from the microphone (speexdsp, compiled in); `gate` silences
/// the microphone while the speaker plays (no barge-in by voice); `none` for boards with
/// hardware echo cancellation or headphones.
public enum EchoMode: String, Sendable, Equatable, CaseIterable {
    case cancel
    case gate
    case none
}

/// speexdsp's noise suppression on the microphone in `cancel` mode. Off by default: with it
/// off, the microphone reaches the brain untouched whenever the speaker is silent.
public enum NoiseSuppression: String, Sendable, Equatable, CaseIterable {
    case off
    case low
    case high

    /// The attenuation speex_preprocess may apply to noise (SPEEX_PREPROCESS_SET_NOISE_SUPPRESS, dB).
    public var suppressDB: Int? {
        switch self {
        case .off: nil
        case .low: -15
        case .high: -30
        }
    }
}

public struct AudioDeviceConfig: Sendable, Equatable {
    public var device = "default"
    public var rate = 24_000
    public var channels = 1
    public var period: Duration = .milliseconds(20)
    public init() {}

    public var framesPerPeriod: Int { Int(Int64(rate) * period.nanoseconds / 1_000_000_000) }
    public var bytesPerFrame: Int { 2 * channels }
}

public struct PlaybackDeviceConfig: Sendable, Equatable {
    public var device = AudioDeviceConfig()
    public var prebuffer: Duration = .milliseconds(60)
    /// Reply audio queued for the speaker beyond this makes tetherd stop reading the brain's
    /// socket until the speaker has played it down (see `DownlinkFlow`).
    public var maxBuffer: Duration = .seconds(120)
    public init() {}
}

public struct AudioConfig: Sendable, Equatable {
    public var capture = AudioDeviceConfig()
    public var playback = PlaybackDeviceConfig()
    /// `cancel` by default since it met its figures (#15, docs/BENCHMARKS.md): barge-in by voice
    /// on a plain mic next to a speaker. `gate` for boards short of CPU, `none` for hardware AEC.
    public var echo: EchoMode = .cancel
    /// `gate`: how long the gate stays closed after the speaker falls silent (room reverb).
    /// `cancel`: the canceller's filter length, the longest echo path (reverb) it models.
    public var echoTail: Duration = .milliseconds(200)
    /// `cancel`: acoustic delay beyond what the devices report (a plugin chain or a
    /// Bluetooth/USB speaker that buffers more than it says); the canceller searches from here.
    public var echoDelay: Duration = .zero
    public var noiseSuppression: NoiseSuppression = .off
    public var volume = 80
    public init() {}
}

/// The conversation carried across upstream sessions (rule 13).
public struct ConversationConfig: Sendable, Equatable {
    public var carry = true
    public var maxItems = 24
    public var maxChars = 8000
    public var maxAge: Duration = .seconds(15 * 60)
    /// nil: never rotate. As configured; see `rotation(for:)` for what applies.
    public var rotateAfter: Duration? = .seconds(55 * 60)
    public var rotateDeadline: Duration = .seconds(59 * 60)
    /// Whether `rotate_after` was written in the file (pcm-stream rotates only then).
    public var rotateAfterIsExplicit = false
    /// The transcription model put into openai-realtime's `session.update`; nil: none, and
    /// the person's turns are not carried.
    public var transcribe: String? = "gpt-4o-mini-transcribe"
    public init() {}

    /// The rotation schedule in force for `kind`: openai-realtime rotates by default (the
    /// brain closes every session at 60 minutes); pcm-stream only when `rotate_after` is set.
    public func rotation(for kind: UpstreamProtocol) -> RotationSchedule? {
        guard let after = rotateAfter, kind == .openaiRealtime || rotateAfterIsExplicit else { return nil }
        return RotationSchedule(after: after, deadline: rotateDeadline)
    }

    public var ledgerLimits: ConversationLedger.Limits {
        .init(carry: carry, maxItems: maxItems, maxChars: maxChars, maxAge: maxAge)
    }
}

public struct NetworkConfig: Sendable, Equatable {
    public var watch = true
    public var ignoreInterfaces = ["lo"]
    public var debounce: Duration = .milliseconds(250)
    public var probeTimeout: Duration = .seconds(2)
    public init() {}
}

public struct ControlConfig: Sendable, Equatable {
    public var socket = "/run/tether/control.sock"
    public var group: String? = "tether"
    public var mode: UInt32 = 0o660
    public init() {}
}

public enum LogTarget: String, Sendable, Equatable, CaseIterable {
    case auto, journal, stderr
}

public struct LogConfig: Sendable, Equatable {
    public var level: Logger.Level = .info
    public var target: LogTarget = .auto
    public init() {}
}

/// A parsed `ws://` or `wss://` URL: all the transport needs to dial and upgrade.
public struct UpstreamURL: Sendable, Equatable, CustomStringConvertible {
    public var secure: Bool
    public var host: String
    public var port: Int
    /// Path and query, as sent on the request line.
    public var target: String

    public static func parse(_ text: String) -> UpstreamURL? {
        let secure: Bool
        var rest: Substring
        if text.hasPrefix("wss://") {
            secure = true
            rest = text.dropFirst(6)
        } else if text.hasPrefix("ws://") {
            secure = false
            rest = text.dropFirst(5)
        } else {
            return nil
        }
        let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        var target = String(rest[authorityEnd...])
        if target.isEmpty { target = "/" } else if target.hasPrefix("?") { target = "/" + target }
        rest = authority
        guard !rest.contains("@"), !rest.isEmpty else { return nil }
        var host: Substring
        var port = secure ? 443 : 80
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { return nil }
            host = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":"), let p = Int(after.dropFirst()), (1...65535).contains(p) else { return nil }
                port = p
            }
        } else if let colon = rest.lastIndex(of: ":") {
            host = rest[..<colon]
            guard let p = Int(rest[rest.index(after: colon)...]), (1...65535).contains(p) else { return nil }
            port = p
        } else {
            host = rest
        }
        guard !host.isEmpty, !target.contains(" ") else { return nil }
        return UpstreamURL(secure: secure, host: String(host), port: port, target: target)
    }

    public var description: String {
        "\(secure ? "wss" : "ws")://\(hostHeader)\(target)"
    }

    /// The authority as the Host header carries it (RFC 7230 5.4): an IPv6 literal in
    /// brackets, the port only when it is not the scheme's default.
    public var hostHeader: String {
        let hostPart = host.contains(":") ? "[\(host)]" : host
        return port == (secure ? 443 : 80) ? hostPart : "\(hostPart):\(port)"
    }
}
