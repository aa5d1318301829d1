import Logging
import NIOPosix
import Synchronization
import TetherCore

/// Answers control commands by steering the subsystems, reloads the configuration, and keeps
/// systemd's STATUS= line in step with what the session, network and audio report.
public final class Supervisor: ControlCommandHandler, Sendable {
    public struct Subsystems: Sendable {
        public var session: SessionService
        public var control: ControlServer?
        public var network: NetworkMonitor?
        public var networkWatched = false
        public var audio: AudioEngine?
        public init(session: SessionService) { self.session = session }
    }

    let configPath: String
    let configIsExplicit: Bool
    let environment: [String: String]
    let notifier: SystemdNotifier
    let levelSwitch: LogLevelSwitch
    let events: EventBus
    let health: HealthRegistry
    /// Where a reload reads files, parses YAML and builds the TLS context: blocking work that
    /// must not hold a thread of the concurrency pool (two on a 2-core robot) or an event loop.
    let blockingPool: NIOThreadPool
    let logger: Logger
    let startedAt = MonoClock.now()
    /// TETHER_TEST_FAULTS=1 at start-up, for tests only: enables `debug-fault`.
    let testFaults: Bool
    private let current: Mutex<DaemonConfiguration>
    private let subsystems: Mutex<Subsystems?> = Mutex(nil)
    private let lastStatusLine = Mutex("")
    private let reloading = Mutex(false)

    public init(configPath: String, configIsExplicit: Bool, environment: [String: String], initial: DaemonConfiguration,
                notifier: SystemdNotifier, levelSwitch: LogLevelSwitch, events: EventBus, health: HealthRegistry,
                blockingPool: NIOThreadPool, logger: Logger) {
        self.configPath = configPath
        self.configIsExplicit = configIsExplicit
        self.environment = environment
        self.testFaults = environment["TETHER_TEST_FAULTS"] == "1"
        self.current = Mutex(initial)
        self.notifier = notifier
        self.levelSwitch = levelSwitch
        self.events = events
        self.health = health
        self.blockingPool = blockingPool
        self.logger = logger
    }

    public func attach(_ subsystems: Subsystems) {
        self.subsystems.withLock { $0 = subsystems }
        // Levels change ten times a second and are not part of the line.
        events.subscribe(topics: [.session, .network, .audio], levels: false) { [weak self] _ in
            self?.refreshStatusLine()
        }
        refreshStatusLine()
    }

    private var parts: Subsystems? { subsystems.withLock { $0 } }

    public var configuration: DaemonConfiguration { current.withLock { $0 } }

    // MARK: Commands

    public func handle(_ command: ControlCommand, peer: PeerCredentials) async -> Result<JSONValue?, ControlError> {
        guard let parts else { return .failure(ControlError(.unavailable, "tetherd is still starting")) }
        let session = parts.session
        switch command {
        case .status:
            return .success(.object(await status()))
        case .subscribe:
            return .failure(ControlError(.internal, "subscribe is handled by the socket"))
        case .mute, .unmute, .volume:
            guard let audio = parts.audio else { return .failure(ControlError(.unavailable, "audio is not running")) }
            switch command {
            case .mute: audio.setMuted(true)
            case .unmute: audio.setMuted(false)
            case .volume(let level): audio.setVolume(level)
            default: break
            }
            logger.notice("audio: \(audio.isMuted ? "muted" : "unmuted"), volume \(audio.volume)")
            refreshStatusLine()
            return .success(["muted": .bool(audio.isMuted), "volume": .number(Double(audio.volume))])
        case .reconnect:
            await session.reconnect()
            return .success(nil)
        case .pause:
            await session.pause()
            return .success(nil)
        case .resume:
            await session.resume()
            return .success(nil)
        case .say(let text):
            return await session.say(text)
        case .interrupt:
            return await session.interrupt()
        case .toolResult(let callID, let output):
            return await session.toolResult(callID: callID, output: output)
        case .forget:
            await session.forget()
            return .success(nil)
        case .debugRotate:
            guard testFaults else { return .failure(ControlError(.unknownCommand, "unknown command \"debug-rotate\"")) }
            return await session.rotateNow()
        case .reload:
            return await reload()
        case .logLevel(let text):
            guard let level = ConfigLoader.parseLogLevel(text) else {
                return .failure(ControlError(.invalidArgument, "level must be one of trace, debug, info, notice, warning, error, critical"))
            }
            levelSwitch.level = level
            logger.notice("log level set to \(level)")
            return .success(["level": .string(level.rawValue)])
        case .debugStall(let loop, let seconds):
            guard testFaults else { return .failure(ControlError(.unknownCommand, "unknown command \"debug-stall\"")) }
            guard seconds > 0, seconds <= 3600 else { return .failure(ControlError(.invalidArgument, "seconds must be 0..3600")) }
            guard health.simulateStall(of: loop, for: .milliseconds(Int64(seconds * 1000))) else {
                return .failure(ControlError(.invalidArgument, "no critical loop named \(loop); loops are \(health.loops.joined(separator: ", "))"))
            }
            logger.warning("debug: heartbeats of \(loop) suppressed for \(seconds) s")
            return .success(nil)
        case .debugFault(let component):
            return injectFault(into: component, parts)
        }
    }

    // MARK: Test faults

    /// Components `debug-fault` can break, each the way a real fault would end it.
    static let faultableComponents = [NetworkMonitorService.componentName]

    private func injectFault(into component: String, _ parts: Subsystems) -> Result<JSONValue?, ControlError> {
        guard testFaults else { return .failure(ControlError(.unknownCommand, "unknown command \"debug-fault\"")) }
        switch component {
        case NetworkMonitorService.componentName:
            guard parts.network?.injectSocketFault() == true else {
                return .failure(ControlError(.unavailable, "the network monitor is not running (network.watch is false)"))
            }
            return .success(nil)
        default:
            return .failure(ControlError(.invalidArgument,
                                         "no component named \(component.prefix(64)); components are \(Self.faultableComponents.joined(separator: ", "))"))
        }
    }

    // MARK: Reload

    /// Re-reads the configuration. A bad file is reported and the running configuration kept.
    public func reload() async -> Result<JSONValue?, ControlError> {
        guard reloading.withLock({ r in defer { r = true }; return !r }) else {
            return .failure(ControlError(.conflict, "a reload is already running"))
        }
        defer { reloading.withLock { $0 = false } }
        notifier.reloading()
        defer { notifier.ready() }
        let next: DaemonConfiguration
        let (path, explicit, environment) = (configPath, configIsExplicit, self.environment)
        do {
            next = try await blockingPool.runIfActive {
                try DaemonConfiguration.load(path: path, explicit: explicit, environment: environment)
            }
        } catch let error as ConfigError {
            logger.error("reload refused, keeping the running configuration: \(error.description)")
            events.publish(.error(code: .configError, message: error.description))
            return .failure(ControlError(.invalidArgument, "configuration not reloaded: \(error.description)"))
        } catch {
            // Only an inactive pool (tetherd is exiting) gets here.
            return .failure(ControlError(.unavailable, "configuration not reloaded: \(error)"))
        }
        next.carryTokenCache(from: configuration)
        let previous = current.withLock { c in defer { c = next }; return c }
        for warning in next.warnings { logger.warning("\(warning)") }
        levelSwitch.level = next.config.log.level
        if next.config.control != previous.config.control {
            logger.warning("control socket settings change on restart only")
        }
        if let session = parts?.session { await session.apply(next.sessionSettings()) }
        parts?.audio?.reconfigure(next.config.audio)
        logger.notice("configuration reloaded from \(configPath)")
        refreshStatusLine()
        return .success(nil)
    }

    // MARK: Status

    public func status() async -> JSONObject {
        guard let parts else { return [:] }
        var result = await parts.session.status()
        result["network"] = .object(parts.network?.status ?? ["online": .null, "default_interface": .null, "watch": false])
        result["audio"] = .object(parts.audio?.status() ?? [
            "capture": ["state": "unavailable", "device": .null, "xruns": 0],
            "playback": ["state": "unavailable", "device": .null, "underruns": 0],
            "muted": false, "volume": .number(Double(configuration.config.audio.volume)),
        ])
        if let control = parts.control { result["control"] = .object(control.stats.json) }
        result["events"] = .object(events.statusJSON)
        result["uptime_s"] = .number(Double((MonoClock.now() - startedAt).milliseconds / 1000))
        result["version"] = .string(TetherVersion.current)
        return result
    }

    func refreshStatusLine() {
        guard let parts else { return }
        let online = parts.networkWatched ? parts.network?.view.online : nil
        let line = parts.session.statusLine(networkOnline: online, muted: parts.audio?.isMuted ?? false).text
        let changed = lastStatusLine.withLock { last in
            defer { last = line }
            return last != line
        }
        if changed { notifier.status(line) }
    }
}
