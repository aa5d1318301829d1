import Glibc
import NIOCore
import NIOPosix
import NIOSSL
import NIOWebSocket
import TetherCore

/// What a connection tells the session, always on the session's event loop. A connection
/// reports `ended` exactly once, and never after the session itself closed it.
protocol UpstreamConnectionOwner: AnyObject {
    func connectionUpgraded(_ connection: UpstreamConnection)
    /// One message from the upstream, its JSON parsed; in arrival order.
    func connection(_ connection: UpstreamConnection, received message: InboundMessage)
    func connection(_ connection: UpstreamConnection, acknowledged mark: UInt64, rtt: Duration, answeredProbe: Bool)
    func connectionWritable(_ connection: UpstreamConnection)
    func connection(_ connection: UpstreamConnection, ended failure: ConnectionFailure)
    func connectionViolation(_ connection: UpstreamConnection, code: UInt16, reason: String)
    /// The uplink position a ping sent now vouches for.
    func uplinkMark(for connection: UpstreamConnection) -> UInt64
}

/// Everything a connection attempt needs, fixed for its lifetime.
struct UpstreamConnectionSettings {
    var url: UpstreamURL
    var headers: [HTTPHeader]
    var tls: NIOSSLContext?
    var connectTimeout: Duration
    var handshakeTimeout: Duration
    var pingInterval: Duration
    var maxMessageBytes: Int
    /// How long a close waits for the peer's close frame before dropping TCP.
    var closeWait: Duration = .seconds(1)
}

/// One WebSocket connection to the upstream for one generation: dial, TLS, upgrade, pings,
/// close handshake, each phase under a deadline we enforce ourselves (rule 1). Confined to
/// its event loop.
final class UpstreamConnection: WebSocketFrameSink {
    enum Phase { case connecting, upgrading, open, closing, closed }

    let generation: UInt64
    let loop: any EventLoop
    private let settings: UpstreamConnectionSettings
    /// Where text messages too big for the loop are parsed (`InboundMessageQueue`).
    private let parsingPool: any OffLoopParser
    private weak var owner: (any UpstreamConnectionOwner)?
    private(set) var phase = Phase.connecting
    private var channel: (any Channel)?
    private var pings: PingTracker
    private var handshakeTimer: Scheduled<Void>?
    private var pingTimer: RepeatedTask?
    /// Reading stopped for downlink flow control (`pauseReading`).
    private(set) var readingPaused = false
    /// Whether the channel reads; off while the downlink is paused or a big message is out
    /// being parsed.
    private var reading = true
    /// The network went away (`suspendLiveness`): no pings until a `probe`, whatever reading does.
    private var networkSuspended = false
    /// Messages in arrival order; big text messages are parsed off the event loop.
    private var inbound = InboundMessageQueue()
    /// A close from the peer that arrived while earlier messages were still being parsed: it is
    /// handled once they are delivered.
    private var peerCloseBehindMessages: (code: UInt16, reason: String)?
    /// TCP ended while messages that came before were still being parsed: the end is reported
    /// once they are delivered (as the peer's close, if one came behind them).
    private var tcpEndedBehindMessages = false
    private var pingDeadlineTimer: Scheduled<Void>?
    private var closeTimer: Scheduled<Void>?
    /// Set once the owner must hear nothing more (it closed us, or we already reported).
    private var silenced = false
    private(set) var ready = false
    /// When each phase finished, for the journal: where a slow connect spent its time.
    private(set) var timeline = ConnectTimeline()
    private var maskingKeys = MaskingKeys()

    /// Opens TCP to the upstream: runs `initialize` on the new channel before it connects and
    /// gives the channel once connected. The daemon dials with `ClientBootstrap` (`bootstrap`);
    /// a test hands over an EmbeddedChannel, so everything from the pipeline on is the daemon's.
    typealias Dial = (_ initialize: @escaping @Sendable (any Channel) -> EventLoopFuture<Void>) -> EventLoopFuture<any Channel>
    private let dial: Dial
    /// The clock of ping times and verdicts and of the timeline; a test gives its loop's virtual
    /// time, which the timers run on.
    private let now: () -> MonoTime

    init(generation: UInt64, loop: any EventLoop, settings: UpstreamConnectionSettings, parsingPool: any OffLoopParser,
         owner: any UpstreamConnectionOwner, dial: Dial? = nil, now: @escaping () -> MonoTime = MonoClock.now) {
        self.generation = generation
        self.loop = loop
        self.parsingPool = parsingPool
        self.settings = settings
        self.owner = owner
        self.pings = PingTracker(interval: settings.pingInterval)
        self.dial = dial ?? Self.bootstrap(settings, on: loop)
        self.now = now
    }

    var lastRTT: Duration? { pings.lastRTT }

    var isWritable: Bool { phase == .open && (channel?.isWritable ?? false) }

    // MARK: Lifecycle

    func start() {
        timeline.started = now()
        let me = NIOLoopBound(self, eventLoop: loop)
        handshakeTimer = loop.scheduleTask(in: .nanoseconds(settings.handshakeTimeout.nanoseconds)) {
            me.value.fail(ConnectionFailure(.network, "handshake timed out after \(DurationText.format(me.value.settings.handshakeTimeout))"))
        }
        let request = WebSocketClientUpgrade.requestHead(url: settings.url, headers: settings.headers)
        let maxMessageBytes = settings.maxMessageBytes
        let tls = settings.tls
        let url = settings.url
        let connecting = dial { channel in
            channel.eventLoop.makeCompletedFuture {
                let sync = channel.pipeline.syncOperations
                if let tls {
                    let isIP = (try? SocketAddress(ipAddress: url.host, port: 0)) != nil
                    try sync.addHandler(try NIOSSLClientHandler(context: tls, serverHostname: isIP ? nil : url.host))
                }
                // In front of the HTTP handlers, so TLS and socket errors of the upgrade
                // phase arrive with their reason intact; the frame handler takes over after.
                try sync.addHandler(ConnectionEventsHandler(
                    onInactive: { me.value.channelWentInactive() },
                    onError: { error in me.value.fail(ConnectionFailure(.transport, Self.describe(error))) }),
                    name: Self.eventsHandlerName)
                let upgraded = try WebSocketClientUpgrade.configure(
                    sync, request: request, maxMessageBytes: maxMessageBytes,
                    upgraded: { channel in try me.value.installFrameHandler(channel) },
                    refused: { failure in me.value.fail(failure) })
                upgraded.whenComplete { result in
                    switch result {
                    case .success(true): me.value.upgradeDone()
                    case .success(false): break  // refused: UpgradeRefusalHandler reports the status
                    case .failure(let error): me.value.fail(ConnectionFailure(.transport, "upgrade failed: \(error)"))
                    }
                }
            }
        }
        connecting.whenComplete { result in
            let connection = me.value
            switch result {
            case .success(let channel):
                if connection.phase == .closed {
                    channel.close(promise: nil)
                    return
                }
                connection.channel = channel
                connection.phase = .upgrading
                connection.timeline.connected = connection.now()
            case .failure(let error):
                connection.fail(ConnectionFailure(.transport, "connect to \(url.host):\(url.port) failed: \(Self.describe(error))"))
            }
        }
    }

    /// The daemon's dial: TCP from `ClientBootstrap` on `loop`, under the connect timeout.
    private static func bootstrap(_ settings: UpstreamConnectionSettings, on loop: any EventLoop) -> Dial {
        { initialize in
            let url = settings.url
            let bootstrap = ClientBootstrap(group: loop)
                .connectTimeout(.nanoseconds(settings.connectTimeout.nanoseconds))
                // A TCP-level option: `.socketOption(.tcp_nodelay)` would be SOL_SOCKET option 1,
                // SO_DEBUG, which needs CAP_NET_ADMIN and left Nagle on (see test_socket_options.py).
                .channelOption(.tcpOption(.tcp_nodelay), value: 1)
                .channelOption(.writeBufferWaterMark, value: .init(low: 32 * 1024, high: 128 * 1024))
                .channelInitializer(initialize)
            // An address literal needs no resolver (and no Happy Eyeballs delays); a name does.
            if let address = try? SocketAddress(ipAddress: url.host, port: url.port) {
                return bootstrap.connect(to: address)
            }
            return bootstrap.connect(host: url.host, port: url.port)
        }
    }

    static let eventsHandlerName = "tether.connection-events"

    /// A 101 with the right key: the frame handler goes in behind NIO's frame codec and takes
    /// over the reports of inactivity and errors. Runs while the upgrader still holds any bytes
    /// that came after the head; they reach the frame handler next.
    private func installFrameHandler(_ channel: any Channel) throws {
        guard phase == .upgrading || phase == .connecting else { return }
        let pipeline = channel.pipeline.syncOperations
        try pipeline.addHandler(WebSocketFrameHandler(sink: self, maxMessageBytes: settings.maxMessageBytes))
        pipeline.removeHandler(name: Self.eventsHandlerName, promise: nil)
        phase = .open
        timeline.upgraded = now()
    }

    /// The upgrader is done and passes writes on (during the upgrade it refuses them), so the
    /// session may send now; frames that came with the 101 are delivered right after this.
    private func upgradeDone() {
        guard phase == .open else { return }
        owner?.connectionUpgraded(self)
    }

    /// The session is usable: the handshake deadline is met, pings begin.
    func markReady() {
        guard !ready, phase == .open else { return }
        ready = true
        timeline.ready = now()
        handshakeTimer?.cancel()
        handshakeTimer = nil
        startPingTimer()
    }

    private func startPingTimer() {
        let me = NIOLoopBound(self, eventLoop: loop)
        let interval = TimeAmount.nanoseconds(settings.pingInterval.nanoseconds)
        pingTimer = loop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in me.value.sendPing(probeTimeout: nil) }
    }

    // MARK: Sending

    @discardableResult
    func send(_ message: UpstreamMessage, flush: Bool = true) -> Bool {
        guard phase == .open, let channel else { return false }
        let frame: WebSocketFrame
        switch message {
        case .text(let bytes): frame = makeFrame(.text, bytes, channel.allocator)
        case .binary(let bytes): frame = makeFrame(.binary, bytes, channel.allocator)
        }
        if flush {
            channel.writeAndFlush(frame, promise: nil)
        } else {
            channel.write(frame, promise: nil)
        }
        return true
    }

    func flush() { channel?.flush() }

    private func makeFrame(_ opcode: WebSocketOpcode, _ bytes: [UInt8], _ allocator: ByteBufferAllocator) -> WebSocketFrame {
        var buffer = allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        return WebSocketFrame(fin: true, opcode: opcode, maskKey: maskingKeys.key(), data: buffer)
    }

    /// An extra ping whose pong must come within `timeout`, to test the path right now. Also
    /// resumes regular pings after `suspendLiveness`.
    func probe(timeout: Duration) {
        // The pong must be readable: a probe reads again (flow control pauses again after the
        // next reply chunk if the speaker is still full).
        networkSuspended = false
        resumeReading()
        if ready && pingTimer == nil && phase == .open { startPingTimer() }
        sendPing(probeTimeout: timeout)
    }

    /// A ping now, outside the regular cadence: its pong acknowledges everything written so far.
    func pingNow() {
        sendPing(probeTimeout: nil)
    }

    /// The network is down: no pings (nothing can answer them), no verdicts, until `probe`.
    /// Reading again (`resumeReading`, a parse coming back) does not end this.
    func suspendLiveness() {
        networkSuspended = true
        stopLiveness()
    }

    /// No pings, no verdicts; the pings out are forgotten, their silence says nothing now.
    private func stopLiveness() {
        pingTimer?.cancel()
        pingTimer = nil
        pingDeadlineTimer?.cancel()
        pingDeadlineTimer = nil
        pings.forgetOutstanding()
    }

    /// Stops reading the socket (TCP back-pressure on the brain) while the speaker catches up.
    func pauseReading() {
        guard phase == .open, !readingPaused else { return }
        readingPaused = true
        updateReading()
    }

    func resumeReading() {
        guard readingPaused else { return }
        readingPaused = false
        updateReading()
    }

    /// Reads while neither the downlink nor a parse holds it back. A pong would wait behind the
    /// unread data, so liveness is suspended while not reading (our own not-reading must not
    /// look like a dead peer) and the next regular ping proves the peer alive again after.
    private func updateReading() {
        guard phase == .open, let channel else { return }
        let wanted = !readingPaused && !inbound.isParsing
        guard wanted != reading else { return }
        reading = wanted
        channel.setOption(ChannelOptions.autoRead, value: wanted).whenFailure { _ in }
        if wanted {
            channel.read()
            if ready && pingTimer == nil && !networkSuspended { startPingTimer() }
        } else {
            stopLiveness()
        }
    }

    private func sendPing(probeTimeout: Duration?) {
        guard phase == .open, let channel else { return }
        var rng = SystemRandomNumberGenerator()
        let payload: [UInt8] = (0..<8).map { _ in rng.next() }
        let mark = owner?.uplinkMark(for: self) ?? 0
        pings.sent(payload: payload, mark: mark, now: now(), probeTimeout: probeTimeout)
        var buffer = channel.allocator.buffer(capacity: 8)
        buffer.writeBytes(payload)
        channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .ping, maskKey: maskingKeys.key(), data: buffer), promise: nil)
        armPingDeadline()
    }

    /// Checks the pings when their verdict may change: at the first deadline after a ping went
    /// out or a pong came (at once if one has passed), or, after a verdict taken at `checked`,
    /// at the first deadline after that.
    private func armPingDeadline(after checked: MonoTime? = nil) {
        pingDeadlineTimer?.cancel()
        pingDeadlineTimer = nil
        let next = if let checked { pings.nextDeadline(after: checked) } else { pings.nextDeadline }
        guard let deadline = next else { return }
        let me = NIOLoopBound(self, eventLoop: loop)
        let delay = max(0, (deadline - now()).nanoseconds)
        pingDeadlineTimer = loop.scheduleTask(in: .nanoseconds(delay + 1_000_000)) { me.value.checkPings() }
    }

    private func checkPings() {
        let checked = now()
        switch pings.verdict(now: checked) {
        case .alive: armPingDeadline(after: checked)
        case .missedOne: sendPing(probeTimeout: nil)
        case .dead: fail(ConnectionFailure(.network, "no answer to two pings"))
        case .probeFailed: fail(ConnectionFailure(.network, "probe unanswered"))
        }
    }

    // MARK: Closing

    /// Closes on purpose: a close frame at once, then up to `closeWait` for the peer's answer.
    /// The owner hears nothing more from this connection.
    func close(code: CloseCode) {
        silenced = true
        switch phase {
        case .closed, .closing:
            return
        case .connecting, .upgrading:
            teardown()
        case .open:
            phase = .closing
            stopTimers()
            guard let channel else { return teardown() }
            let frame = WebSocketFrameHandler.closeFrame(code: code.rawValue, reason: "", allocator: channel.allocator)
            channel.writeAndFlush(frame, promise: nil)
            let me = NIOLoopBound(self, eventLoop: loop)
            closeTimer = loop.scheduleTask(in: .nanoseconds(settings.closeWait.nanoseconds)) { me.value.teardown() }
        }
    }

    /// Drops the connection with a TCP reset: no close frame, and no retransmissions left
    /// behind in the kernel. For a dead link, where nothing would arrive anyway.
    func abort() {
        silenced = true
        guard phase != .closed else { return }
        stopTimers()
        phase = .closed
        guard let channel else { return }
        guard let provider = channel as? any SocketOptionProvider else {
            channel.close(promise: nil)
            return
        }
        // SO_LINGER with a zero timeout makes close() send a reset and free the socket.
        provider.unsafeSetSocketOption(level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(SO_LINGER),
                                       value: linger(l_onoff: 1, l_linger: 0))
            .whenComplete { _ in channel.close(promise: nil) }
    }

    /// Completes when the connection is fully closed.
    func closedFuture() -> EventLoopFuture<Void> {
        guard let channel, phase != .closed else { return loop.makeSucceededVoidFuture() }
        return channel.closeFuture
    }

    private func fail(_ failure: ConnectionFailure, closeChannel: Bool = true) {
        guard phase != .closed else { return }
        let report = !silenced
        silenced = true
        teardown(closeChannel: closeChannel)
        if report { owner?.connection(self, ended: failure) }
    }

    private func teardown(closeChannel: Bool = true) {
        stopTimers()
        phase = .closed
        if closeChannel { channel?.close(promise: nil) }
    }

    private func stopTimers() {
        handshakeTimer?.cancel()
        handshakeTimer = nil
        pingTimer?.cancel()
        pingTimer = nil
        pingDeadlineTimer?.cancel()
        pingDeadlineTimer = nil
        closeTimer?.cancel()
        closeTimer = nil
    }

    private func channelWentInactive() {
        if phase == .closing || silenced {
            stopTimers()
            phase = .closed
            return
        }
        // NIO reads up to the end of the stream whatever autoRead says: messages (and a close)
        // that came before it may still be out being parsed.
        if phase == .open, !inbound.isEmpty {
            tcpEndedBehindMessages = true
            return
        }
        fail(ConnectionFailure(.transport, "connection closed without a close frame"))
    }

    // MARK: WebSocketFrameSink

    func webSocketReceived(text: [UInt8]) {
        guard phase == .open, !silenced else { return }
        handle(inbound.arrived(text: text))
    }

    func webSocketReceived(binary: [UInt8]) {
        guard phase == .open, !silenced else { return }
        handle(inbound.arrived(binary: binary))
    }

    private func handle(_ arrival: InboundMessageQueue.Arrival) {
        switch arrival {
        case .deliver(let messages):
            deliver(messages)
        case .queued:
            break
        case .parseAway(let ticket, let bytes):
            // Stop reading until it is back: what queues behind it stays within the socket's
            // buffers, and the brain feels TCP back-pressure instead.
            updateReading()
            let me = NIOLoopBound(self, eventLoop: loop)
            parsingPool.parse(bytes, resultOn: loop).whenSuccess { parsed in me.value.parsedAway(ticket: ticket, parsed) }
        }
    }

    private func parsedAway(ticket: UInt64, _ parsed: ParsedJSON) {
        guard phase == .open, !silenced else { return }
        deliver(inbound.parsed(ticket: ticket, parsed))
        updateReading()
        guard phase == .open, inbound.isEmpty else { return }
        if let close = peerCloseBehindMessages {
            peerCloseBehindMessages = nil
            webSocketPeerClosed(code: close.code, reason: close.reason)
        } else if tcpEndedBehindMessages {
            fail(ConnectionFailure(.transport, "connection closed without a close frame"))
        }
    }

    private func deliver(_ messages: [InboundMessage]) {
        for message in messages {
            guard phase == .open, !silenced else { return }
            owner?.connection(self, received: message)
        }
    }

    func webSocketReceived(pong payload: [UInt8]) {
        guard phase == .open else { return }
        switch pings.received(pong: payload, now: now()) {
        case .unmatched:
            break
        case .matched(let mark, let rtt, let answeredProbe):
            armPingDeadline()
            if !silenced { owner?.connection(self, acknowledged: mark, rtt: rtt, answeredProbe: answeredProbe) }
        }
    }

    /// The peer began the closing handshake (the answer to a close of ours arrives as
    /// `webSocketCloseAcknowledged`: the frame handler's machine tells the two apart).
    func webSocketPeerClosed(code: UInt16, reason: String) {
        if phase == .open, !inbound.isEmpty {
            peerCloseBehindMessages = (code, reason)
            return
        }
        // Answer the peer's close, then report why it went.
        if let channel {
            let frame = WebSocketFrameHandler.closeFrame(code: code == 1005 ? 1000 : code, reason: "", allocator: channel.allocator)
            channel.writeAndFlush(frame, promise: nil)
        }
        fail(.closed(code: code, reason: reason))
    }

    func webSocketCloseAcknowledged() {
        // The answer to our close (after a violation, the frame handler closes TCP itself).
        if phase == .closing { teardown() }
    }

    func webSocketViolation(code: UInt16, reason: String) {
        if !silenced { owner?.connectionViolation(self, code: code, reason: reason) }
        // The frame handler has sent the close frame and closes TCP once it is written.
        fail(ConnectionFailure(.transport, "protocol violation by upstream: \(reason) (closed with \(code))"), closeChannel: false)
    }

    func webSocketWritabilityChanged(_ writable: Bool) {
        if writable && !silenced { owner?.connectionWritable(self) }
    }

    func webSocketInactive() {
        channelWentInactive()
    }

    func webSocketError(_ error: any Error) {
        fail(ConnectionFailure(.transport, "connection error: \(Self.describe(error))"))
    }

    static func describe(_ error: any Error) -> String {
        if let connectionError = error as? NIOConnectionError, let first = connectionError.connectionErrors.first {
            return describe(first.error)
        }
        if let connectionError = error as? NIOConnectionError, let dns = connectionError.dnsAAAAError ?? connectionError.dnsAError {
            return "name resolution failed: \(describe(dns))"
        }
        if let ioError = error as? IOError { return String(cString: strerror(ioError.errnoCode)) }
        if let sslError = error as? NIOSSLError { return "TLS: \(sslError)" }
        if let sslError = error as? BoringSSLError { return "TLS: \(sslError)" }
        if error is ChannelError, case ChannelError.connectTimeout = error { return "connect timed out" }
        return String(describing: error)
    }
}

/// Tells the connection when TCP goes away or fails at any phase, including before the frame
/// handler exists (TLS errors surface here, with their reason intact).
private final class ConnectionEventsHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    private let onInactive: () -> Void
    private let onError: (any Error) -> Void
    init(onInactive: @escaping () -> Void, onError: @escaping (any Error) -> Void) {
        self.onInactive = onInactive
        self.onError = onError
    }

    func channelInactive(context: ChannelHandlerContext) {
        onInactive()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        onError(error)
        context.close(promise: nil)
    }
}

/// The phases of one connection attempt, for diagnosing slow connects.
struct ConnectTimeline: CustomStringConvertible {
    var started: MonoTime?
    var connected: MonoTime?
    var upgraded: MonoTime?
    var ready: MonoTime?

    var description: String {
        guard let started else { return "not started" }
        func ms(_ t: MonoTime?) -> String { t.map { "\((($0 - started).nanoseconds) / 1_000_000) ms" } ?? "-" }
        return "tcp \(ms(connected)), upgrade \(ms(upgraded)), ready \(ms(ready))"
    }
}
