import NIOCore
import TetherCore

/// Sends the upgrade request when the connection becomes active and judges the response
/// with `WebSocketHandshake`. On a 101 it hands over to `onUpgraded`, passing along any bytes
/// that arrived after the head (the server may send its first frame in the same packet).
final class WebSocketHandshakeHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let request: String
    private let key: String
    private let onUpgraded: (ChannelHandlerContext, ByteBuffer) -> Void
    private let onRefused: (ConnectionFailure) -> Void
    private var received: [UInt8] = []
    private var done = false

    init(request: String, key: String, onUpgraded: @escaping (ChannelHandlerContext, ByteBuffer) -> Void,
         onRefused: @escaping (ConnectionFailure) -> Void) {
        self.request = request
        self.key = key
        self.onUpgraded = onUpgraded
        self.onRefused = onRefused
    }

    func channelActive(context: ChannelHandlerContext) {
        var buffer = context.channel.allocator.buffer(capacity: request.utf8.count)
        buffer.writeString(request)
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !done else { return }
        var buffer = unwrapInboundIn(data)
        received.append(contentsOf: buffer.readBytes(length: buffer.readableBytes) ?? [])
        switch WebSocketHandshake.evaluate(response: received, key: key) {
        case .incomplete:
            return
        case .upgraded(let headLength):
            done = true
            var leftover = context.channel.allocator.buffer(capacity: received.count - headLength)
            leftover.writeBytes(received[headLength...])
            received = []
            onUpgraded(context, leftover)
        case .refused(let status, let reason):
            done = true
            onRefused(.httpStatus(status, reason: reason))
        case .invalid(let why):
            done = true
            onRefused(ConnectionFailure(.transport, "upgrade failed: \(why)"))
        }
    }
}
