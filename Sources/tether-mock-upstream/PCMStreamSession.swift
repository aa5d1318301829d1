import NIOCore
import TetherCore

/// pcm-stream: binary frames of raw PCM16 LE mono at `--rate` both ways, JSON text for control.
///
/// Server to client: `{"type":"speech_started"}`, `{"type":"speech_stopped"}`, `{"type":"clear"}`
/// (flush playback: sent when speech starts while a response may still be playing), response
/// audio as binary frames, then `{"type":"response_done","status":"completed"|"cancelled"}`.
/// Client to server: `hello` (kept apart too: it names the conversation to continue), `say`
/// (answered with a short tone), `interrupt` (stops the response); all are recorded.
final class PCMStreamSession: MockSession {
    private weak var connection: WebSocketConnection?
    private let options: MockOptions
    private var vad: EnergyVAD
    private var streamer: AudioStreamer?
    /// Monotonic time (ns) until which the client is presumably still playing our last response.
    private var playbackEndsAtNs: Int64 = 0

    init(connection: WebSocketConnection) {
        self.connection = connection
        options = connection.state.options
        vad = EnergyVAD(sampleRate: options.sampleRate, thresholdDBFS: options.speechThresholdDBFS,
                        hangoverMs: options.hangoverMs)
    }

    var sessionID: String? { nil }
    var isResponding: Bool { streamer.map { !$0.finished } ?? false }

    private var state: MockState? { connection?.state }

    func start(firstEventDelayMs: Int) {}

    func receivedBinary(_ buffer: ByteBuffer) {
        guard let connection else { return }
        buffer.withUnsafeReadableBytes { bytes in
            connection.receivedPCM(bytes)
            for event in vad.feed(bytes) { handle(event) }
        }
    }

    private func handle(_ event: EnergyVAD.Event) {
        switch event {
        case .started:
            speechStarted()
        case .stopped(_, let utterance):
            state?.stats.speechStopped += 1
            connection?.sendJSON(["type": "speech_stopped"])
            if options.echo && !utterance.isEmpty {
                startResponse(.echo(utterance))
            }
        }
    }

    /// clear (when a response may still be playing, or always when `forceClear`) then
    /// speech_started; stops sending.
    private func speechStarted(forceClear: Bool = false) {
        state?.stats.speechStarted += 1
        if forceClear || isResponding || WallClock.monotonicNanoseconds() < playbackEndsAtNs {
            connection?.sendJSON(["type": "clear"])
            playbackEndsAtNs = 0
        }
        cancelResponse()
        connection?.sendJSON(["type": "speech_started"])
    }

    func receivedEvent(_ event: JSONValue) {
        let type = event["type"]?.stringValue ?? ""
        state?.remember(event: event, connection: connection?.number ?? 0)
        switch type {
        case "hello":
            Log.info("conn \(connection?.number ?? 0): hello \(JSONWriter.string(event))")
            state?.helloReceived(on: connection?.number ?? 0, hello: event)
        case "say":
            let text = event["text"]?.stringValue
            startResponse(.tone(ToneGenerator(sampleRate: options.sampleRate),
                                bytes: ToneGenerator.byteCount(ms: Self.toneMilliseconds(forText: text), sampleRate: options.sampleRate)))
        case "interrupt":
            cancelResponse()
        default:
            state?.stats.unknownEvents += 1
            Log.info("conn \(connection?.number ?? 0): unknown pcm-stream message type '\(type)'")
        }
    }

    func receivedInvalidJSON(_ text: String, error: String) {}

    func injectSpeechStarted() { speechStarted(forceClear: true) }

    func say(ms: Int) {
        startResponse(.tone(ToneGenerator(sampleRate: options.sampleRate),
                            bytes: ToneGenerator.byteCount(ms: ms, sampleRate: options.sampleRate)))
    }

    func say(pcm: [UInt8]) { startResponse(.echo(pcm)) }

    func unknownEventText() -> String { "{\"type\":\"mock.unknown_event\",\"note\":\"a type no client knows\"}" }

    func pause() { streamer?.pause() }
    func resume() { streamer?.resume() }

    func stop() {
        streamer?.cancel()
        streamer = nil
    }

    // MARK: responses

    private func startResponse(_ audio: ResponseAudio) {
        guard let connection else { return }
        cancelResponse()
        state?.stats.responsesStarted += 1
        let durationNs = Int64(Self.milliseconds(ofBytes: audio.byteCount, options)) * 1_000_000
        playbackEndsAtNs = WallClock.monotonicNanoseconds() + durationNs
        let streamer = AudioStreamer(
            audio: audio, chunkBytes: options.chunkBytes, interval: Self.chunkInterval(options), loop: connection.loop,
            onChunk: { [weak self] chunk in
                self?.state?.stats.sentPCMBytes += chunk.count
                self?.connection?.sendBinary(chunk)
            },
            onFinish: { [weak self] in
                guard let self else { return }
                self.state?.stats.responsesCompleted += 1
                self.connection?.sendJSON(["type": "response_done", "status": "completed"])
            })
        self.streamer = streamer
        streamer.start(paused: connection.isStalled)
    }

    private func cancelResponse() {
        guard let streamer, !streamer.finished else { return }
        streamer.cancel()
        self.streamer = nil
        state?.stats.responsesCancelled += 1
        connection?.sendJSON(["type": "response_done", "status": "cancelled"])
    }
}

extension MockState {
    /// pcm-stream control messages are kept (capped) for `GET /mock/status`.
    func remember(event: JSONValue, connection: Int) {
        stats.remember(["connection": .number(Double(connection)), "message": event], in: \.pcmControl)
    }
}
