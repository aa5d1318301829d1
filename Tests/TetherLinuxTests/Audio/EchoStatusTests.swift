import Testing
import TetherCore
@testable import TetherLinux

/// `status.audio.echo` as robot processes and `tetherctl status` read it.
@Suite struct EchoStatusTests {
    @Test func cancelShowsWhatTheCancellerSees() {
        var status = EchoStatus(mode: .cancel)
        #expect(status.json == ["mode": "cancel", "erle_db": 0, "delay_ms": nil, "converged": false])
        status.erleDB = 31.449
        status.delayMs = 220
        status.converged = true
        #expect(status.json == ["mode": "cancel", "erle_db": 31.4, "delay_ms": 220, "converged": true])
    }

    @Test func theOtherModesAreJustTheirName() {
        #expect(EchoStatus(mode: .gate).json == ["mode": "gate"])
        #expect(EchoStatus(mode: .none).json == ["mode": "none"])
    }

    @Test func aGateStandingInForTheCancellerSaysWhy() {
        #expect(EchoStatus(mode: .gate, cancelUnavailable: "no memory").json == ["mode": "gate", "cancel_unavailable": "no memory"])
    }
}
