/// Everything the command line decides, checked and ready for the server.
struct MockOptions: Sendable {
    var host = "127.0.0.1"
    var port = 8765
    var recordDirectory: String?
    var apiKey: String?
    var sampleRate = 24000
    var seed: UInt64 = 1
    var echo = true
    var speechThresholdDBFS = -45.0
    var hangoverMs = 500
    /// How many times faster than real time responses are sent; 0 sends them at once.
    var responseSpeed = 4.0
    var chunkMs = 100
    /// openai-realtime sessions end after this many seconds, as the real API's do after 60
    /// minutes; nil: never.
    var maxSessionSeconds: Double?

    // Faults in force from the start (the same knobs as the control endpoint).
    var refuseAuth = 0
    var slowHandshakeMs = 0
    var slowHandshakePhase = HandshakePhase.upgrade
    var dropAfterMs: Int?
    var stallAfterMs: Int?
    var flapSeconds: Double?

    var verbose = false
    var quiet = false

    /// Bytes of PCM16 mono per chunk of response audio.
    var chunkBytes: Int { sampleRate * chunkMs / 1000 * 2 }
}

/// Which part of the handshake a slow-handshake delays: the HTTP 101 answer, or (openai-realtime)
/// the first server event, `session.created`.
enum HandshakePhase: String, Sendable {
    case upgrade
    case session
}

/// The two upstream protocols, chosen by the upgrade path.
enum UpstreamProtocol: String, Sendable {
    case openAIRealtime = "openai-realtime"
    case pcmStream = "pcm-stream"

    /// `/v1/realtime` (any query) or `/pcm`; nil for anything else.
    init?(path: String) {
        switch path {
        case "/v1/realtime", "/v1/realtime/": self = .openAIRealtime
        case "/pcm", "/pcm/": self = .pcmStream
        default: return nil
        }
    }
}
