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
    public static let maxClients = 32

    let config: ControlConfig
    let group: any EventLoopGroup
    let commands: any ControlCommandHandler
    let events: EventBus
    let logger: Logger
    let policy: PeerAccessPolicy
    public let stats = ControlServerStats()
    private let channel = Mutex<(any Channel)?>(nil)
    private let connections = Mutex<[ObjectIdentifier: any Channel]>([:])

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
        try ControlSocketFile.checkReplaceable(path)
        if let groupName = config.group, policy.resolvedGroupID == nil {
            logger.warning("control.group \"\(groupName)\" does not exist; only root and the daemon's user may use the socket")
        }
        let temporary = path + ".new-\(getpid())"
        unlink(temporary)
        let server = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .childChannelInitializer { [self] channel in
                self.initializeConnection(channel)
            }
            .bind(unixDomainSocketPath: temporary).get()
        do {
            try ControlSocketFile.applyPermissions(temporary, mode: config.mode, groupID: policy.resolvedGroupID)
            try ControlSocketFile.moveIntoPlace(temporary, path)
        } catch {
            try? await server.close()
            unlink(temporary)
            throw error
        }
        channel.withLock { $0 = server }
        logger.info("control socket ready", metadata: ["socket": .string(path)])
    }

    public func stop() async {
        let server = channel.withLock { c -> (any Channel)? in defer { c = nil }; return c }
        guard let server else { return }
        try? await server.close()
        for client in connections.withLock({ Array($0.values) }) {
            try? await client.close()
        }
        ControlSocketFile.remove(config.socket)
    }

    /// Beats the control loop's heartbeat from the loop that serves clients, so a wedged loop
    /// shows up as a stale heartbeat.
    func startHeartbeat(_ heartbeat: Heartbeat, every interval: Duration) -> RepeatedTask {
        let loop = group.next()
        return loop.scheduleRepeatedTask(initialDelay: .zero, delay: .nanoseconds(interval.nanoseconds)) { _ in heartbeat.beat() }
    }

    private func initializeConnection(_ channel: any Channel) -> EventLoopFuture<Void> {
        let loop = channel.eventLoop
        guard let provider = channel as? any SocketOptionProvider else {
            return channel.close()
        }
        let credentials: EventLoopFuture<RawPeerCredentials> = provider.unsafeGetSocketOption(level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(SO_PEERCRED))
        return credentials.flatMap { [self] cred -> EventLoopFuture<Void> in
            let peer = PeerCredentials(pid: cred.pid, uid: cred.uid, gid: cred.gid)
            guard policy.allows(peer) else {
                stats.record(.refusedPeer)
                logger.warning("control connection refused", metadata: ["peer_uid": "\(peer.uid)", "peer_pid": "\(peer.pid)"])
                return refuse(channel, ControlError(.forbidden, "uid \(peer.uid) may not use this socket (needs root, the daemon's user, or group \(config.group ?? "-"))"))
            }
            guard stats.claimSlot(limit: Self.maxClients) else {
                stats.record(.refusedBusy)
                return refuse(channel, ControlError(.busy, "too many control clients (\(Self.maxClients)); try again later"))
            }
            stats.record(.accepted)
            let key = ObjectIdentifier(channel)
            connections.withLock { $0[key] = channel }
            channel.closeFuture.whenComplete { [self] _ in
                stats.releaseSlot()
                _ = connections.withLock { $0.removeValue(forKey: key) }
            }
            return loop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(ControlLineDecoder(maxLength: Self.maxLineLength)))
                try channel.pipeline.syncOperations.addHandler(
                    ControlConnectionHandler(peer: peer, commands: commands, events: events, limits: .init(), stats: stats))
            }
        }
    }

    /// `struct ucred` from <sys/socket.h>, which Glibc's module does not export without
    /// _GNU_SOURCE: pid, uid, gid, in that order.
    struct RawPeerCredentials: Sendable {
        var pid: Int32 = 0
        var uid: UInt32 = 0
        var gid: UInt32 = 0
    }

    private func refuse(_ channel: any Channel, _ error: ControlError) -> EventLoopFuture<Void> {
        var buffer = channel.allocator.buffer(capacity: 128)
        buffer.writeString(ControlResponse.failure(id: .null, error) + "\n")
        return channel.writeAndFlush(buffer).flatMap { channel.close() }.recover { _ in }
    }
}
