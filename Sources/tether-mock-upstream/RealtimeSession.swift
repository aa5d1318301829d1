import NIOCore
import TetherCore

/// The openai-realtime subset (GA event names, shapes as in the `openai` Python package's
/// `types/realtime`).
///
/// Server VAD is an energy detector on the appended audio; when speech stops the utterance is
/// committed and (with echo on) answered by a response that streams it back. `response.create`
/// answers with the committed audio (manual turns) or a short tone (after a text item).
/// Unknown or malformed client events get an `error` event and the connection stays up.
///
/// For conversation continuity it transcribes, deterministically (`MockTranscript`): user turns
/// when the session asks for input transcription, and every audio response; and, with a
/// session cap, it ends the session the way the real API does after 60 minutes.
final class RealtimeSession: MockSession {
    private weak var connection: WebSocketConnection?
    private let options: MockOptions
    let sessionID: String?
    private let conversationID: String
    private var session: JSONObject
    private var vad: EnergyVAD

    /// Audio appended while turn detection is off, waiting for a commit.
    private var manualBuffer: [UInt8] = []
    /// A committed user turn (manual commit) not yet answered by a response.
    private var pendingUserAudio: [UInt8]?
    /// The text of the last user text item, for the next response.create.
    private var pendingText: String?
    /// The user item announced by speech_started.
    private var speechItemID: String?
    private var lastItemID: String?
    private var response: ActiveResponse?
    /// Assistant audio items by id with their length in ms, for truncate (last 64).
    private var assistantItems: [(id: String, ms: Int)] = []
    private var firstEventTimer: Scheduled<Void>?
    private var started = false
    /// Fixed when the connection opens: a cap set later applies to later connections only.
    private let cap: SessionCap?

    private struct ActiveResponse {
        var id: String
        var itemID: String
        var streamer: AudioStreamer
        var audioMs: Int
        var transcript: MockTranscript
        /// Transcript words sent so far in `response.output_audio_transcript.delta` events.
        var wordsSent = 0
    }

    init(connection: WebSocketConnection) {
        self.connection = connection
        options = connection.state.options
        sessionID = "sess_mock_\(connection.number)"
        conversationID = "conv_mock_\(connection.number)"
        vad = EnergyVAD(sampleRate: options.sampleRate, thresholdDBFS: options.speechThresholdDBFS,
                        hangoverMs: options.hangoverMs)
        let model = RequestTarget(connection.path).query["model"] ?? "gpt-realtime"
        session = Self.defaultSession(id: sessionID!, model: model, options: options)
        cap = connection.state.sessionCap
        if let cap { session["expires_at"] = .number(Double(cap.expiresAt(openedAt: WallClock.unixSeconds()))) }
    }

    var isResponding: Bool { response != nil }
    private var state: MockState? { connection?.state }

    // MARK: session configuration

    static func defaultSession(id: String, model: String, options: MockOptions) -> JSONObject {
        let format: JSONValue = ["type": "audio/pcm", "rate": .number(Double(options.sampleRate))]
        return [
            "type": "realtime", "object": "realtime.session", "id": .string(id), "model": .string(model),
            "output_modalities": ["audio"], "instructions": "You are tether-mock-upstream: you echo what you hear.",
            "tools": [], "tool_choice": "auto", "max_output_tokens": "inf", "tracing": nil, "truncation": "auto",
            "prompt": nil, "expires_at": 0, "include": nil,
            "audio": [
                "input": [
                    "format": format, "transcription": nil, "noise_reduction": nil,
                    "turn_detection": [
                        "type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 0,
                        "silence_duration_ms": .number(Double(options.hangoverMs)), "create_response": true,
                        "interrupt_response": true, "idle_timeout_ms": nil,
                    ],
                ],
                "output": ["format": format, "voice": "marin", "speed": 1.0],
            ],
        ]
    }

    private var turnDetection: JSONObject? { session["audio"]?["input"]?["turn_detection"]?.objectValue }
    private var vadEnabled: Bool { turnDetection != nil }
    private var createResponse: Bool { turnDetection?["create_response"]?.boolValue ?? true }
    private var interruptResponse: Bool { turnDetection?["interrupt_response"]?.boolValue ?? true }
    /// Input transcription is on when `audio.input.transcription` is an object (GA API; null by
    /// default, as on the real server).
    private var transcribesInput: Bool { session["audio"]?["input"]?["transcription"]?.objectValue != nil }

    // MARK: lifecycle

    func start(firstEventDelayMs: Int) {
        guard let connection else { return }
        if let cap {
            // Counted from the connection's open, as expires_at is.
            connection.schedule(afterMs: cap.milliseconds) { [weak self] in self?.expire(cap) }
        }
        if firstEventDelayMs > 0 {
            firstEventTimer = connection.loop.assumeIsolated().scheduleTask(in: .milliseconds(Int64(firstEventDelayMs))) {
                [weak self] in self?.sendSessionCreated()
            }
        } else {
            sendSessionCreated()
        }
    }

    private func sendSessionCreated() {
        firstEventTimer = nil
        started = true
        send("session.created", ["session": .object(session)])
    }

    func pause() { response?.streamer.pause() }
    func resume() { response?.streamer.resume() }

    func stop() {
        firstEventTimer?.cancel()
        firstEventTimer = nil
        if let active = response {
            // The connection ends mid-response: the client holds only the transcript deltas.
            active.streamer.cancel()
            state?.transcriptSent(on: connection?.number ?? 0, role: "assistant", itemID: active.itemID,
                                  responseID: active.id, text: active.transcript.text(to: active.wordsSent),
                                  audioMs: Self.milliseconds(ofBytes: active.streamer.sentBytes, options),
                                  cancelled: true, doneSent: false)
        }
        response = nil
    }

    /// The session cap is reached: the real server's `session_expired` error, then close 1001
    /// with the same words.
    private func expire(_ cap: SessionCap) {
        guard let connection, connection.isOpen else { return }
        state?.stats.sessionsExpired += 1
        Log.info("conn \(connection.number): session expired after \(cap.durationText)")
        sendError(cap.message, code: "session_expired")
        connection.sendClose(code: 1001, reason: cap.message)
    }

    // MARK: sending

    private func send(_ type: String, _ fields: JSONObject = JSONObject()) {
        guard let connection, let state else { return }
        var event: JSONObject = ["type": .string(type), "event_id": .string(state.nextEventID())]
        for (key, value) in fields { event[key] = value }
        connection.sendJSON(event)
    }

    private func sendError(_ message: String, code: String?, param: String? = nil, clientEvent: JSONValue? = nil) {
        state?.stats.errorsSent += 1
        send("error", ["error": [
            "type": "invalid_request_error", "code": JSONValue(code), "message": .string(message),
            "param": JSONValue(param), "event_id": JSONValue(clientEvent?["event_id"]?.stringValue),
        ]])
    }

    // MARK: client events

    func receivedInvalidJSON(_ text: String, error: String) {
        sendError("We could not parse the JSON body of your request. (\(error))", code: "invalid_json")
    }

    func receivedBinary(_ buffer: ByteBuffer) {
        sendError("Binary frames are not supported; send input_audio_buffer.append with base64 audio.",
                  code: "invalid_request_error")
    }

    func receivedEvent(_ event: JSONValue) {
        guard case .object(let object) = event else {
            return sendError("The event must be a JSON object.", code: "invalid_event", clientEvent: event)
        }
        guard let type = object["type"]?.stringValue else {
            return sendError("Missing required parameter: 'type'.", code: "missing_required_parameter", param: "type",
                             clientEvent: event)
        }
        switch type {
        case "session.update": sessionUpdate(object, event)
        case "input_audio_buffer.append": append(object, event)
        case "input_audio_buffer.commit": commit(event)
        case "input_audio_buffer.clear":
            vad.clear()
            manualBuffer.removeAll()
            send("input_audio_buffer.cleared")
        case "conversation.item.create": itemCreate(object, event)
        case "response.create": responseCreate(object, event)
        case "response.cancel":
            if response != nil {
                cancelResponse(reason: "client_cancelled")
            } else {
                sendError("Cancellation failed: no active response found.", code: "response_cancel_not_active",
                          clientEvent: event)
            }
        case "conversation.item.truncate": truncate(object, event)
        default:
            state?.stats.unknownEvents += 1
            sendError("Invalid value: '\(type)'. This mock supports session.update, input_audio_buffer.append/commit/clear, "
                      + "conversation.item.create/truncate, response.create/cancel.",
                      code: "invalid_value", param: "type", clientEvent: event)
        }
    }

    private func sessionUpdate(_ object: JSONObject, _ event: JSONValue) {
        guard let update = object["session"]?.objectValue else {
            return sendError("Missing required parameter: 'session'.", code: "missing_required_parameter",
                             param: "session", clientEvent: event)
        }
        guard let kind = update["type"]?.stringValue else {
            return sendError("Missing required parameter: 'session.type'.", code: "missing_required_parameter",
                             param: "session.type", clientEvent: event)
        }
        guard kind == "realtime" else {
            return sendError("Invalid value: '\(kind)'. This mock supports only 'realtime' sessions.",
                             code: "invalid_value", param: "session.type", clientEvent: event)
        }
        var merged = session.merging(update)
        // turn_detection: null switches server VAD off; merging keeps the explicit null.
        if case .object(let audio)? = update["audio"], case .object(let input)? = audio["input"],
            let detection = input["turn_detection"], detection.isNull
        {
            var mergedAudio = merged["audio"]?.objectValue ?? JSONObject()
            var mergedInput = mergedAudio["input"]?.objectValue ?? JSONObject()
            mergedInput["turn_detection"] = .null
            mergedAudio["input"] = .object(mergedInput)
            merged["audio"] = .object(mergedAudio)
        }
        merged["id"] = .string(sessionID ?? "")
        merged["object"] = "realtime.session"
        merged["expires_at"] = session["expires_at"] ?? 0
        session = merged
        if let silence = turnDetection?["silence_duration_ms"]?.intValue, silence > 0 { vad.setHangover(ms: silence) }
        if !vadEnabled && vad.inSpeech { _ = vad.takeUtterance() }
        send("session.updated", ["session": .object(session)])
    }

    private func append(_ object: JSONObject, _ event: JSONValue) {
        guard let connection else { return }
        guard case .string(var audio)? = object["audio"] else {
            return sendError("Missing required parameter: 'audio'.", code: "missing_required_parameter",
                             param: "audio", clientEvent: event)
        }
        var decoded: [UInt8] = []
        let ok = audio.withUTF8 { Base64.decode(UnsafeRawBufferPointer($0), into: &decoded) }
        guard ok else {
            return sendError("Invalid 'audio'. Expected base64-encoded audio bytes.", code: "invalid_value",
                             param: "audio", clientEvent: event)
        }
        decoded.withUnsafeBytes { bytes in
            connection.receivedPCM(bytes)
            if vadEnabled {
                for vadEvent in vad.feed(bytes) { handle(vadEvent) }
            } else {
                let cap = options.sampleRate * 2 * 120
                if manualBuffer.count < cap { manualBuffer.append(contentsOf: bytes.prefix(cap - manualBuffer.count)) }
                _ = vad.feed(bytes)  // keeps stream time (audio_start_ms) in step
            }
        }
    }

    private func commit(_ event: JSONValue) {
        let audio = vadEnabled ? vad.takeUtterance() : manualBuffer
        manualBuffer.removeAll()
        guard Self.milliseconds(ofBytes: audio.count, options) >= 100 else {
            return sendError("Error committing input audio buffer: buffer too small. Expected at least 100ms of audio, "
                             + "but buffer only has \(Self.milliseconds(ofBytes: audio.count, options))ms of audio.",
                             code: "input_audio_buffer_commit_empty", clientEvent: event)
        }
        let itemID = speechItemID ?? state?.nextID("item") ?? "item_mock"
        speechItemID = nil
        commitUserAudio(itemID: itemID, audioMs: Self.milliseconds(ofBytes: audio.count, options))
        pendingUserAudio = audio
    }

    /// input_audio_buffer.committed and the user item it becomes, then its transcript (when
    /// transcription is on) of `audioMs` of speech.
    private func commitUserAudio(itemID: String, audioMs: Int) {
        send("input_audio_buffer.committed", ["previous_item_id": JSONValue(lastItemID), "item_id": .string(itemID)])
        let item: JSONValue = [
            "id": .string(itemID), "object": "realtime.item", "type": "message", "status": "completed", "role": "user",
            "content": [["type": "input_audio", "transcript": nil]],
        ]
        send("conversation.item.added", ["previous_item_id": JSONValue(lastItemID), "item": item])
        send("conversation.item.done", ["previous_item_id": JSONValue(lastItemID), "item": item])
        lastItemID = itemID
        if transcribesInput { transcribeUserAudio(itemID: itemID, audioMs: audioMs) }
    }

    /// The user turn's transcript, right after its item is done: one delta with all of it, then
    /// `completed` (GA shapes, usage by duration as for whisper-1).
    private func transcribeUserAudio(itemID: String, audioMs: Int) {
        guard let state else { return }
        let text = MockTranscript(prefix: state.nextUserTranscriptPrefix(), audioMs: audioMs).fullText
        send("conversation.item.input_audio_transcription.delta", [
            "item_id": .string(itemID), "content_index": 0, "delta": .string(text),
        ])
        send("conversation.item.input_audio_transcription.completed", [
            "item_id": .string(itemID), "content_index": 0, "transcript": .string(text),
            "usage": ["type": "duration", "seconds": .number(Double(audioMs) / 1000)],
        ])
        state.transcriptSent(on: connection?.number ?? 0, role: "user", itemID: itemID, text: text, audioMs: audioMs)
    }

    private func itemCreate(_ object: JSONObject, _ event: JSONValue) {
        // Recorded before any check: a test wants to see exactly what the client seeded.
        if let connection { state?.itemCreated(on: connection, event: object) }
        guard var item = object["item"]?.objectValue else {
            return sendError("Missing required parameter: 'item'.", code: "missing_required_parameter",
                             param: "item", clientEvent: event)
        }
        guard let itemType = item["type"]?.stringValue else {
            return sendError("Missing required parameter: 'item.type'.", code: "missing_required_parameter",
                             param: "item.type", clientEvent: event)
        }
        let itemID = item["id"]?.stringValue ?? state?.nextID("item") ?? "item_mock"
        switch itemType {
        case "function_call_output":
            guard let callID = item["call_id"]?.stringValue else {
                return sendError("Missing required parameter: 'item.call_id'.", code: "missing_required_parameter",
                                 param: "item.call_id", clientEvent: event)
            }
            let output = item["output"]?.stringValue ?? ""
            state?.functionCallOutput(callID: callID, output: output)
            Log.info("conn \(connection?.number ?? 0): function_call_output for \(callID): \(output.prefix(200))")
        case "message":
            let texts = (item["content"]?.arrayValue ?? []).compactMap { $0["text"]?.stringValue }
            if !texts.isEmpty { pendingText = texts.joined(separator: " ") }
        default:
            break
        }
        item["id"] = .string(itemID)
        item["object"] = "realtime.item"
        if item["status"] == nil { item["status"] = "completed" }
        // Audio content is never echoed back in item events.
        if case .array(let content)? = item["content"] {
            item["content"] = .array(content.map { part in
                guard case .object(var p) = part, p["audio"] != nil else { return part }
                p["audio"] = nil
                return .object(p)
            })
        }
        let previous = object["previous_item_id"]?.stringValue.map(JSONValue.string) ?? JSONValue(lastItemID)
        send("conversation.item.added", ["previous_item_id": previous, "item": .object(item)])
        send("conversation.item.done", ["previous_item_id": previous, "item": .object(item)])
        lastItemID = itemID
    }

    private func responseCreate(_ object: JSONObject, _ event: JSONValue) {
        guard response == nil else {
            return sendError("Conversation already has an active response in progress: \(response!.id). "
                             + "Wait until the response is finished before creating a new one.",
                             code: "conversation_already_has_active_response", clientEvent: event)
        }
        if let heard = pendingUserAudio, options.echo {
            startResponse(.echo(heard))
        } else {
            let text = pendingText ?? object["response"]?["instructions"]?.stringValue
            startResponse(toneFor(ms: Self.toneMilliseconds(forText: text)))
        }
        pendingUserAudio = nil
        pendingText = nil
    }

    private func truncate(_ object: JSONObject, _ event: JSONValue) {
        guard let itemID = object["item_id"]?.stringValue, let endMs = object["audio_end_ms"]?.intValue else {
            return sendError("Missing required parameter: 'item_id' and 'audio_end_ms' are required.",
                             code: "missing_required_parameter", param: "item_id", clientEvent: event)
        }
        let contentIndex = object["content_index"]?.intValue ?? 0
        guard let item = assistantItems.last(where: { $0.id == itemID }) else {
            return sendError("Invalid 'item_id': no assistant audio item with id '\(itemID)'.",
                             code: "item_truncate_invalid_item_id", param: "item_id", clientEvent: event)
        }
        guard endMs >= 0, endMs <= item.ms else {
            return sendError("Audio content of \(item.ms)ms is shorter than \(endMs)ms.",
                             code: "invalid_value", param: "audio_end_ms", clientEvent: event)
        }
        state?.stats.remember(["connection": .number(Double(connection?.number ?? 0)), "item_id": .string(itemID),
                               "audio_end_ms": .number(Double(endMs)), "item_ms": .number(Double(item.ms))],
                              in: \.truncations)
        send("conversation.item.truncated", ["item_id": .string(itemID), "content_index": .number(Double(contentIndex)),
                                            "audio_end_ms": .number(Double(endMs))])
    }

    // MARK: speech

    private func handle(_ event: EnergyVAD.Event) {
        switch event {
        case .started(let startMs):
            announceSpeechStarted(atMs: startMs)
        case .stopped(let endMs, let utterance):
            let itemID = speechItemID ?? state?.nextID("item") ?? "item_mock"
            speechItemID = nil
            state?.stats.speechStopped += 1
            send("input_audio_buffer.speech_stopped", ["audio_end_ms": .number(Double(endMs)), "item_id": .string(itemID)])
            commitUserAudio(itemID: itemID, audioMs: Self.milliseconds(ofBytes: utterance.count, options))
            if options.echo && createResponse && !utterance.isEmpty {
                if response != nil { cancelResponse(reason: "turn_detected") }
                startResponse(.echo(utterance))
            }
        }
    }

    private func announceSpeechStarted(atMs startMs: Int) {
        let itemID = state?.nextID("item") ?? "item_mock"
        speechItemID = itemID
        state?.stats.speechStarted += 1
        send("input_audio_buffer.speech_started", ["audio_start_ms": .number(Double(startMs)), "item_id": .string(itemID)])
        if response != nil && interruptResponse { cancelResponse(reason: "turn_detected") }
    }

    func injectSpeechStarted() {
        guard started else { return }
        announceSpeechStarted(atMs: vad.streamMs)
    }

    // MARK: responses

    private func toneFor(ms: Int) -> ResponseAudio {
        .tone(ToneGenerator(sampleRate: options.sampleRate), bytes: ToneGenerator.byteCount(ms: ms, sampleRate: options.sampleRate))
    }

    func say(ms: Int) {
        guard started else { return }
        if response != nil { cancelResponse(reason: "client_cancelled") }
        startResponse(toneFor(ms: ms))
    }

    func say(pcm: [UInt8]) {
        guard started else { return }
        if response != nil { cancelResponse(reason: "client_cancelled") }
        startResponse(.echo(pcm))
    }

    private func responseObject(id: String, status: String, reason: String?, output: [JSONValue]) -> JSONValue {
        let details: JSONValue = status == "in_progress" ? nil : ["type": .string(status), "reason": JSONValue(reason), "error": nil]
        let usage: JSONValue = status == "in_progress" ? nil : [
            "total_tokens": 0, "input_tokens": 0, "output_tokens": 0,
            "input_token_details": ["text_tokens": 0, "audio_tokens": 0, "cached_tokens": 0],
            "output_token_details": ["text_tokens": 0, "audio_tokens": 0],
        ]
        return [
            "object": "realtime.response", "id": .string(id), "status": .string(status), "status_details": details,
            "output": .array(output), "conversation_id": .string(conversationID), "output_modalities": ["audio"],
            "max_output_tokens": "inf",
            "audio": ["output": ["format": ["type": "audio/pcm", "rate": .number(Double(options.sampleRate))], "voice": "marin"]],
            "usage": usage, "metadata": nil,
        ]
    }

    /// `transcript` nil: the item as announced, before it has content.
    private func assistantItem(id: String, status: String, transcript: String?) -> JSONValue {
        [
            "id": .string(id), "object": "realtime.item", "type": "message", "status": .string(status), "role": "assistant",
            "content": transcript.map { [["type": "output_audio", "transcript": .string($0)]] } ?? [],
        ]
    }

    private func startResponse(_ audio: ResponseAudio) {
        guard let connection, let state else { return }
        let responseID = state.nextID("resp")
        let itemID = state.nextID("item")
        let audioMs = Self.milliseconds(ofBytes: audio.byteCount, options)
        let transcript = MockTranscript(prefix: state.nextAudioResponsePrefix(), audioMs: audioMs)
        state.stats.responsesStarted += 1
        send("response.created", ["response": responseObject(id: responseID, status: "in_progress", reason: nil, output: [])])
        let item = assistantItem(id: itemID, status: "in_progress", transcript: nil)
        send("response.output_item.added", ["response_id": .string(responseID), "output_index": 0, "item": item])
        send("conversation.item.added", ["previous_item_id": JSONValue(lastItemID), "item": item])
        lastItemID = itemID
        send("response.content_part.added", [
            "response_id": .string(responseID), "item_id": .string(itemID), "output_index": 0, "content_index": 0,
            "part": ["type": "audio", "transcript": ""],
        ])
        assistantItems.append((itemID, audioMs))
        if assistantItems.count > 64 { assistantItems.removeFirst() }

        let streamer = AudioStreamer(
            audio: audio, chunkBytes: options.chunkBytes, interval: Self.chunkInterval(options), loop: connection.loop,
            onChunk: { [weak self] chunk in
                guard let self else { return }
                self.state?.stats.sentPCMBytes += chunk.count
                self.send("response.output_audio.delta", [
                    "response_id": .string(responseID), "item_id": .string(itemID), "output_index": 0, "content_index": 0,
                    "delta": .string(Base64.encode(chunk)),
                ])
                self.sendTranscriptDelta()
            },
            onFinish: { [weak self] in self?.finishResponse(status: "completed", reason: nil) })
        response = ActiveResponse(id: responseID, itemID: itemID, streamer: streamer, audioMs: audioMs,
                                  transcript: transcript)
        streamer.start(paused: connection.isStalled)
    }

    /// The transcript words of the audio sent so far that the client does not have yet, as one
    /// `response.output_audio_transcript.delta` (none when a chunk completes no new word).
    private func sendTranscriptDelta() {
        guard let active = response else { return }
        let words = active.transcript.wordCount(spokenMs: Self.milliseconds(ofBytes: active.streamer.sentBytes, options))
        guard words > active.wordsSent else { return }
        response?.wordsSent = words
        send("response.output_audio_transcript.delta", [
            "response_id": .string(active.id), "item_id": .string(active.itemID), "output_index": 0, "content_index": 0,
            "delta": .string(active.transcript.text(from: active.wordsSent, to: words, leadingSpace: true)),
        ])
    }

    private func cancelResponse(reason: String) {
        guard let active = response else { return }
        active.streamer.cancel()
        finishResponse(status: "cancelled", reason: reason)
    }

    /// The closing events of the active response: transcript done, audio done, part done, item
    /// done, response done. The transcript covers the audio sent: all of it, or (cancelled) the
    /// part that went out.
    private func finishResponse(status: String, reason: String?) {
        sendTranscriptDelta()
        guard let active = response else { return }
        response = nil
        if status == "completed" { state?.stats.responsesCompleted += 1 } else { state?.stats.responsesCancelled += 1 }
        let sentMs = Self.milliseconds(ofBytes: active.streamer.sentBytes, options)
        let transcript = active.transcript.text(to: active.wordsSent)
        let ids: JSONObject = ["response_id": .string(active.id), "item_id": .string(active.itemID), "output_index": 0,
                               "content_index": 0]
        var transcriptDone = ids
        transcriptDone["transcript"] = .string(transcript)
        send("response.output_audio_transcript.done", transcriptDone)
        send("response.output_audio.done", ids)
        var partDone = ids
        partDone["part"] = ["type": "audio", "transcript": .string(transcript)]
        send("response.content_part.done", partDone)
        state?.transcriptSent(on: connection?.number ?? 0, role: "assistant", itemID: active.itemID, responseID: active.id,
                              text: transcript, audioMs: sentMs, cancelled: status != "completed")
        let item = assistantItem(id: active.itemID, status: status == "completed" ? "completed" : "incomplete",
                                 transcript: transcript)
        send("response.output_item.done", ["response_id": .string(active.id), "output_index": 0, "item": item])
        send("conversation.item.done", ["previous_item_id": nil, "item": item])
        send("response.done", ["response": responseObject(id: active.id, status: status, reason: reason, output: [item])])
    }

    // MARK: function calls

    /// Sends a complete function-call response (created, item added, arguments done, item done,
    /// response done); returns the function call item's id.
    func injectFunctionCall(callID: String, name: String, arguments: String) -> String {
        guard let state else { return "" }
        let responseID = state.nextID("resp")
        let itemID = state.nextID("item")
        let inProgress: JSONValue = [
            "id": .string(itemID), "object": "realtime.item", "type": "function_call", "status": "in_progress",
            "name": .string(name), "call_id": .string(callID), "arguments": "",
        ]
        let done: JSONValue = [
            "id": .string(itemID), "object": "realtime.item", "type": "function_call", "status": "completed",
            "name": .string(name), "call_id": .string(callID), "arguments": .string(arguments),
        ]
        send("response.created", ["response": responseObject(id: responseID, status: "in_progress", reason: nil, output: [])])
        send("response.output_item.added", ["response_id": .string(responseID), "output_index": 0, "item": inProgress])
        send("conversation.item.added", ["previous_item_id": JSONValue(lastItemID), "item": inProgress])
        lastItemID = itemID
        send("response.function_call_arguments.delta", [
            "response_id": .string(responseID), "item_id": .string(itemID), "output_index": 0, "call_id": .string(callID),
            "delta": .string(arguments),
        ])
        send("response.function_call_arguments.done", [
            "call_id": .string(callID), "name": .string(name), "arguments": .string(arguments), "item_id": .string(itemID),
            "output_index": 0, "response_id": .string(responseID),
        ])
        send("response.output_item.done", ["response_id": .string(responseID), "output_index": 0, "item": done])
        send("conversation.item.done", ["previous_item_id": nil, "item": done])
        send("response.done", ["response": responseObject(id: responseID, status: "completed", reason: nil, output: [done])])
        return itemID
    }

    func unknownEventText() -> String {
        JSONWriter.string(["type": "mock.unknown_event", "event_id": .string(state?.nextEventID() ?? "event_mock"),
                           "note": "a type no client knows"])
    }
}
