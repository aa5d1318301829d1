import NIOCore
import NIOHTTP1
import TetherCore

/// Reads the head of an answer that is not a 101 (NIO's client upgrader hands it on after its
/// not-upgrading handler has run), so a 401 or 403 reaches `status.session.last_error` as
/// "upgrade refused: HTTP 401 ..." and retries slowly, rather than as a bare connection error.
final class UpgradeRefusalHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart

    private let onRefused: (ConnectionFailure) -> Void

    init(onRefused: @escaping (ConnectionFailure) -> Void) {
        self.onRefused = onRefused
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // The body and end that follow are of no interest: the connection is closed on the head.
        guard case .head(let head) = unwrapInboundIn(data) else { return }
        onRefused(.httpStatus(Int(head.status.code), reason: head.status.reasonPhrase))
    }
}
