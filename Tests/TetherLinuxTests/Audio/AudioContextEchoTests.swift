import Logging
import Testing
import TetherCore
@testable import TetherLinux

/// The echo settings the capture and playback threads share: `cancel` whose canceller cannot
/// start falls back to the gate, says so in status, and stays there until new settings.
@Suite struct AudioContextEchoTests {
    private func context(_ config: AudioConfig) -> AudioContext {
        AudioContext(events: EventBus(), logger: Logger(label: "tether.audio.test"), health: HealthRegistry(),
                     heartbeatInterval: .seconds(1), uplinkBatch: .milliseconds(40), reopenBackoff: AudioEngine.defaultReopenBackoff,
                     config: config)
    }

    /// Whether the gate silences a period captured while the speaker plays.
    private func gateCloses(_ context: AudioContext) -> Bool {
        let now = MonoTime(nanoseconds: 1_000_000_000)
        return context.gate.withLock { gate in
            gate.speakerStarted(at: now)
            defer { gate.speakerStopped(at: now) }
            return gate.isClosed(start: now, duration: .milliseconds(20))
        }
    }

    @Test func aCancellerThatCannotStartLeavesTheGateClosingTheMic() {
        var config = AudioConfig()
        config.echo = .cancel
        let context = context(config)
        #expect(!gateCloses(context))
        let serial = context.echoSerial.load(ordering: .relaxed)

        context.cancellerUnavailable("speex_echo_state_init(480, 4800) failed")
        #expect(gateCloses(context))
        #expect(context.echoStatus.withLock { $0.json } ==
                ["mode": "gate", "cancel_unavailable": "speex_echo_state_init(480, 4800) failed"])

        // A reload with the same settings does not bring back a mode that cannot run.
        context.applyEcho(config)
        #expect(gateCloses(context))
        #expect(context.echoStatus.withLock { $0.mode } == .gate)
        #expect(context.echoSerial.load(ordering: .relaxed) == serial)

        // New settings try the canceller again (the capture thread remakes it on the serial).
        config.echoTail = .milliseconds(300)
        context.applyEcho(config)
        #expect(!gateCloses(context))
        #expect(context.echoStatus.withLock { $0.json } == ["mode": "cancel", "erle_db": 0, "delay_ms": nil, "converged": false])
        #expect(context.echoSerial.load(ordering: .relaxed) == serial + 1)
    }

    @Test func settingsThatChangeOnlyTheCancellerKeepItsStatus() {
        var config = AudioConfig()
        config.echo = .cancel
        let context = context(config)
        context.echoStatus.withLock { $0.erleDB = 30 }
        config.echoDelay = .milliseconds(40)
        context.applyEcho(config)
        #expect(context.echoStatus.withLock { $0.erleDB } == 30)
        config.echo = .gate
        context.applyEcho(config)
        #expect(gateCloses(context))
        #expect(context.echoStatus.withLock { $0.json } == ["mode": "gate"])
    }
}
