import CSystemd
import Glibc
import TetherCore

/// The systemd notify protocol through libsystemd's `sd_notify`. Without `NOTIFY_SOCKET`
/// (a developer running `tetherd` by hand) every call is a cheap no-op.
public struct SystemdNotifier: Sendable {
    public let enabled: Bool

    public init(environment: [String: String]) {
        enabled = !(environment["NOTIFY_SOCKET"] ?? "").isEmpty
    }

    public func ready() { send("READY=1") }

    public func stopping() { send("STOPPING=1") }

    /// `RELOADING=1` must carry the monotonic time so that systemd can order it against
    /// the `READY=1` that ends the reload.
    public func reloading() {
        let usec = MonoClock.now().nanoseconds / 1000
        send("RELOADING=1\nMONOTONIC_USEC=\(usec)")
    }

    public func status(_ line: String) {
        // STATUS= is one line: a newline would start a new assignment.
        let clean = line.map { $0 == "\n" || $0 == "\r" ? " " : $0 }
        send("STATUS=" + String(clean))
    }

    public func watchdogPing() { send("WATCHDOG=1") }

    private func send(_ state: String) {
        guard enabled else { return }
        _ = sd_notify(0, state)
    }

    /// systemd's watchdog period when it expects pings from this process: nil when the
    /// watchdog is off or `WATCHDOG_PID` names another process (`sd_watchdog_enabled`
    /// checks both).
    public static func watchdogPeriod() -> Duration? {
        var usec: UInt64 = 0
        guard sd_watchdog_enabled(0, &usec) > 0, usec > 0 else { return nil }
        return .microseconds(Int64(clamping: usec))
    }
}
