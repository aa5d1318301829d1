import Logging
import ServiceLifecycle
import TetherCore
import UnixSignals

/// Announces the daemon to systemd: READY=1 once every service runs, STOPPING=1 the moment a
/// shutdown begins. It is the last service in the group, so it is the first to hear of a
/// shutdown; the session, shut down next, sends its close frame right after.
public struct LifecycleService: Service {
    let notifier: SystemdNotifier
    let logger: Logger

    public init(notifier: SystemdNotifier, logger: Logger) {
        self.notifier = notifier
        self.logger = logger
    }

    public func run() async throws {
        notifier.ready()
        logger.notice("tetherd \(TetherVersion.current) ready")
        try? await gracefulShutdown()
        notifier.stopping()
        logger.notice("stopping")
    }
}

/// Runs the upstream session for the group: start, and on shutdown close the upstream at once.
public struct SessionRunner: Service {
    let session: SessionService
    public init(session: SessionService) { self.session = session }

    public func run() async throws {
        session.start()
        try? await gracefulShutdown()
        await session.stop()
    }
}

/// Serves the control socket until shutdown, then removes it. The socket is bound before the
/// group starts (a bind failure is a start-up error); a listener that closes on its own later
/// fails the group (`ComponentFailure`).
public struct ControlService: Service {
    public static let componentName = "control"

    let server: ControlServer
    let heartbeat: Heartbeat
    let interval: Duration

    public init(server: ControlServer, health: HealthRegistry, interval: Duration) {
        self.server = server
        self.heartbeat = health.register("control")
        self.interval = interval
    }

    public func run() async throws {
        let task = server.startHeartbeat(heartbeat, every: interval)
        let (server, heartbeat) = (self.server, self.heartbeat)
        try await superviseComponent(Self.componentName, ended: { await server.ended() }, stop: {
            task.cancel()
            heartbeat.retire()
            await server.stop()
        })
    }
}

/// SIGHUP reloads the configuration, as systemd's `ExecReload=kill -HUP $MAINPID` expects.
public struct ReloadService: Service {
    let supervisor: Supervisor
    public init(supervisor: Supervisor) { self.supervisor = supervisor }

    public func run() async throws {
        for await _ in await UnixSignalsSequence(trapping: .sighup).cancelOnGracefulShutdown() {
            _ = await supervisor.reload()
        }
    }
}
