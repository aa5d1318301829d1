import ServiceLifecycle

/// Runs the network monitor in the daemon's `ServiceGroup`: start its thread, and on
/// shutdown stop it (the thread wakes at once and is joined). A socket that cannot be
/// opened fails the group at start-up, like any other resource the daemon needs.
public struct NetworkMonitorService: Service {
    let monitor: NetworkMonitor

    public init(monitor: NetworkMonitor) { self.monitor = monitor }

    public func run() async throws {
        try monitor.start()
        try? await gracefulShutdown()
        monitor.stop()
    }
}
