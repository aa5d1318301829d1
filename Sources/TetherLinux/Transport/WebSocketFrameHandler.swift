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
    /// We broke the connection over a protocol violation, with this close code.
    func webSocketViolation(code: UInt16, reason: String)
    func webSocketWritabilityChanged(_ writable: Bool)
    func webSocketInactive()
    func webSocketError(_ error: any Error)
}

/// The client end of RFC 6455 after the upgrade: reassembles fragmented messages up to a
/// size limit, checks that text is UTF-8 and control frames are well-formed, answers pings,
/// and masks everything it sends. Violations close the connection with the matching code
/// (1002 protocol error, 1007 invalid text, 1009 too big) and are counted by the sink.
final class WebSocketFrameHandler: ChannelDuplexHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private weak var sink: (any WebSocketFrameSink)?
    private let maxMessageBytes: Int
    private var fragments: [UInt8] = []
    private var fragmentOpcode: WebSocketOpcode?
    private var broken = false

    init(sink: any WebSocketFrameSink, maxMessageBytes: Int) {
        self.sink = sink
        self.maxMessageBytes = maxMessageBytes
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !broken else { return }
        let frame = unwrapInboundIn(data)
        if frame.rsv1 || frame.rsv2 || frame.rsv3 {
            return violate(context, 1002, "reserved bits set without an extension")
        }
        if frame.maskKey != nil {
            return violate(context, 1002, "masked frame from the server")
        }
        switch frame.opcode {
        case .ping, .pong, .connectionClose:
            guard frame.fin, frame.length <= 125 else { return violate(context, 1002, "malformed control frame") }
            var data = frame.data
            let payload = data.readBytes(length: data.readableBytes) ?? []
            handleControl(context, frame.opcode, payload)
        case .text, .binary:
            guard fragmentOpcode == nil else { return violate(context, 1002, "new message inside a fragmented one") }
            if frame.fin {
                deliver(context, frame.opcode, frameBytes(frame))
            } else {
                fragmentOpcode = frame.opcode
                fragments = frameBytes(frame)
            }
        case .continuation:
            guard let opcode = fragmentOpcode else { return violate(context, 1002, "continuation without a message") }
            guard fragments.count + frame.length <= maxMessageBytes else {
                return violate(context, 1009, "message larger than \(maxMessageBytes) bytes")
            }
            fragments.append(contentsOf: frameBytes(frame))
            if frame.fin {
                let message = fragments
                fragments = []
                fragmentOpcode = nil
                deliver(context, opcode, message)
            }
        default:
            violate(context, 1002, "unknown opcode")
        }
    }

    private func frameBytes(_ frame: WebSocketFrame) -> [UInt8] {
        var data = frame.data
        return data.readBytes(length: data.readableBytes) ?? []
    }

    private func deliver(_ context: ChannelHandlerContext, _ opcode: WebSocketOpcode, _ bytes: [UInt8]) {
        if opcode == .text {
            guard String(validating: bytes, as: UTF8.self) != nil else {
                return violate(context, 1007, "text message is not valid UTF-8")
            }
            sink?.webSocketReceived(text: bytes)
        } else {
            sink?.webSocketReceived(binary: bytes)
        }
    }

    private func handleControl(_ context: ChannelHandlerContext, _ opcode: WebSocketOpcode, _ payload: [UInt8]) {
        switch opcode {
        case .ping:
            var buffer = context.channel.allocator.buffer(capacity: payload.count)
            buffer.writeBytes(payload)
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .pong, maskKey: .random(), data: buffer)), promise: nil)
        case .pong:
            sink?.webSocketReceived(pong: payload)
        default:
            switch WebSocketClose.parse(payload) {
            case .noStatus: sink?.webSocketPeerClosed(code: 1005, reason: "")
            case .status(let code, let reason): sink?.webSocketPeerClosed(code: code, reason: reason)
            case .violation(let code, let message): violate(context, code, message)
            }
        }
    }

    private func violate(_ context: ChannelHandlerContext, _ code: UInt16, _ reason: String) {
        guard !broken else { return }
        broken = true
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
            channel.eventLoop.scheduleTask(in: .seconds(1)) { channel.close(promise: nil) }
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
        sink?.webSocketInactive()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let error = error as? NIOWebSocketError, !broken {
            switch error {
            case .invalidFrameLength: return violate(context, 1009, "frame larger than \(maxMessageBytes) bytes")
            default: return violate(context, 1002, "invalid frame")
            }
        }
        sink?.webSocketError(error)
        context.close(promise: nil)
    }
}
