import NIOCore
import NIOHTTP1
import NIOWebSocket
import TetherCore
import Glibc

/// One upgraded WebSocket connection: the server end of `WebSocketStateMachine` (the frame
/// rules, shared with tetherd's client end), the fault knobs that act on a connection (stall,
/// drop, close, garbage) and the hand-off of whole messages to the protocol session.
///
/// Protocol errors are counted, answered with the machine's close code (1002, 1007 or 1009)
/// and end the connection; the mock itself never stops on bad input.
final class WebSocketConnection: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    static let maxMessageBytes = 16 << 20
    /// How long a close frame we sent may wait for the peer's answer before TCP is closed.
    static let closeAnswerTimeout = TimeAmount.seconds(2)

    let number: Int
    let kind: UpstreamProtocol
    let path: String
    let remote: String
    let state: MockState
    private let requestHeaders: HTTPHeaders
    private let openedAtMs = WallClock.sinceStartMilliseconds()

    private(set) var session: (any MockSession)?
    private var context: ChannelHandlerContext?
    private(set) var isStalled = false
    private var heldInbound: [WebSocketFrame] = []
    private var heldOutbound: [WebSocketFrame] = []
    private var machine = WebSocketStateMachine(role: .server, maxMessageBytes: maxMessageBytes)
    private var timers: [Scheduled<Void>] = []
    private var unstallTimer: Scheduled<Void>?

    private var closeCode: Int?
    private var closeReason: String?
    private var closedBy: String?
    private var finished = false
    private(set) var receivedPCMBytes = 0
    private(set) var eventsReceived = 0
    /// When the first PCM byte arrived (ms since open): a continuity test checks that a new
    /// session was seeded before it.
    private(set) var firstAudioMs: Int64?

    init(number: Int, kind: UpstreamProtocol, head: HTTPRequestHead, remote: String, state: MockState) {
        self.number = number
        self.kind = kind
        path = head.uri
        requestHeaders = head.headers
        self.remote = remote
        self.state = state
    }

    var loop: EventLoop { state.loop }
    var isOpen: Bool { machine.state == .open }
    var ageMs: Int64 { WallClock.sinceStartMilliseconds() - openedAtMs }

    // MARK: lifecycle

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        guard context.channel.isActive else {
            // The client left while the upgrade was being answered: nothing was opened.
            finished = true
            machine.connectionEnded()
            return
        }
        let session: any MockSession =
            switch kind {
            case .openAIRealtime: RealtimeSession(connection: self)
            case .pcmStream: PCMStreamSession(connection: self)
            }
        self.session = session
        state.connectionOpened(self)
        let faults = state.faults
        session.start(firstEventDelayMs: faults.slowHandshakePhase == .session ? faults.slowHandshakeMs : 0)
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(closedBy: "peer")
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        finish(closedBy: "peer")
        self.context = nil
    }

    /// Runs once, whichever way the connection ends.
    private func finish(closedBy who: String) {
        guard !finished else { return }
        finished = true
        closedBy = closedBy ?? who
        machine.connectionEnded()
        session?.stop()
        session = nil
        for timer in timers { timer.cancel() }
        timers.removeAll()
        unstallTimer?.cancel()
        unstallTimer = nil
        heldInbound.removeAll()
        heldOutbound.removeAll()
        state.connectionClosed(self)
    }

    /// Runs `body` after `ms` unless the connection has ended by then.
    func schedule(afterMs ms: Int, _ body: @escaping () -> Void) {
        let task = loop.assumeIsolated().scheduleTask(in: .milliseconds(Int64(ms))) { [weak self] in
            guard let self, !self.finished else { return }
            body()
        }
        timers.append(task)
    }

    // MARK: inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        if isStalled {
            heldInbound.append(frame)
        } else {
            handle(frame)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if error is IOError {
            closedBy = closedBy ?? "peer"
            context.close(promise: nil)
            return
        }
        let frameTooLarge = (error as? NIOWebSocketError) == .invalidFrameLength
        if case .close(let code, let reason) = machine.decodingFailed(frameTooLarge: frameTooLarge) {
            protocolError(code: Int(code), reason)
        }
    }

    private func handle(_ frame: WebSocketFrame) {
        let data = frame.unmaskedData
        let fields = WebSocketStateMachine.Frame(
            fin: frame.fin, reservedBitsSet: frame.rsv1 || frame.rsv2 || frame.rsv3,
            opcode: UInt8(webSocketOpcode: frame.opcode), masked: frame.maskKey != nil)
        switch data.withUnsafeReadableBytes({ machine.received(fields, payload: $0) }) {
        case .ignore:
            break
        case .deliverText(let message):
            deliverText(message == .thisFrame ? data : buffer(message))
        case .deliverBinary(let message):
            deliverBinary(message == .thisFrame ? data : buffer(message))
        case .replyPong:
            state.stats.pingsAnswered += 1
            send(WebSocketFrame(fin: true, opcode: .pong, data: data))
        case .receivedPong:
            state.stats.pongsReceived += 1
        case .peerClosed(let code, let reason):
            peerClosed(code: code == 1005 ? nil : Int(code), reason: reason)
        case .closeAcknowledged:
            // The answer to our close: the handshake is complete.
            closeTCP()
        case .close(let code, let reason):
            protocolError(code: Int(code), reason)
        }
    }

    private func buffer(_ message: WebSocketStateMachine.Message) -> ByteBuffer {
        guard case .assembled(let bytes) = message, let context else { return ByteBuffer() }
        return context.channel.allocator.buffer(bytes: bytes)
    }

    private func deliverBinary(_ buffer: ByteBuffer) {
        guard let session else { return }
        state.stats.binaryFramesReceived += 1
        session.receivedBinary(buffer)
    }

    /// A text message, already checked to be UTF-8 by the machine.
    private func deliverText(_ buffer: ByteBuffer) {
        guard let session else { return }
        let text = String(decoding: buffer.readableBytesView, as: UTF8.self)
        do {
            let event = try JSONParser.parse(text)
            state.stats.eventsReceived += 1
            eventsReceived += 1
            state.recorder?.receivedEvent(number, event: event)
            Log.debug("conn \(number) <- \(event["type"]?.stringValue ?? "?")")
            session.receivedEvent(event)
        } catch {
            state.stats.invalidEvents += 1
            state.recorder?.receivedInvalidEvent(number, text: text, error: error.description)
            Log.info("conn \(number): invalid JSON from client: \(error)")
            session.receivedInvalidJSON(text, error: error.description)
        }
    }

    /// Counts and records PCM the client sent (binary frames or decoded `audio`).
    func receivedPCM(_ bytes: UnsafeRawBufferPointer) {
        if firstAudioMs == nil, bytes.count > 0 { firstAudioMs = ageMs }
        receivedPCMBytes += bytes.count
        state.stats.receivedPCMBytes += bytes.count
        state.recorder?.receivedPCM(number, bytes)
    }

    /// The client started the closing handshake: answer with its code (none if it gave none)
    /// and close TCP once the answer is written.
    private func peerClosed(code: Int?, reason: String) {
        closedBy = closedBy ?? "client"
        closeCode = code
        closeReason = reason
        session?.stop()
        var answer = context?.channel.allocator.buffer(capacity: 2) ?? ByteBuffer()
        if let code { answer.writeInteger(UInt16(code)) }
        writeDirect(WebSocketFrame(fin: true, opcode: .connectionClose, data: answer), thenClose: true)
    }

    /// The machine has already moved to closing; this sends its close frame.
    private func protocolError(code: Int, _ message: String) {
        state.stats.protocolErrors += 1
        Log.info("conn \(number): protocol error: \(message)")
        startClosing(code: code, reason: message)
    }

    // MARK: outbound

    /// Sends a frame now, or holds it while stalled. Data frames are dropped once closing.
    func send(_ frame: WebSocketFrame) {
        guard isOpen, context != nil else { return }
        if isStalled {
            heldOutbound.append(frame)
        } else {
            context?.writeAndFlush(wrapOutboundOut(frame), promise: nil)
        }
    }

    func sendText(_ text: String) {
        guard let context else { return }
        send(WebSocketFrame(fin: true, opcode: .text, data: context.channel.allocator.buffer(string: text)))
    }

    func sendJSON(_ object: JSONObject) {
        sendText(JSONWriter.string(.object(object)))
    }

    func sendBinary(_ bytes: [UInt8]) {
        guard let context else { return }
        send(WebSocketFrame(fin: true, opcode: .binary, data: context.channel.allocator.buffer(bytes: bytes)))
    }

    private func writeDirect(_ frame: WebSocketFrame, thenClose: Bool) {
        guard let context else { return }
        let written = context.writeAndFlush(wrapOutboundOut(frame))
        if thenClose {
            written.assumeIsolated().whenComplete { [weak self] _ in self?.closeTCP() }
        }
    }

    private func closeTCP() {
        context?.close(promise: nil)
    }

    // MARK: faults

    /// Starts the closing handshake with `code`; TCP closes when the peer answers, or after
    /// `closeAnswerTimeout`.
    func sendClose(code: Int, reason: String) {
        guard isOpen, context != nil else { return }
        machine.sentClose()
        startClosing(code: code, reason: reason)
    }

    private func startClosing(code: Int, reason: String) {
        guard let context else { return }
        closedBy = closedBy ?? "server"
        closeCode = code
        closeReason = reason
        session?.stop()
        if isStalled { unstall() }
        let payload = context.channel.allocator.buffer(bytes: WebSocketClose.payload(code: UInt16(truncatingIfNeeded: code), reason: reason))
        writeDirect(WebSocketFrame(fin: true, opcode: .connectionClose, data: payload), thenClose: false)
        schedule(afterMs: Int(Self.closeAnswerTimeout.nanoseconds / 1_000_000)) { [weak self] in self?.closeTCP() }
    }

    /// Closes TCP at once, no close frame; with `reset`, an RST instead of a FIN.
    func drop(reset: Bool) {
        guard !finished, let context else { return }
        closedBy = closedBy ?? "drop"
        if reset, let provider = context.channel as? SocketOptionProvider {
            // SO_LINGER with a zero timeout turns close(2) into an RST.
            provider.setSoLinger(linger(l_onoff: 1, l_linger: 0)).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
            return
        }
        context.close(promise: nil)
    }

    /// Stops reading, answering and sending, keeping TCP open; `seconds` 0 means until `unstall`.
    func stall(seconds: Double) {
        guard isOpen, let context else { return }
        unstallTimer?.cancel()
        unstallTimer = nil
        if !isStalled {
            isStalled = true
            try? context.channel.syncOptions?.setOption(.autoRead, value: false)
            session?.pause()
        }
        if seconds > 0 {
            unstallTimer = loop.assumeIsolated().scheduleTask(in: .milliseconds(Int64(seconds * 1000))) { [weak self] in
                self?.unstall()
            }
        }
    }

    /// Resumes a stalled connection: held input is handled and held output sent, in order.
    func unstall() {
        guard isStalled, let context else { return }
        isStalled = false
        unstallTimer?.cancel()
        unstallTimer = nil
        try? context.channel.syncOptions?.setOption(.autoRead, value: true)
        context.read()
        let outbound = heldOutbound
        heldOutbound.removeAll()
        for frame in outbound where isOpen { context.write(wrapOutboundOut(frame), promise: nil) }
        context.flush()
        while !isStalled, !heldInbound.isEmpty {
            handle(heldInbound.removeFirst())
        }
        session?.resume()
    }

    /// Malformed frames: text that is not JSON, text that is not UTF-8, an unknown event type.
    func sendGarbage() {
        guard let context, isOpen else { return }
        sendText("{\"type\": \"mock.garbage\", this is not json")
        var invalid = context.channel.allocator.buffer(capacity: 8)
        invalid.writeBytes([0x7B, 0x22, 0xC3, 0x28, 0xFF, 0xFE, 0x22, 0x7D])  // {"\xC3(\xFF\xFE"}
        send(WebSocketFrame(fin: true, opcode: .text, data: invalid))
        sendText(session?.unknownEventText() ?? "{\"type\":\"mock.unknown_event\"}")
        Log.info("conn \(number): sent garbage frames")
    }

    // MARK: records

    func openRecord() -> JSONObject {
        [
            "event": "open", "n": .number(Double(number)), "ts": .string(WallClock.iso8601Now()),
            "t_ms": .number(Double(WallClock.sinceStartMilliseconds())), "path": .string(path),
            "protocol": .string(kind.rawValue), "remote": .string(remote),
            "authorization_present": .bool(!requestHeaders["authorization"].isEmpty),
            "headers": .object(MockState.headersOfInterest(requestHeaders)),
        ]
    }

    func closeRecord() -> (code: Int?, reason: String?, closedBy: String, line: JSONObject) {
        let who = closedBy ?? "peer"
        let now = WallClock.sinceStartMilliseconds()
        let line: JSONObject = [
            "event": "close", "n": .number(Double(number)), "ts": .string(WallClock.iso8601Now()),
            "t_ms": .number(Double(now)), "path": .string(path), "protocol": .string(kind.rawValue),
            "close_code": closeCode.map { .number(Double($0)) } ?? .null, "close_reason": JSONValue(closeReason),
            "closed_by": .string(who), "duration_ms": .number(Double(now - openedAtMs)),
            "received_pcm_bytes": .number(Double(receivedPCMBytes)), "events_received": .number(Double(eventsReceived)),
            "first_audio_ms": firstAudioMs.map { .number(Double($0)) } ?? .null,
        ]
        return (closeCode, closeReason, who, line)
    }

    func statusRecord() -> JSONObject {
        [
            "n": .number(Double(number)), "path": .string(path), "protocol": .string(kind.rawValue),
            "session_id": JSONValue(session?.sessionID), "age_ms": .number(Double(ageMs)),
            "received_pcm_bytes": .number(Double(receivedPCMBytes)), "events_received": .number(Double(eventsReceived)),
            "first_audio_ms": firstAudioMs.map { .number(Double($0)) } ?? .null,
            "stalled": .bool(isStalled), "responding": .bool(session?.isResponding ?? false),
        ]
    }
}
