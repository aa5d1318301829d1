import Logging
import ServiceLifecycle
import TetherCore

/// Sends `WATCHDOG=1` every half period, but only while every critical loop has shown
/// progress recently (rule 10). A stuck loop stops the pings and systemd restarts us; this
/// service on its own proves nothing but that a timer runs, so it never pings blindly.
public struct WatchdogService: Service {
    let timing: WatchdogTiming
    let health: HealthRegistry
    let notifier: SystemdNotifier
    let logger: Logger

    public init(timing: WatchdogTiming, health: HealthRegistry, notifier: SystemdNotifier, logger: Logger) {
        self.timing = timing
        self.health = health
        self.notifier = notifier
        self.logger = logger
    }

    public func run() async throws {
        var wasHealthy = true
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let verdict = health.verdict(maxAge: timing.maxHeartbeatAge)
            if verdict.healthy {
                notifier.watchdogPing()
                if !wasHealthy { logger.notice("all critical loops healthy again; watchdog pings resume") }
            } else if wasHealthy {
                logger.error("watchdog pings withheld: no progress from \(verdict.stale.joined(separator: ", "))",
                             metadata: ["stale_loops": .string(verdict.stale.joined(separator: ","))])
            }
            wasHealthy = verdict.healthy
            // The wait ends the moment a shutdown begins: a plain sleep would hold the whole
            // group until its graceful-shutdown bound (systemd's `stop` took 1.75 s this way).
            let interval = timing.pingInterval
            _ = try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }
}
