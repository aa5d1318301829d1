import NIOCore
import NIOEmbedded
import NIOWebSocket
@testable import TetherLinux

/// Everything a frame handler tells its connection, in order.
final class RecordingFrameSink: WebSocketFrameSink {
    enum Event: Equatable {
        case text([UInt8]), binary([UInt8]), pong([UInt8])
        case peerClosed(UInt16, String), closeAcknowledged, violation(UInt16)
        case writable(Bool), inactive, error
    }

    var events: [Event] = []

    func webSocketReceived(text: [UInt8]) { events.append(.text(text)) }
    func webSocketReceived(binary: [UInt8]) { events.append(.binary(binary)) }
    func webSocketReceived(pong payload: [UInt8]) { events.append(.pong(payload)) }
    func webSocketPeerClosed(code: UInt16, reason: String) { events.append(.peerClosed(code, reason)) }
    func webSocketCloseAcknowledged() { events.append(.closeAcknowledged) }
    func webSocketViolation(code: UInt16, reason: String) { events.append(.violation(code)) }
    func webSocketWritabilityChanged(_ writable: Bool) { events.append(.writable(writable)) }
    func webSocketInactive() { events.append(.inactive) }
    func webSocketError(_ error: any Error) { events.append(.error) }
}

/// Records the close modes asked of the channel. An EmbeddedChannel treats a half-close as a
/// full one, so this stands at the head and keeps `.output` from reaching it.
final class CloseModeRecorder: ChannelOutboundHandler {
    typealias OutboundIn = NIOAny
    var modes: [CloseMode] = []

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        modes.append(mode)
        if mode == .output {
            promise?.succeed(())
        } else {
            context.close(mode: mode, promise: promise)
        }
    }
}

extension WebSocketFrame {
    /// A frame as a server sends it: unmasked unless `mask` is given.
    static func server(_ opcode: WebSocketOpcode, _ payload: [UInt8] = [], fin: Bool = true, rsv1: Bool = false,
                       mask: WebSocketMaskingKey? = nil) -> WebSocketFrame {
        var data = ByteBuffer(bytes: payload)
        if let mask { data.webSocketMask(mask) }
        return WebSocketFrame(fin: fin, rsv1: rsv1, opcode: opcode, maskKey: mask, data: data)
    }

    static func close(_ code: UInt16, _ reason: String = "") -> WebSocketFrame {
        server(.connectionClose, [UInt8(code >> 8), UInt8(code & 0xFF)] + Array(reason.utf8))
    }

    /// The payload of a frame we send: its mask key goes with it to the encoder, which applies
    /// it; the data itself is still plain.
    var sentPayload: [UInt8] { Array(data.readableBytesView) }

    /// The code of a close frame we send.
    var closeCode: UInt16? {
        let bytes = sentPayload
        guard opcode == .connectionClose, bytes.count >= 2 else { return nil }
        return UInt16(bytes[0]) << 8 | UInt16(bytes[1])
    }
}
