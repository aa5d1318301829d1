import Testing
import TetherCore
@testable import TetherLinux

/// The monitor's resync retries run on TetherCore's `Backoff` like every other retry: the
/// schedule it had as a hand-written formula (at once, then 100 ms doubling to 5 s).
@Suite struct NetworkMonitorSettingsTests {
    @Test func resyncRetriesDoubleFrom100msToTheCap() {
        let settings = NetworkMonitorSettings(ignoreInterfaces: [], debounce: .milliseconds(250), heartbeatInterval: .seconds(1))
        var backoff = Backoff(config: settings.retryBackoff)
        let delays = (0..<8).map { _ in backoff.nextDelay(unit: 0.5) }
        #expect(delays == [.milliseconds(100), .milliseconds(200), .milliseconds(400), .milliseconds(800),
                           .milliseconds(1600), .milliseconds(3200), .seconds(5), .seconds(5)])
        // No jitter: the random unit changes nothing.
        var other = Backoff(config: settings.retryBackoff)
        #expect(other.nextDelay(unit: 0) == .milliseconds(100) && other.nextDelay(unit: 0.99) == .milliseconds(200))
    }
}
