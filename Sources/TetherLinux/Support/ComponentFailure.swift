/// A component of the daemon (a dedicated thread, a listening channel) ended while nobody had
/// asked it to. Its `Service.run()` throws this; the group shuts the other services down in
/// reverse order and tetherd exits 70 with this line, so that systemd restarts it. Without it
/// a dead component would go unnoticed until the watchdog, or forever where its heartbeat is
/// beaten by something else.
public struct ComponentFailure: Error, Sendable, Equatable, CustomStringConvertible {
    /// The component's name as the service group knows it (`network-monitor`, `audio`, `control`).
    public var component: String
    public var reason: String

    public init(component: String, reason: String) {
        self.component = component
        self.reason = reason
    }

    public var description: String { "component \(component) ended unexpectedly: \(reason)" }
}
