import Glibc
import Logging
import Synchronization
import NIOCore
import NIOPosix
import TetherCore

/// The local control socket: newline-delimited JSON over a Unix stream socket, for
/// `tetherctl` and the robot's own processes. Every peer is checked with `SO_PEERCRED`
/// before it may say anything.
public final class ControlServer: Sendable {
    public static let maxLineLength = 64 * 1024
    public static let connectionLimits = ControlAdmissions.Limits(perUID: 16, total: 128)

    let config: ControlConfig
    let group: any EventLoopGroup
    let commands: any ControlCommandHandler
    let events: EventBus
    let logger: Logger
    let policy: PeerAccessPolicy
    public let stats = ControlServerStats()
    private let listener = Mutex<(server: any Channel, ownsFile: Bool)?>(nil)
    private let connections = Mutex<[ObjectIdentifier: any Channel]>([:])
    /// Why the listening channel closed while nobody had asked it to.
    private let listenerFailure = OnceSignal<String>()

    public init(config: ControlConfig, group: any EventLoopGroup, commands: any ControlCommandHandler, events: EventBus, logger: Logger) {
        self.config = config
        self.group = group
        self.commands = commands
        self.events = events
        self.logger = logger
        self.policy = PeerAccessPolicy(groupName: config.group)
    }

    public func start() async throws {
        let path = config.socket
        if let groupName = config.group, policy.resolvedGroupID == nil {
            logger.warning("control.group \"\(groupName)\" does not exist; only root and the daemon's user may use the socket")
        }
        if let passed = ActivatedSocket.take(expectedPath: path) {
            let server = try await bootstrap().withBoundSocket(passed.descriptor).get()
            listener.withLock { $0 = (server, ownsFile: false) }
            watchListener(server)
            if passed.path != path {
                logger.warning("control.socket is \(path) but systemd passed \(passed.path); serving the one systemd passed")
            }
            logger.info("control socket ready (from systemd)", metadata: ["socket": .string(passed.path)])
            return
        }
        try ControlSocketFile.checkReplaceable(path)
        let temporary = path + ".new-\(getpid())"
        unlink(temporary)
        let server = try await bootstrap().bind(unixDomainSocketPath: temporary).get()
        do {
            try ControlSocketFile.applyPermissions(temporary, mode: config.mode, groupID: policy.resolvedGroupID)
            try ControlSocketFile.moveIntoPlace(temporary, path)
        } catch {
            try? await server.close()
            unlink(temporary)
            throw error
        }
        listener.withLock { $0 = (server, ownsFile: true) }
        watchListener(server)
        logger.info("control socket ready", metadata: ["socket": .string(path)])
    }

    /// `stop` lets go of the listener before closing it; a listener that closes while still
    /// held closed on its own (an accept error NIO could not recover from, the loop going away).
    private func watchListener(_ server: any Channel) {
        let id = ObjectIdentifier(server)
        server.closeFuture.whenComplete { [self] result in
            guard listener.withLock({ $0.map { ObjectIdentifier($0.server) == id } ?? false }) else { return }
            switch result {
            case .success: listenerFailure.signal("the control socket's listening channel closed")
            case .failure(let error): listenerFailure.signal("the control socket's listening channel closed: \(error)")
            }
        }
    }

    /// Resumes with the reason once the listening channel has closed without `stop`; with nil
    /// when the calling task is cancelled.
    public func ended() async -> String? {
        await listenerFailure.wait()
    }

    private func bootstrap() -> ServerBootstrap {
        ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .childChannelInitializer { [self] channel in
                self.initializeConnection(channel)
            }
    }

    public func stop() async {
        let taken = listener.withLock { c -> (server: any Channel, ownsFile: Bool)? in defer { c = nil }; return c }
        guard let (server, ownsFile) = taken else { return }
        // Subscribers hear what was published before the stop (the session's `stopping`).
        await events.flush(within: .milliseconds(200))
        try? await server.close()
        for client in connections.withLock({ Array($0.values) }) {
            try? await client.close()
        }
        // A socket systemd made is systemd's to remove: it keeps listening for the next start.
        if ownsFile { ControlSocketFile.remove(config.socket) }
    }

    /// Beats the control loop's heartbeat from the loop that serves clients, so a wedged loop
    /// shows up as a stale heartbeat.
    func startHeartbeat(_ heartbeat: Heartbeat, every interval: Duration) -> RepeatedTask {
        let loop = group.next()
        return loop.scheduleRepeatedTask(initialDelay: .zero, delay: .nanoseconds(interval.nanoseconds)) { _ in heartbeat.beat() }
    }

    private func initializeConnection(_ channel: any Channel) -> EventLoopFuture<Void> {
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(ControlAdmissionHandler(server: self))
        }
    }

    /// Decides, once the connection is active, whether this peer may talk to us; if so,
    /// installs the line protocol in place of the admission handler.
    /// Returns true when the line protocol was installed after `admission`.
    func admit(_ peer: PeerCredentials, context: ChannelHandlerContext, admission: ControlAdmissionHandler) -> Bool {
        let channel = context.channel
        guard policy.allows(peer) else {
            stats.record(.refusedPeer)
            logger.warning("control connection refused", metadata: ["peer_uid": "\(peer.uid)", "peer_pid": "\(peer.pid)"])
            refuse(channel, ControlError(.forbidden, "uid \(peer.uid) may not use this socket (needs root, the daemon's user, or group \(config.group ?? "-"))"))
            return false
        }
        let privileged = policy.isPrivileged(peer)
        switch stats.admit(uid: peer.uid, privileged: privileged) {
        case .admitted:
            break
        case .uidAtLimit:
            refuse(channel, ControlError(.busy, "uid \(peer.uid) has \(Self.connectionLimits.perUID) control connections open already; close some"))
            return false
        case .full:
            refuse(channel, ControlError(.busy, "too many control clients (\(Self.connectionLimits.total)); try again later"))
            return false
        }
        let key = ObjectIdentifier(channel)
        connections.withLock { $0[key] = channel }
        channel.closeFuture.whenComplete { [self] _ in
            stats.release(uid: peer.uid, privileged: privileged)
            _ = connections.withLock { $0.removeValue(forKey: key) }
        }
        do {
            let pipeline = channel.pipeline.syncOperations
            try pipeline.addHandler(ByteToMessageHandler(ControlLineDecoder(maxLength: Self.maxLineLength)), position: .after(admission))
            try pipeline.addHandler(ControlConnectionHandler(peer: peer, commands: commands, events: events, limits: .init(), stats: stats),
                                    position: .last)
            return true
        } catch {
            channel.close(promise: nil)
            return false
        }
    }

    /// `struct ucred` from <sys/socket.h>, which Glibc's module does not export without
    /// _GNU_SOURCE: pid, uid, gid, in that order.
    struct RawPeerCredentials: Sendable {
        var pid: Int32 = 0
        var uid: UInt32 = 0
        var gid: UInt32 = 0
    }

    private func refuse(_ channel: any Channel, _ error: ControlError) {
        var buffer = channel.allocator.buffer(capacity: 128)
        buffer.writeString(ControlResponse.failure(id: .null, error) + "\n")
        channel.writeAndFlush(buffer).whenComplete { _ in channel.close(promise: nil) }
    }
}

/// The first handler of every control connection: reads the peer's credentials with
/// `SO_PEERCRED` as soon as the connection is active and hands the verdict to the server.
/// Nothing the peer sends is read before that.
final class ControlAdmissionHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    private let server: ControlServer
    private var held: [NIOAny] = []

    init(server: ControlServer) { self.server = server }

    func channelActive(context: ChannelHandlerContext) {
        context.fireChannelActive()
        guard let provider = context.channel as? any SocketOptionProvider else {
            context.close(promise: nil)
            return
        }
        let credentials: EventLoopFuture<ControlServer.RawPeerCredentials> =
            provider.unsafeGetSocketOption(level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(SO_PEERCRED))
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        credentials.whenComplete { result in
            let (handler, context) = bound.value
            switch result {
            case .success(let cred):
                let peer = PeerCredentials(pid: cred.pid, uid: cred.uid, gid: cred.gid)
                guard handler.server.admit(peer, context: context, admission: handler) else { return }
                // Bytes that arrived while we decided go to the line decoder, then we step aside.
                for data in handler.held { context.fireChannelRead(data) }
                handler.held.removeAll()
                context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
            case .failure:
                context.close(promise: nil)
            }
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // Keep at most a little before the verdict; the line limit applies after it.
        if held.count < 16 { held.append(data) }
    }
}
