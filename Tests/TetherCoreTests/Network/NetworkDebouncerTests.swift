import Testing
@testable import TetherCore

/// Time is a plain value here: every test drives the debouncer by hand, without sleeping.
@Suite struct NetworkDebouncerTests {
    func ms(_ n: Int64) -> MonoTime { .milliseconds(n) }

    /// Holds the debouncer so that `#expect` can call its mutating methods.
    final class Driver {
        var debouncer: NetworkDebouncer
        init(holdOff: Duration) { debouncer = NetworkDebouncer(holdOff: holdOff) }
        func changed(now: MonoTime) -> Bool { debouncer.changed(now: now) }
        func tick(now: MonoTime) -> Bool { debouncer.tick(now: now) }
        var deadline: MonoTime? { debouncer.deadline }
    }

    @Test func leadingEdgeFiresImmediately() {
        let d = Driver(holdOff: .milliseconds(250))
        #expect(d.changed(now: ms(1000)))
        #expect(d.deadline == nil)
        #expect(!d.tick(now: ms(1300)))
    }

    @Test func burstIsCoalescedIntoOneEvaluationAtTheEndOfTheHoldOff() {
        let d = Driver(holdOff: .milliseconds(250))
        #expect(d.changed(now: ms(1000)))
        #expect(!d.changed(now: ms(1010)))
        #expect(!d.changed(now: ms(1100)))
        #expect(!d.changed(now: ms(1249)))
        #expect(d.deadline == ms(1250))
        #expect(!d.tick(now: ms(1249)))
        #expect(d.tick(now: ms(1250)))
        #expect(d.deadline == nil)
        #expect(!d.tick(now: ms(1260)))
    }

    @Test func aLateTickStillEvaluatesOnce() {
        let d = Driver(holdOff: .milliseconds(250))
        _ = d.changed(now: ms(0))
        _ = d.changed(now: ms(10))
        #expect(d.tick(now: ms(900)))
        #expect(!d.tick(now: ms(901)))
    }

    @Test func theCoalescedEvaluationOpensANewHoldOff() {
        // A flapping link is evaluated at most once per hold-off.
        let d = Driver(holdOff: .milliseconds(250))
        _ = d.changed(now: ms(0))
        _ = d.changed(now: ms(100))
        #expect(d.tick(now: ms(250)))
        #expect(!d.changed(now: ms(300)))
        #expect(d.deadline == ms(500))
        #expect(d.tick(now: ms(500)))
    }

    @Test func quietPeriodResetsTheLeadingEdge() {
        let d = Driver(holdOff: .milliseconds(250))
        #expect(d.changed(now: ms(0)))
        #expect(d.changed(now: ms(250)))
        #expect(!d.changed(now: ms(400)))
        #expect(d.tick(now: ms(500)))
        // Quiet from 500 to 750 and beyond: the next change is acted on at once again.
        #expect(d.changed(now: ms(2000)))
        #expect(d.deadline == nil)
    }

    @Test func zeroHoldOffAlwaysFires() {
        let d = Driver(holdOff: .zero)
        #expect(d.changed(now: ms(5)))
        #expect(d.changed(now: ms(5)))
        #expect(d.deadline == nil)
    }
}
