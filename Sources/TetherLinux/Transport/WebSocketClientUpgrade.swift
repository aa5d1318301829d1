import NIOCore
import NIOHTTP1
import NIOWebSocket
import TetherCore

/// The client's opening handshake (RFC 6455 4.1), done by NIO's typed upgrader: it sends the
/// request, checks Sec-WebSocket-Accept and puts the frame codec in. What tether adds: the
/// frame handler behind the codec, the status of a refusal (401, 403) as a `ConnectionFailure`,
/// and readable reasons for a broken answer. The caller's handshake deadline bounds all of it.
enum WebSocketClientUpgrade {
    /// The request head: NIO's upgrader adds Upgrade, Connection and the key.
    static func requestHead(url: UpstreamURL, headers extra: [HTTPHeader]) -> HTTPRequestHead {
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: url.hostHeader)
        headers.add(name: "User-Agent", value: "tetherd/\(TetherVersion.current)")
        for header in extra { headers.add(name: header.name, value: header.value) }
        return HTTPRequestHead(version: .http1_1, method: .GET, uri: url.target, headers: headers)
    }

    /// Adds the HTTP client handlers and the upgrader. `upgraded` runs on a 101 with the right
    /// key, while the upgrader still holds what came after the head: the frame handler it adds
    /// gets those bytes next. `refused` hears of any other status. The future holds true once
    /// the upgrader is done and passes writes on (it refuses them while upgrading), false
    /// after a refusal, and fails with a reason from `describe` for an answer that is no upgrade.
    /// `requestKey` is fixed only by tests (its accept value is then known).
    static func configure(
        _ pipeline: ChannelPipeline.SynchronousOperations, request: HTTPRequestHead, maxMessageBytes: Int,
        requestKey: String = NIOWebSocketClientUpgrader.randomRequestKey(),
        upgraded: @escaping @Sendable (any Channel) throws -> Void,
        refused: @escaping @Sendable (ConnectionFailure) -> Void
    ) throws -> EventLoopFuture<Bool> {
        let upgrader = NIOTypedWebSocketClientUpgrader<Bool>(
            requestKey: requestKey, maxFrameSize: maxMessageBytes, enableAutomaticErrorHandling: false,
            upgradePipelineHandler: { channel, _ in
                channel.eventLoop.makeCompletedFuture { try upgraded(channel); return true }
            })
        var configuration = NIOUpgradableHTTPClientPipelineConfiguration(
            upgradeConfiguration: NIOTypedHTTPClientUpgradeConfiguration(
                upgradeRequestHead: request, upgraders: [upgrader],
                notUpgradingCompletionHandler: { channel in
                    // The upgrader hands the response head on to the handler added here.
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(UpgradeRefusalHandler(onRefused: refused))
                        return false
                    }
                }))
        // The server may send its first frame in the packet of the 101: those bytes go on to
        // the frame decoder rather than being dropped with the HTTP decoder.
        configuration.leftOverBytesStrategy = .forwardBytes
        return try pipeline.configureUpgradableHTTPClientPipeline(configuration: configuration)
            .flatMapErrorThrowing { error in throw UpgradeFailure(reason: describe(error)) }
    }

    struct UpgradeFailure: Error, CustomStringConvertible {
        var reason: String
        var description: String { reason }
    }

    static func describe(_ error: any Error) -> String {
        if let upgradeError = error as? NIOHTTPClientUpgradeError {
            if upgradeError == .upgraderDeniedUpgrade { return "Sec-WebSocket-Accept does not match the key" }
            if upgradeError == .responseProtocolNotFound { return "101 without Upgrade: websocket" }
        }
        if error is HTTPParserError { return "not an HTTP response (\(error))" }
        return UpstreamConnection.describe(error)
    }
}
