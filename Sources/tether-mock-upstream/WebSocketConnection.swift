import NIOCore
import NIOHTTP1
import NIOWebSocket
import TetherCore
import Glibc

/// One upgraded WebSocket connection: frame hygiene (masking, reserved bits, fragments, UTF-8,
/// ping/pong, the close handshake), the fault knobs that act on a connection (stall, drop,
/// close, garbage) and the hand-off of whole messages to the protocol session.
///
/// Protocol errors are counted, answered with a close frame (1002, 1007 or 1009) and end the
/// connection; the mock itself never stops on bad input.
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
    private var fragments: ByteBuffer?
    private var fragmentOpcode = WebSocketOpcode.binary
    private var timers: [Scheduled<Void>] = []
    private var unstallTimer: Scheduled<Void>?

    private enum CloseState { case open, closeSent, closeReceived, closed }
    private var closeState = CloseState.open
    private var closeCode: Int?
    private var closeReason: String?
    private var closedBy: String?
    private var finished = false
    private(set) var receivedPCMBytes = 0
    private(set) var eventsReceived = 0

    init(number: Int, kind: UpstreamProtocol, head: HTTPRequestHead, remote: String, state: MockState) {
        self.number = number
        self.kind = kind
        path = head.uri
        requestHeaders = head.headers
        self.remote = remote
        self.state = state
    }

    var loop: EventLoop { state.loop }
    var isOpen: Bool { closeState == .open }

    // MARK: lifecycle

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        guard context.channel.isActive else {
            // The client left while the upgrade was being answered: nothing was opened.
            finished = true
            closeState = .closed
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
        closeState = .closed
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
            guard let self, self.closeState != .closed else { return }
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
        guard closeState == .open else { return }
        let code: Int
        switch error {
        case NIOWebSocketError.invalidFrameLength: code = 1009
        default: code = 1002
        }
        protocolError(code: code, "\(error)")
    }

    private func handle(_ frame: WebSocketFrame) {
        guard closeState == .open || closeState == .closeSent else { return }
        guard frame.maskKey != nil else { return protocolError(code: 1002, "client frame not masked") }
        guard !frame.rsv1, !frame.rsv2, !frame.rsv3 else { return protocolError(code: 1002, "reserved bits set") }
        switch frame.opcode {
        case .ping:
            guard closeState == .open else { return }
            state.stats.pingsAnswered += 1
            send(WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData))
        case .pong:
            state.stats.pongsReceived += 1
        case .connectionClose:
            handleClose(frame.unmaskedData)
        case .text, .binary:
            guard closeState == .open else { return }
            guard fragments == nil else { return protocolError(code: 1002, "new message inside a fragmented one") }
            if frame.fin {
                deliver(opcode: frame.opcode, frame.unmaskedData)
            } else {
                fragmentOpcode = frame.opcode
                fragments = frame.unmaskedData
            }
        case .continuation:
            guard closeState == .open else { return }
            guard var buffer = fragments else { return protocolError(code: 1002, "continuation without a message") }
            var more = frame.unmaskedData
            guard buffer.readableBytes + more.readableBytes <= Self.maxMessageBytes else {
                fragments = nil
                return protocolError(code: 1009, "message larger than \(Self.maxMessageBytes) bytes")
            }
            buffer.writeBuffer(&more)
            if frame.fin {
                fragments = nil
                deliver(opcode: fragmentOpcode, buffer)
            } else {
                fragments = buffer
            }
        default:
            protocolError(code: 1002, "unknown opcode \(frame.opcode)")
        }
    }

    private func deliver(opcode: WebSocketOpcode, _ buffer: ByteBuffer) {
        guard let session else { return }
        if opcode == .binary {
            state.stats.binaryFramesReceived += 1
            session.receivedBinary(buffer)
            return
        }
        guard let text = String(validating: buffer.readableBytesView, as: UTF8.self) else {
            return protocolError(code: 1007, "text frame is not valid UTF-8")
        }
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
        receivedPCMBytes += bytes.count
        state.stats.receivedPCMBytes += bytes.count
        state.recorder?.receivedPCM(number, bytes)
    }

    private func handleClose(_ payload: ByteBuffer) {
        var code: Int?
        var reason = ""
        switch WebSocketClose.parse(Array(payload.readableBytesView)) {
        case .noStatus: break
        case .status(let received, let text):
            code = Int(received)
            reason = text
        case .violation(let answer, let message):
            return protocolError(code: Int(answer), message)
        }
        switch closeState {
        case .closeSent:
            // The answer to our close: the handshake is complete.
            closeTCP()
        case .open:
            closeState = .closeReceived
            closedBy = closedBy ?? "client"
            closeCode = code
            closeReason = reason
            session?.stop()
            var answer = context?.channel.allocator.buffer(capacity: 2) ?? ByteBuffer()
            if let code { answer.writeInteger(UInt16(code)) }
            writeDirect(WebSocketFrame(fin: true, opcode: .connectionClose, data: answer), thenClose: true)
        case .closeReceived, .closed:
            break
        }
    }

    private func protocolError(code: Int, _ message: String) {
        state.stats.protocolErrors += 1
        Log.info("conn \(number): protocol error: \(message)")
        fragments = nil
        sendClose(code: code, reason: message)
    }

    // MARK: outbound

    /// Sends a frame now, or holds it while stalled. Data frames are dropped once closing.
    func send(_ frame: WebSocketFrame) {
        guard closeState == .open, context != nil else { return }
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
        guard closeState == .open, let context else { return }
        closeState = .closeSent
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
        guard closeState != .closed, let context else { return }
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
        guard closeState == .open, let context else { return }
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
        for frame in outbound where closeState == .open { context.write(wrapOutboundOut(frame), promise: nil) }
        context.flush()
        while !isStalled, !heldInbound.isEmpty {
            handle(heldInbound.removeFirst())
        }
        session?.resume()
    }

    /// Malformed frames: text that is not JSON, text that is not UTF-8, an unknown event type.
    func sendGarbage() {
        guard let context, closeState == .open else { return }
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
        ]
        return (closeCode, closeReason, who, line)
    }

    func statusRecord() -> JSONObject {
        [
            "n": .number(Double(number)), "path": .string(path), "protocol": .string(kind.rawValue),
            "session_id": JSONValue(session?.sessionID), "age_ms": .number(Double(WallClock.sinceStartMilliseconds() - openedAtMs)),
            "received_pcm_bytes": .number(Double(receivedPCMBytes)), "events_received": .number(Double(eventsReceived)),
            "stalled": .bool(isStalled), "responding": .bool(session?.isResponding ?? false),
        ]
    }
}
