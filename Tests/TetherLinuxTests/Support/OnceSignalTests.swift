import Glibc
import Testing
import TetherCore
@testable import TetherLinux

/// `OnceSignal` and `DedicatedThread.finish(within:)`: how async code learns that a thread
/// ended without blocking a thread of the concurrency pool. Real threads, bounded waits.
///
/// The upper bounds are loose on purpose: other suites running beside this one block the
/// pool's threads with synchronous waits, which delays any async resumption by seconds. They
/// only have to tell "resumed" from "hung until the stuck thread's 30 s".
@Suite struct OnceSignalTests {
    static let resumed = Duration.seconds(8)

    @Test func aValueSetBeforeTheWaitIsThereAtOnce() async {
        let signal = OnceSignal<String>()
        #expect(signal.signal("gone"))
        #expect(await signal.wait() == "gone")
        #expect(await signal.wait(timeout: .seconds(5)) == "gone")
    }

    @Test func theFirstSignalWins() async {
        let signal = OnceSignal<Int>()
        #expect(signal.signal(1))
        #expect(!signal.signal(2))
        #expect(signal.value == 1)
    }

    @Test func aWaiterResumesWhenAnotherThreadSignals() async throws {
        let signal = OnceSignal<String>()
        let thread = try DedicatedThread.start(name: "tether-test") {
            usleep(20_000)
            signal.signal("from the thread")
        }
        let before = MonoClock.now()
        #expect(await signal.wait(timeout: .seconds(5)) == "from the thread")
        #expect(MonoClock.now() - before < Self.resumed)
        #expect(await thread.finish(within: .seconds(5)))
    }

    @Test func theBoundEndsTheWaitWithNil() async {
        let signal = OnceSignal<String>()
        let before = MonoClock.now()
        #expect(await signal.wait(timeout: .milliseconds(50)) == nil)
        let took = MonoClock.now() - before
        #expect(took >= .milliseconds(50) && took < Self.resumed, "\(took)")
        // A later signal still reaches later waiters.
        signal.signal("late")
        #expect(await signal.wait() == "late")
    }

    @Test func cancellingTheWaitingTaskEndsTheWaitWithNil() async {
        let signal = OnceSignal<String>()
        let waiter = Task { await signal.wait() }
        waiter.cancel()
        #expect(await waiter.value == nil)
        // Cancelled before it even waited: also nil, at once.
        let early = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return await signal.wait()
        }
        #expect(await early.value == nil)
    }

    @Test func finishLetsAStuckThreadGoAfterTheBound() async throws {
        let release = OnceSignal<Void>()
        let stuck = Monitor(false)
        let thread = try DedicatedThread.start(name: "tether-stuck") {
            _ = stuck.wait(until: MonoClock.now() + .seconds(30)) { $0 ? true : nil }
            release.signal(())
        }
        let before = MonoClock.now()
        #expect(await !thread.finish(within: .milliseconds(100)), "a stuck thread is let go, not joined")
        #expect(MonoClock.now() - before < Self.resumed)
        // Detached, it still ends on its own once unstuck.
        stuck.withLock { $0 = true }
        stuck.notifyAll()
        #expect(await release.wait(timeout: .seconds(5)) != nil)
    }

    @Test func finishJoinsAThreadThatEnds() async throws {
        let thread = try DedicatedThread.start(name: "tether-short") { usleep(10_000) }
        #expect(await thread.finish(within: .seconds(1)))
    }
}
