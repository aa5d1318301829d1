import NIOCore
import NIOWebSocket
import TetherCore

/// What a WebSocket connection reports upward, on its event loop.
protocol WebSocketFrameSink: AnyObject {
    func webSocketReceived(text: [UInt8])
    func webSocketReceived(binary: [UInt8])
    func webSocketReceived(pong payload: [UInt8])
    /// The peer sent a close frame (code 1005 when it gave none).
    func webSocketPeerClosed(code: UInt16, reason: String)
    /// The peer answered the close frame we sent.
    func webSocketCloseAcknowledged()
    /// We broke the connection over a protocol violation, with this close code.
    func webSocketViolation(code: UInt16, reason: String)
    func webSocketWritabilityChanged(_ writable: Bool)
    func webSocketInactive()
    func webSocketError(_ error: any Error)
}

/// The client end of RFC 6455 after the upgrade, as the I/O around `WebSocketStateMachine`
/// (which the mock brain's server end drives too): every frame goes through the machine and
/// this handler does what it says: hands messages to the sink, answers pings, masks what it
/// sends. Violations close with the machine's code (1002, 1007, 1009); the sink counts them.
final class WebSocketFrameHandler: ChannelDuplexHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    /// How long a connection we broke keeps draining the peer's data before it closes anyway.
    static let drainTimeout = TimeAmount.seconds(1)

    private weak var sink: (any WebSocketFrameSink)?
    private var machine: WebSocketStateMachine

    init(sink: any WebSocketFrameSink, maxMessageBytes: Int) {
        self.sink = sink
        machine = WebSocketStateMachine(role: .client, maxMessageBytes: maxMessageBytes)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        let fields = WebSocketStateMachine.Frame(
            fin: frame.fin, reservedBitsSet: frame.rsv1 || frame.rsv2 || frame.rsv3,
            opcode: UInt8(webSocketOpcode: frame.opcode), masked: frame.maskKey != nil)
        let action = frame.data.withUnsafeReadableBytes { machine.received(fields, payload: $0) }
        switch action {
        case .ignore:
            break
        case .deliverText(let message):
            sink?.webSocketReceived(text: bytes(of: message, frame))
        case .deliverBinary(let message):
            sink?.webSocketReceived(binary: bytes(of: message, frame))
        case .replyPong:
            // The ping's payload buffer goes back out as is; the encoder masks it.
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .pong, maskKey: .random(), data: frame.data)), promise: nil)
        case .receivedPong:
            sink?.webSocketReceived(pong: bytes(of: .thisFrame, frame))
        case .peerClosed(let code, let reason):
            sink?.webSocketPeerClosed(code: code, reason: reason)
        case .closeAcknowledged:
            sink?.webSocketCloseAcknowledged()
        case .close(let code, let reason):
            violate(context, code, reason)
        }
    }

    private func bytes(of message: WebSocketStateMachine.Message, _ frame: WebSocketFrame) -> [UInt8] {
        switch message {
        case .thisFrame: frame.data.getBytes(at: frame.data.readerIndex, length: frame.data.readableBytes) ?? []
        case .assembled(let bytes): bytes
        }
    }

    /// Close frames sent by the connection (on purpose, or answering the peer's) pass here, so
    /// the machine knows the closing handshake has begun.
    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if unwrapOutboundIn(data).opcode == .connectionClose { machine.sentClose() }
        context.write(data, promise: promise)
    }

    private func violate(_ context: ChannelHandlerContext, _ code: UInt16, _ reason: String) {
        // The sink hears of it first (and leaves the channel to us); then the close frame goes
        // out, and TCP closes once it is written.
        sink?.webSocketViolation(code: code, reason: reason)
        let frame = Self.closeFrame(code: code, reason: reason, allocator: context.channel.allocator)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(frame)).whenComplete { _ in
            // Half-close, keep reading (and discarding) until the peer closes, at most a
            // second: closing with its data unread makes the kernel answer with an RST, which
            // can destroy our close frame before the peer has read it (the fuzzing peer lost
            // about one close code in a hundred that way).
            channel.close(mode: .output, promise: nil)
            channel.eventLoop.scheduleTask(in: Self.drainTimeout) { channel.close(promise: nil) }
        }
    }

    static func closeFrame(code: UInt16, reason: String, allocator: ByteBufferAllocator) -> WebSocketFrame {
        let buffer = allocator.buffer(bytes: WebSocketClose.payload(code: code, reason: reason))
        return WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: .random(), data: buffer)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        sink?.webSocketWritabilityChanged(context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        machine.connectionEnded()
        sink?.webSocketInactive()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let error = error as? NIOWebSocketError {
            // The decoder gave up on the stream: a violation while open, nothing once closing.
            if case .close(let code, let reason) = machine.decodingFailed(frameTooLarge: error == .invalidFrameLength) {
                violate(context, code, reason)
            }
            return
        }
        sink?.webSocketError(error)
        context.close(promise: nil)
    }
}
