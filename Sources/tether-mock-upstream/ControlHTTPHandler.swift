import NIOCore
import NIOHTTP1
import NIOWebSocket
import TetherCore

/// Plain HTTP on the mock's port: the `/mock/...` control endpoint for tests, and the answer to
/// upgrade requests the mock refused (401 for auth, 404 for an unknown path). Every answer is
/// JSON and closes the connection.
final class ControlHTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    /// Room for `/mock/say` with a PCM body: a minute at 24 kHz (2.9 MB).
    static let maxBodyBytes = 4 << 20

    private let state: MockState
    private let ticket: UpgradeTicket
    private var head: HTTPRequestHead?
    private var body = ByteBuffer()
    private var responded = false

    init(state: MockState, ticket: UpgradeTicket) {
        self.state = state
        self.ticket = ticket
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body.clear()
        case .body(var chunk):
            if body.readableBytes + chunk.readableBytes <= Self.maxBodyBytes { body.writeBuffer(&chunk) }
        case .end:
            guard let head, !responded else { return }
            responded = true
            let (status, json) = answer(head)
            respond(context: context, status: status, json: json)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // A refused or malformed upgrade arrives here as an error first, then as the plain
        // request it was: that request gets the answer (401, 404, 400).
        if case .refused = ticket.verdict { return }
        if error is NIOWebSocketUpgradeError { return }
        Log.debug("http: \(error)")
        context.close(promise: nil)
    }

    private func respond(context: ChannelHandlerContext, status: HTTPResponseStatus, json: JSONObject) {
        var text = JSONWriter.string(.object(json))
        text += "\n"
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "application/json")
        headers.add(name: "content-length", value: String(text.utf8.count))
        headers.add(name: "connection", value: "close")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: text)))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }

    private func answer(_ head: HTTPRequestHead) -> (HTTPResponseStatus, JSONObject) {
        if head.headers.contains(name: "upgrade") {
            if case .refused(let status, _, let body) = ticket.verdict { return (status, body) }
            return (.badRequest, MockState.errorBody("bad WebSocket upgrade request", code: "bad_upgrade"))
        }
        let target = RequestTarget(head.uri)
        guard target.path.hasPrefix("/mock/") else {
            return (.notFound, MockState.errorBody("not found: \(target.path) (control endpoints are under /mock/)", code: "not_found"))
        }
        let action = String(target.path.dropFirst("/mock/".count))
        if action == "status" {
            guard head.method == .GET || head.method == .POST else { return methodNotAllowed(head) }
            return (.ok, state.statusJSON())
        }
        guard head.method == .POST else { return methodNotAllowed(head) }
        return ControlActions.perform(action, target: target, body: body, state: state)
    }

    private func methodNotAllowed(_ head: HTTPRequestHead) -> (HTTPResponseStatus, JSONObject) {
        (.methodNotAllowed, MockState.errorBody("\(head.method) not allowed on \(head.uri)", code: "method_not_allowed"))
    }
}

/// The verdict on this connection's upgrade request, shared by the upgrader (which decides) and
/// the HTTP handler (which answers a refusal). One per accepted TCP connection.
final class UpgradeTicket {
    var verdict: UpgradeVerdict?
}
