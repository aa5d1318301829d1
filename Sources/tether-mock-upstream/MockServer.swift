import Dispatch
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket

#if canImport(Glibc)
import Glibc
#endif

/// Wires the mock together: one event loop thread, one listening socket that serves both the
/// WebSocket upgrades and the plain-HTTP control endpoint, and SIGTERM/SIGINT handling that
/// sends every client a close frame (1001) before the process exits.
enum MockServer {
    /// How long a shutdown waits for clients to answer their close frames.
    static let shutdownGrace = TimeAmount.seconds(1)

    static func run(options: MockOptions) throws {
        Log.verbose = options.verbose
        Log.quiet = options.quiet
        _ = WallClock.sinceStartMilliseconds()  // fixes the origin of t_ms

        // SIGTERM and SIGINT stay pending, blocked in this thread and every thread started
        // from now on, until the dispatch sources below (signalfd underneath) take them: a
        // signal sent the moment the mock starts is handled late, never lost.
        var shutdownSignals = sigset_t()
        sigemptyset(&shutdownSignals)
        sigaddset(&shutdownSignals, SIGTERM)
        sigaddset(&shutdownSignals, SIGINT)
        pthread_sigmask(SIG_BLOCK, &shutdownSignals, nil)

        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let loop = group.next()

        let boundState = try loop.submit { () throws -> NIOLoopBound<MockState> in
            let recorder = try options.recordDirectory.map { directory throws(RecorderError) in try Recorder(directory: directory) }
            return NIOLoopBound(MockState(options: options, loop: loop, recorder: recorder), eventLoop: loop)
        }.wait()

        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try configure(channel, state: boundState)
                }
            }

        let server: Channel
        do {
            server = try bootstrap.bind(host: options.host, port: options.port).wait()
        } catch {
            throw MockStartError(message: "cannot listen on \(options.host):\(options.port): \(error)")
        }
        let port = server.localAddress?.port ?? options.port
        let hostText = options.host.contains(":") ? "[\(options.host)]" : options.host

        let stopped = loop.makePromise(of: Void.self)
        try loop.submit {
            let state = boundState.value
            state.port = port
            if let seconds = options.flapSeconds { _ = state.startFlap(seed: options.seed, seconds: seconds) }
        }.wait()

        // No SIG_IGN here: the signals are blocked already, and ignoring a pending signal
        // would discard it.
        let signalSources = [SIGTERM, SIGINT].map { number in
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                loop.execute {
                    Log.info("signal \(number): shutting down")
                    server.close(promise: nil)
                    boundState.value.shutdown(grace: shutdownGrace).whenComplete { _ in stopped.succeed() }
                }
            }
            source.resume()
            return source
        }
        defer { for source in signalSources { source.cancel() } }

        // Announced only now: whoever starts the mock waits for this line and may send SIGTERM
        // the moment it appears, which must find the handler armed, not ignored.
        Log.writeAll(1, "listening on ws://\(hostText):\(port)\n")
        Log.info("openai-realtime at /v1/realtime, pcm-stream at /pcm, control at /mock/*"
                 + (options.recordDirectory.map { ", recording to \($0)" } ?? ""))

        try stopped.futureResult.wait()
        Log.info("stopped")
    }

    /// The pipeline of one accepted TCP connection: HTTP with a WebSocket upgrader in front of
    /// the control handler. Runs on the event loop.
    private static func configure(_ channel: Channel, state boundState: NIOLoopBound<MockState>) throws {
        let loop = channel.eventLoop
        let state = boundState.value
        let ticket = UpgradeTicket()
        let boundTicket = NIOLoopBound(ticket, eventLoop: loop)
        let http = ControlHTTPHandler(state: state, ticket: ticket)
        let boundHTTP = NIOLoopBound(http, eventLoop: loop)
        let remote = channel.remoteAddress.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" } ?? "?"

        let upgrader = NIOWebSocketServerUpgrader(
            maxFrameSize: WebSocketConnection.maxMessageBytes,
            automaticErrorHandling: false,
            shouldUpgrade: { channel, head in
                let state = boundState.value
                let verdict = state.decideUpgrade(head: head, remote: remote)
                boundTicket.value.verdict = verdict
                guard case .accepted = verdict else { return channel.eventLoop.makeSucceededFuture(nil) }
                var headers = HTTPHeaders()
                // Echo the first offered subprotocol, as clients that offer one require an answer.
                if let offered = head.headers["sec-websocket-protocol"].first?.split(separator: ",").first {
                    headers.add(name: "Sec-WebSocket-Protocol", value: offered.trimmingSpaces)
                }
                let answer = headers
                let delay = state.faults.slowHandshakePhase == .upgrade ? state.faults.slowHandshakeMs : 0
                guard delay > 0 else { return channel.eventLoop.makeSucceededFuture(answer) }
                Log.info("slow-handshake: holding the upgrade of \(head.uri) for \(delay) ms")
                return channel.eventLoop.scheduleTask(in: .milliseconds(Int64(delay))) { answer }.futureResult
            },
            upgradePipelineHandler: { channel, head in
                channel.eventLoop.makeCompletedFuture {
                    let state = boundState.value
                    guard case .accepted(let kind)? = boundTicket.value.verdict else { return }
                    let connection = WebSocketConnection(
                        number: state.takeConnectionNumber(), kind: kind, head: head, remote: remote, state: state)
                    try channel.pipeline.syncOperations.addHandler(connection)
                }
            })

        try channel.pipeline.syncOperations.configureHTTPServerPipeline(
            withServerUpgrade: (
                upgraders: [upgrader],
                completionHandler: { context in
                    context.pipeline.syncOperations.removeHandler(boundHTTP.value, promise: nil)
                }
            ))
        try channel.pipeline.syncOperations.addHandler(http)
    }
}

struct MockStartError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

extension Substring {
    var trimmingSpaces: String {
        String(drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
    }
}
