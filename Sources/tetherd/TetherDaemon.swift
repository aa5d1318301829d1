import Glibc
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import TetherCore
import TetherLinux

/// `tetherd`: parse the command line, load the configuration, wire the services, run.
@main
struct TetherDaemon {
    static let commandLine = CommandSpec(
        name: "tetherd",
        abstract: "Keeps a robot's realtime voice session connected.",
        discussion: "Exit codes: 0 clean stop, 78 configuration error, 70 internal error, 64 bad command line.",
        options: [.value("config", "path", help: "Configuration file (default: /etc/tether/tether.yaml)."),
                  .flag("check-config", help: "Validate the configuration (and key files) and exit.")])

    let config: String?
    let checkConfig: Bool

    static func main() async {
        switch CommandLineFront.decide(Array(CommandLine.arguments.dropFirst()), spec: commandLine,
                                       version: TetherVersion.current, manSection: 8) {
        case .answer(let text):
            print(text, terminator: "")
        case .usageError(let text):
            writeAll(STDERR_FILENO, text)
            Glibc.exit(CommandLineFront.usageExitCode)
        case .run(let parsed):
            await TetherDaemon(config: parsed.value("config"), checkConfig: parsed.flag("check-config")).run()
        }
    }

    func run() async {
        // A vanished pipe reader (an ALSA `file "|cmd"` device, a FIFO) must be an error on
        // that device, not a signal that kills the daemon.
        signal(SIGPIPE, SIG_IGN)
        let environment = ProcessEnvironment.current()
        let path = config ?? ConfigFile.defaultPath
        let loaded: DaemonConfiguration
        do {
            loaded = try DaemonConfiguration.load(path: path, explicit: config != nil, environment: environment)
        } catch {
            Self.fail(error.description, code: .configuration)
        }
        if checkConfig {
            print("configuration OK: \(path)")
            return
        }

        let levelSwitch = LogLevelSwitch(loaded.config.log.level)
        LogSetup.bootstrap(useJournal: LogSetup.useJournal(target: loaded.config.log.target, environment: environment),
                           levelSwitch: levelSwitch)
        let logger = Logger(label: "tetherd")
        for warning in loaded.warnings { logger.warning("\(warning)") }

        let notifier = SystemdNotifier(environment: environment)
        let watchdogPeriod = SystemdNotifier.watchdogPeriod()
        let timing = WatchdogTiming(period: watchdogPeriod ?? .seconds(10))
        let events = EventBus()
        let health = HealthRegistry()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        // One thread for work neither the concurrency pool nor the event loop should do: a
        // reload's file reads and TLS set-up, parsing an upstream message too big for the loop.
        let blockingPool = NIOThreadPool(numberOfThreads: 1)
        blockingPool.start()

        // Mic periods go straight from the capture thread into the uplink stage; the session
        // sends them from there, on its loop.
        let sessionLoop = group.next()
        let sessionSettings = loaded.sessionSettings()
        let uplink = UplinkStage(limits: .init(sessionSettings.link.buffer), loop: sessionLoop)
        let audio = AudioEngine(config: loaded.config.audio, health: health, events: events, logger: Logger(label: "audio"),
                                heartbeatInterval: timing.heartbeatInterval, uplinkBatch: uplink.batch) { frame in
            uplink.captured(frame)
        }
        let session = SessionService(settings: sessionSettings, uplink: uplink, audio: audio, loop: sessionLoop,
                                     blockingPool: blockingPool, events: events, health: health, heartbeatInterval: timing.heartbeatInterval, logger: Logger(label: "session"))
        let supervisor = Supervisor(configPath: path, configIsExplicit: config != nil, environment: environment, initial: loaded,
                                    notifier: notifier, levelSwitch: levelSwitch, events: events, health: health,
                                    blockingPool: blockingPool, logger: Logger(label: "supervisor"))
        let control = ControlServer(config: loaded.config.control, group: group, commands: supervisor, events: events,
                                    logger: Logger(label: "control"))
        // rtnetlink decides when the session may spend attempts: offline pauses it at once,
        // online reconnects at once, a moved route or address makes it probe the live link.
        let network = NetworkMonitor(config: loaded.config.network, bus: events, health: health,
                                     heartbeatInterval: timing.heartbeatInterval, logger: Logger(label: "network")) { _, delta in
            switch delta.online {
            case false?: session.networkWentOffline()
            case true?: session.networkCameOnline()
            case nil: session.networkChanged()
            }
        }
        var parts = Supervisor.Subsystems(session: session)
        parts.control = control
        parts.network = network
        parts.audio = audio
        parts.networkWatched = loaded.config.network.watch
        supervisor.attach(parts)
        // Served only once the supervisor can answer: with socket activation, clients that
        // connected before tetherd started are waiting in the queue and are accepted at once
        // (they were told "tetherd is still starting").
        do {
            try await control.start()
        } catch {
            Self.fail("control.socket: cannot serve \(loaded.config.control.socket): \(error)", code: .configuration)
        }

        var services: [any Service] = []
        if let watchdogPeriod {
            logger.info("systemd watchdog every \(DurationText.format(watchdogPeriod)); pinging at half that while healthy")
            services.append(WatchdogService(timing: timing, health: health, notifier: notifier, logger: Logger(label: "watchdog")))
        }
        services.append(ControlService(server: control, health: health, interval: timing.heartbeatInterval))
        services.append(NetworkMonitorService(monitor: network))
        services.append(AudioService(engine: audio))
        services.append(SessionRunner(session: session))
        services.append(ReloadService(supervisor: supervisor))
        services.append(LifecycleService(notifier: notifier, logger: logger))

        // A service's run() lives as long as its component, so one that returns or throws means
        // its component ended: the others shut down in reverse order, as on SIGTERM (the session
        // still sends its close frame), and the group rethrows the first error.
        let configured = services.map {
            ServiceGroupConfiguration.ServiceConfiguration(service: $0, successTerminationBehavior: .gracefullyShutdownGroup,
                                                           failureTerminationBehavior: .gracefullyShutdownGroup)
        }
        var groupConfiguration = ServiceGroupConfiguration(
            services: configured, gracefulShutdownSignals: [.sigterm, .sigint], logger: Logger(label: "lifecycle"))
        groupConfiguration.maximumGracefulShutdownDuration = .milliseconds(1700)
        groupConfiguration.maximumCancellationDuration = .milliseconds(200)
        let serviceGroup = ServiceGroup(configuration: groupConfiguration)
        do {
            try await serviceGroup.run()
        } catch let failure as ComponentFailure {
            // One line, in the journal when that is where the log goes, for systemd to restart on.
            logger.error("\(failure.description)", metadata: ["component": .string(failure.component)])
            await control.stop()
            Glibc.exit(Failure.internal.rawValue)
        } catch {
            logger.critical("stopping after an internal error: \(error)")
            await control.stop()
            Self.fail("internal error: \(error)", code: .internal)
        }
        try? await blockingPool.shutdownGracefully()
        try? await group.shutdownGracefully()
    }

    enum Failure: Int32 {
        case configuration = 78
        case `internal` = 70
    }

    /// One line on stderr, written with write(2) so that nothing is left in a buffer, then exit.
    static func fail(_ message: String, code: Failure) -> Never {
        writeAll(STDERR_FILENO, "tetherd: \(message)\n")
        Glibc.exit(code.rawValue)
    }

    static func writeAll(_ fd: Int32, _ text: String) {
        var text = text
        text.withUTF8 { buffer in
            var offset = 0
            while offset < buffer.count {
                let n = write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { return }
                offset += n
            }
        }
    }
}
