import Testing
@testable import TetherCore

/// `Backoff` is the one retry schedule of the daemon: the session's reconnects, the audio
/// devices' reopens and the network monitor's resyncs. The random unit is injected.
@Suite struct BackoffTests {
    static func config(initial: Duration = .milliseconds(100), max: Duration = .seconds(1),
                       multiplier: Double = 2, jitter: Double = 0) -> BackoffConfig {
        var config = BackoffConfig()
        config.initial = initial
        config.max = max
        config.multiplier = multiplier
        config.jitter = jitter
        return config
    }

    @Test func growsByTheMultiplierUpToTheCap() {
        var backoff = Backoff(config: Self.config())
        let delays = (0..<6).map { _ in backoff.nextDelay(unit: 0.5) }
        #expect(delays == [.milliseconds(100), .milliseconds(200), .milliseconds(400), .milliseconds(800), .seconds(1), .seconds(1)])
        #expect(backoff.attempt == 6)
    }

    @Test func resetStartsOverAtTheInitialDelay() {
        var backoff = Backoff(config: Self.config())
        _ = backoff.nextDelay(unit: 0.5)
        _ = backoff.nextDelay(unit: 0.5)
        backoff.reset()
        #expect(backoff.attempt == 0)
        #expect(backoff.nextDelay(unit: 0.5) == .milliseconds(100))
    }

    @Test func jitterSpreadsEachDelayWithinItsBandAndNeverPastTheCap() {
        var low = Backoff(config: Self.config(jitter: 0.2))
        var high = Backoff(config: Self.config(jitter: 0.2))
        #expect(low.nextDelay(unit: 0) == .milliseconds(80))
        #expect(high.nextDelay(unit: 0.999_999).milliseconds == 119)
        for _ in 0..<5 {
            _ = low.nextDelay(unit: 0)
            _ = high.nextDelay(unit: 0.999_999)
        }
        #expect(low.nextDelay(unit: 0) == .milliseconds(800), "at the cap, jitter only shortens")
        #expect(high.nextDelay(unit: 0.999_999) == .seconds(1))
    }

    @Test func aMultiplierOfOneIsAFixedDelay() {
        var backoff = Backoff(config: Self.config(initial: .milliseconds(250), multiplier: 1))
        #expect((0..<4).map { _ in backoff.nextDelay(unit: 0.5) } == Array(repeating: .milliseconds(250), count: 4))
    }

    @Test func manyAttemptsDoNotOverflow() {
        var backoff = Backoff(config: Self.config(max: .seconds(30)))
        for _ in 0..<200 { _ = backoff.nextDelay(unit: 0.5) }
        #expect(backoff.nextDelay(unit: 0.5) == .seconds(30))
    }
}
