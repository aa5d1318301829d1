import NIOCore
import TetherCore

/// A protocol spoken on one connection (openai-realtime or pcm-stream). The connection hands it
/// whole messages; it answers through the connection. Everything runs on the event loop.
protocol MockSession: AnyObject {
    /// The upstream session id (openai-realtime), if any.
    var sessionID: String? { get }
    /// Whether a response is being streamed right now.
    var isResponding: Bool { get }

    /// The connection is up; send the first server event after `firstEventDelayMs`.
    func start(firstEventDelayMs: Int)
    func receivedEvent(_ event: JSONValue)
    func receivedInvalidJSON(_ text: String, error: String)
    func receivedBinary(_ buffer: ByteBuffer)

    /// The connection stalled / resumed: stop / restart the response clock.
    func pause()
    func resume()
    /// The connection is closing or gone: cancel every timer. Idempotent.
    func stop()

    /// Control endpoint: behave as if the user just started speaking (barge-in).
    func injectSpeechStarted()
    /// Control endpoint: stream `ms` of the test tone as a response now.
    func say(ms: Int)
    /// Control endpoint: stream this PCM (PCM16 LE mono at the mock's rate) as a response now.
    func say(pcm: [UInt8])
    /// A well-formed event of a type the client cannot know, for `POST /mock/garbage`.
    func unknownEventText() -> String
}

extension MockSession {
    /// The pacing of response chunks: `chunkMs / speed`, or nil (all at once) for speed 0.
    static func chunkInterval(_ options: MockOptions) -> TimeAmount? {
        guard options.responseSpeed > 0 else { return nil }
        return .nanoseconds(Int64(Double(options.chunkMs) * 1_000_000 / options.responseSpeed))
    }

    /// Milliseconds of PCM16 mono `bytes` at the mock's rate.
    static func milliseconds(ofBytes bytes: Int, _ options: MockOptions) -> Int {
        bytes / 2 * 1000 / max(1, options.sampleRate)
    }

    /// The length of the tone that answers a text prompt: 500 ms plus 20 ms a character, at most 3 s.
    static func toneMilliseconds(forText text: String?) -> Int {
        min(3000, 500 + 20 * (text?.count ?? 0))
    }
}
