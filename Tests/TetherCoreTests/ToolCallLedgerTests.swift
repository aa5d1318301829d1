import Testing
@testable import TetherCore

/// Pending tool calls on a manual clock (milliseconds).
@Suite struct ToolCallLedgerTests {
    static func t(_ ms: Int64) -> MonoTime { .milliseconds(ms) }

    @Test func anAnswerIsDeliveredToTheGenerationThatAsked() {
        var ledger = ToolCallLedger(timeout: .seconds(10))
        ledger.called("call_1", generation: 3, now: Self.t(0))
        #expect(ledger.nextDeadline == Self.t(10_000))
        #expect(ledger.answer("call_1") == .deliver(generation: 3))
        #expect(ledger.answer("call_1") == .unknown, "answered once")
        #expect(ledger.nextDeadline == nil)
    }

    @Test func anUnknownCallIsRefused() {
        var ledger = ToolCallLedger(timeout: .seconds(10))
        #expect(ledger.answer("never") == .unknown)
    }

    @Test func callsExpireAtTheirDeadlineOldestFirst() {
        var ledger = ToolCallLedger(timeout: .seconds(1))
        ledger.called("b", generation: 1, now: Self.t(200))
        ledger.called("a", generation: 1, now: Self.t(100))
        #expect(ledger.expire(now: Self.t(1099)).isEmpty)
        #expect(ledger.nextDeadline == Self.t(1100))
        #expect(ledger.expire(now: Self.t(1200)).map(\.callID) == ["a", "b"])
        #expect(ledger.count == 0)
        #expect(ledger.answer("a") == .unknown, "timed out")
    }

    @Test func aRepeatedCallIDStartsOver() {
        var ledger = ToolCallLedger(timeout: .seconds(1))
        ledger.called("x", generation: 1, now: Self.t(0))
        ledger.called("x", generation: 2, now: Self.t(800))
        #expect(ledger.expire(now: Self.t(1000)).isEmpty)
        #expect(ledger.answer("x") == .deliver(generation: 2))
    }

    @Test func aCallOfAnEndedSessionIsRefusedAsEndedAndStillTimesOut() {
        var ledger = ToolCallLedger(timeout: .seconds(1))
        ledger.called("old", generation: 1, now: Self.t(0))
        ledger.called("other", generation: 1, now: Self.t(0))
        ledger.called("new", generation: 2, now: Self.t(0))
        ledger.generationEnded(1)
        #expect(ledger.answer("old") == .sessionEnded)
        #expect(ledger.answer("new") == .deliver(generation: 2))
        let expired = ledger.expire(now: Self.t(1000))
        #expect(expired.map(\.callID) == ["other"])
        #expect(expired.first?.sessionEnded == true, "its output has nowhere to go")
    }

    @Test func stoppingForgetsEverything() {
        var ledger = ToolCallLedger(timeout: .seconds(1))
        ledger.called("a", generation: 1, now: Self.t(0))
        ledger.removeAll()
        #expect(ledger.nextDeadline == nil)
        #expect(ledger.expire(now: Self.t(5000)).isEmpty)
    }
}
