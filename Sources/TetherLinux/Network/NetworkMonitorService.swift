import ServiceLifecycle

/// Runs the network monitor in the daemon's `ServiceGroup` for as long as its thread runs: a
/// socket that cannot be opened fails the group at start-up, like any other resource the daemon
/// needs; a thread that ends on its own later fails it too (`ComponentFailure`), and on shutdown
/// the thread is stopped and its end awaited.
public struct NetworkMonitorService: Service {
    public static let componentName = "network-monitor"

    let monitor: NetworkMonitor

    public init(monitor: NetworkMonitor) { self.monitor = monitor }

    public func run() async throws {
        try monitor.start()
        let monitor = self.monitor
        try await superviseComponent(Self.componentName, ended: { await monitor.ended() }, stop: { await monitor.stop() })
    }
}
