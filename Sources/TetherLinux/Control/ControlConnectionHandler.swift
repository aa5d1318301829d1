import NIOCore
import TetherCore

/// One control client: reads lines, answers them in order, and (once subscribed) streams
/// events. Bounded so that no client can stall or bloat the daemon: requests are answered
/// one at a time, output that the client does not read beyond `maxPendingBytes` ends the
/// connection, and a client that neither subscribes nor asks anything for `idleTimeout` is
/// closed.
final class ControlConnectionHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ControlLine
    typealias OutboundOut = ByteBuffer

    struct Limits {
        var maxPendingBytes = 1 << 20
        var idleTimeout: TimeAmount = .seconds(60)
    }

    private let peer: PeerCredentials
    private let commands: any ControlCommandHandler
    private let events: EventBus
    private let limits: Limits
    private let stats: ControlServerStats
    private var queue: [ControlLine] = []
    private var busy = false
    private var subscription: Int?
    private var pendingBytes = 0
    private var idleTimer: Scheduled<Void>?
    private var context: ChannelHandlerContext?
    private var closed = false

    init(peer: PeerCredentials, commands: any ControlCommandHandler, events: EventBus, limits: Limits, stats: ControlServerStats) {
        self.peer = peer
        self.commands = commands
        self.events = events
        self.limits = limits
        self.stats = stats
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        armIdleTimer()
    }

    func channelInactive(context: ChannelHandlerContext) {
        teardown()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        teardown()
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closed else { return }
        // A client may pipeline requests, but not without limit: past 64 waiting lines it is
        // only trying to make us buffer.
        guard queue.count < 64 else {
            stats.record(.rejectedFlood)
            write(ControlResponse.failure(id: .null, ControlError(.busy, "too many requests in flight")) + "\n")
            return
        }
        queue.append(unwrapInboundIn(data))
        armIdleTimer()
        processNext()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    private func processNext() {
        guard !busy, !closed, !queue.isEmpty, let context else { return }
        let item = queue.removeFirst()
        switch item {
        case .tooLong:
            stats.record(.lineTooLong)
            write(ControlResponse.failure(id: .null, ControlError(.lineTooLong, "line longer than 64 KiB discarded")) + "\n")
            processNext()
        case .line(let bytes):
            if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { processNext(); return }
            switch ControlRequest.decode(line: bytes) {
            case .failure(let failure):
                stats.record(.badRequest)
                write(ControlResponse.failure(id: failure.id, failure.error) + "\n")
                processNext()
            case .success(let request):
                if case .subscribe(let topics) = request.command {
                    subscribe(topics: topics)
                    write(ControlResponse.ok(id: request.id) + "\n")
                    processNext()
                    return
                }
                busy = true
                let loop = context.eventLoop
                let handler = NIOLoopBound(self, eventLoop: loop)
                let commands = self.commands
                let peer = self.peer
                Task {
                    let result = await commands.handle(request.command, peer: peer)
                    let line: String
                    switch result {
                    case .success(let value): line = ControlResponse.ok(id: request.id, result: value)
                    case .failure(let error): line = ControlResponse.failure(id: request.id, error)
                    }
                    loop.execute {
                        let me = handler.value
                        me.busy = false
                        me.write(line + "\n")
                        me.processNext()
                    }
                }
            }
        }
    }

    private func subscribe(topics: Set<EventTopic>) {
        guard let context else { return }
        if let subscription { events.unsubscribe(subscription) }
        idleTimer?.cancel()
        idleTimer = nil
        let loop = context.eventLoop
        let handler = NIOLoopBound(self, eventLoop: loop)
        subscription = events.subscribe(topics: topics) { event in
            let line = event.line + "\n"
            loop.execute { handler.value.deliver(line) }
        }
    }

    private func deliver(_ line: String) {
        guard !closed else { return }
        if pendingBytes + line.utf8.count > limits.maxPendingBytes {
            // The client stopped reading: keeping its backlog would grow without bound.
            stats.record(.slowConsumer)
            closeConnection()
            return
        }
        write(line)
    }

    private func write(_ text: String) {
        guard let context, !closed else { return }
        var buffer = context.channel.allocator.buffer(capacity: text.utf8.count)
        buffer.writeString(text)
        let size = buffer.readableBytes
        pendingBytes += size
        let promise = context.eventLoop.makePromise(of: Void.self)
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        promise.futureResult.whenComplete { _ in handler.value.pendingBytes -= size }
        context.writeAndFlush(wrapOutboundOut(buffer), promise: promise)
    }

    private func armIdleTimer() {
        guard let context, subscription == nil else { return }
        idleTimer?.cancel()
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        idleTimer = context.eventLoop.scheduleTask(in: limits.idleTimeout) {
            let me = handler.value
            guard me.subscription == nil, !me.busy else { return }
            me.stats.record(.idleClosed)
            me.closeConnection()
        }
    }

    private func closeConnection() {
        guard let context, !closed else { return }
        teardown()
        context.close(promise: nil)
    }

    private func teardown() {
        closed = true
        idleTimer?.cancel()
        idleTimer = nil
        if let subscription {
            events.unsubscribe(subscription)
            self.subscription = nil
        }
        queue.removeAll()
    }
}
