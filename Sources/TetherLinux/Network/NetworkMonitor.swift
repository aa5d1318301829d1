import Logging
import Synchronization
import TetherCore

/// Watches the network through rtnetlink (rule 7) and tells the session what changed.
///
/// A dedicated thread (not the Swift concurrency pool) polls a netlink socket. It reads
/// links, addresses and routes in full at start and whenever messages may have been lost,
/// folds every notification into a `NetworkSnapshot`, re-derives the `NetworkView`,
/// debounces (first change at once, a burst coalesced into one evaluation per `debounce`),
/// classifies the change and, when it matters, publishes `network.online`,
/// `network.offline` or `network.change` on the event bus and calls `onChange`.
///
/// The first evaluation after start is always reported (`delta.initial`, `online` set), so
/// the session learns whether it may connect. `onChange` runs on the monitor thread and
/// must return quickly: hand the news to the session and go. The loop beats heartbeat
/// "network" at least every `heartbeatInterval`; a stuck callback stops the beats.
///
/// Trouble the loop can ride out (lost notifications, failed dumps, a socket that errors) it
/// rides out, reopening the socket if need be. A descriptor that is no longer our socket (closed
/// or clobbered elsewhere in the process) or a poll(2) that fails cannot be ridden out: the
/// thread ends, and `ended()` says why, so that the daemon exits and systemd restarts it.
public final class NetworkMonitor: Sendable {
    public typealias ChangeHandler = @Sendable (NetworkView, NetworkDelta) -> Void

    /// The loop name in `HealthRegistry`.
    public static let loopName = "network"

    private struct Running: Sendable {
        var thread: DedicatedThread
        var wake: WakeChannel
        var heartbeat: Heartbeat
        /// Why the thread ended on its own; never set when it was asked to stop.
        var failure: OnceSignal<String>
    }

    private let config: NetworkConfig
    private let bus: EventBus
    private let health: HealthRegistry
    private let settings: NetworkMonitorSettings
    private let kindOf: NetworkSnapshot.KindLookup
    private let openSocket: @Sendable () throws -> NetlinkSocket
    private let logger: Logger
    private let onChange: ChangeHandler
    private let shared = NetworkMonitorShared()
    private let running = Mutex<Running?>(nil)

    /// - Parameters:
    ///   - config: `network:` from tether.yaml (`watch`, `ignore_interfaces`, `debounce`).
    ///     `probe_timeout` is the session's business: it bounds the probe `onChange` triggers.
    ///   - heartbeatInterval: the loop beats at least this often (`WatchdogTiming.heartbeatInterval`).
    ///   - kindLookup: Wi-Fi / Ethernet / other per interface; defaults to sysfs.
    ///   - openSocket: how to open the netlink socket; tests open it inside a namespace.
    public init(config: NetworkConfig, bus: EventBus, health: HealthRegistry, heartbeatInterval: Duration,
                kindLookup: NetworkSnapshot.KindLookup? = nil,
                openSocket: (@Sendable () throws -> NetlinkSocket)? = nil,
                logger: Logger = Logger(label: "tether.network"),
                onChange: @escaping ChangeHandler) {
        self.config = config
        self.bus = bus
        self.health = health
        self.settings = NetworkMonitorSettings(ignoreInterfaces: config.ignoreInterfaces, debounce: config.debounce,
                                               heartbeatInterval: max(heartbeatInterval, .milliseconds(1)))
        if let kindLookup {
            self.kindOf = kindLookup
        } else {
            let probe = InterfaceKindProbe()
            self.kindOf = { probe.kind(of: $0) }
        }
        self.openSocket = openSocket ?? { try NetlinkSocket() }
        self.logger = logger
        self.onChange = onChange
    }

    /// Opens the socket and starts the thread. With `watch: false` it does nothing: no
    /// thread, no heartbeat, and `status` says the network is not watched.
    /// Throws `NetlinkSocketError` when the socket cannot be opened.
    public func start() throws {
        guard config.watch else { return }
        try running.withLock { running in
            guard running == nil else { return }
            shared.state.withLock { $0.stopRequested = false }
            let socket = try openSocket()
            let wake: WakeChannel
            do { wake = try WakeChannel() } catch {
                socket.close()
                throw error
            }
            let heartbeat = health.register(NetworkMonitor.loopName)
            let failure = OnceSignal<String>()
            let (openSocket, settings, shared, bus, kindOf, logger, onChange) =
                (self.openSocket, self.settings, self.shared, self.bus, self.kindOf, self.logger, self.onChange)
            do {
                let thread = try DedicatedThread.start(name: "tether-network") {
                    let reason = NetworkMonitorLoop(socket: socket, openSocket: openSocket, wake: wake, settings: settings,
                                                    shared: shared, heartbeat: heartbeat, bus: bus, kindOf: kindOf,
                                                    logger: logger, onChange: onChange).run()
                    if let reason { failure.signal(reason) }
                }
                running = Running(thread: thread, wake: wake, heartbeat: heartbeat, failure: failure)
            } catch {
                heartbeat.retire()
                socket.close()
                throw error
            }
        }
    }

    /// Stops the thread and awaits its end (it wakes at once; `timeout` only bounds a thread
    /// stuck in a callback, which is then let go), then stops the heartbeat. Idempotent.
    public func stop(timeout: Duration = .seconds(1)) async {
        guard let current = running.withLock({ $0 }) else { return }
        shared.state.withLock { $0.stopRequested = true }
        current.wake.wake()
        if await !current.thread.finish(within: timeout) {
            logger.warning("network monitor thread did not stop within \(DurationText.format(timeout)); left to end on its own")
        }
        current.heartbeat.retire()
        running.withLock { $0 = nil }
    }

    /// Resumes with the reason once the monitor thread has ended on its own (see the type's
    /// comment); with nil when the calling task is cancelled. A stop that was asked for is not
    /// an end on its own: it never resumes this. Without a thread (`watch: false`, not started)
    /// there is nothing to end, and it waits for cancellation.
    public func ended() async -> String? {
        let failure = running.withLock { $0?.failure } ?? OnceSignal<String>()
        return await failure.wait()
    }

    /// Test-only (the `debug-fault network-monitor` control command, which exists only under
    /// TETHER_TEST_FAULTS=1): makes the loop break its own socket, as a stray close(2)
    /// elsewhere in the process would, so that the thread ends the way a real fault ends it.
    /// Returns false when no thread runs.
    func injectSocketFault() -> Bool {
        guard let current = running.withLock({ $0 }) else { return false }
        shared.state.withLock { $0.faultRequested = true }
        current.wake.wake()
        return true
    }

    /// The view as last evaluated (offline until the first dump is in).
    public var view: NetworkView { shared.state.withLock { $0.view } }

    /// Whether the first full read of the tables has been evaluated.
    public var isReady: Bool { shared.state.withLock { $0.ready } }

    public var stats: NetworkMonitorStats { shared.state.withLock { $0.stats } }

    /// `status.network`: `{online, default_interface, kind, addresses}`; with `watch: false`,
    /// `online` is null (unknown) and `watch` is false.
    public var status: JSONObject {
        guard config.watch else {
            var object = NetworkView.offline.statusJSON
            object["online"] = .null
            object["watch"] = false
            return object
        }
        return view.statusJSON
    }

    /// Interface name → usable, as the monitor last saw it. For tests that must know the
    /// monitor has caught up with a change before asserting what did not happen.
    var usableInterfaces: [String: Bool] { shared.state.withLock { $0.usable } }

    /// The view the snapshot gives right now, before debouncing.
    var derivedView: NetworkView? { shared.state.withLock { $0.derived } }
}
