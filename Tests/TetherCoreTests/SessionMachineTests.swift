import Testing
@testable import TetherCore

/// Marble-style tests of the session's decisions on a manual clock: each step feeds one input
/// at a time `t` (milliseconds) and checks what the machine decided.
@Suite struct SessionMachineTests {
    static let settings = SessionMachine.Settings(
        grace: .seconds(3), failedGrace: .seconds(1),
        backoff: { var b = BackoffConfig(); b.initial = .milliseconds(500); b.max = .seconds(30); b.multiplier = 2; b.jitter = 0.2; return b }())

    static func t(_ ms: Int64) -> MonoTime { .milliseconds(ms) }

    /// Events only, without connect/close bookkeeping.
    static func events(_ actions: [SessionAction]) -> [SessionEvent] {
        actions.compactMap { if case .emit(let e) = $0 { return e } else { return nil } }
    }

    static func connects(_ actions: [SessionAction]) -> [UInt64] {
        actions.compactMap { if case .connect(let g) = $0 { return g } else { return nil } }
    }

    static func lostCount(_ actions: [SessionAction]) -> Int {
        events(actions).filter { if case .lost = $0 { return true } else { return false } }.count
    }

    /// A machine that went live at t=0 with generation 1.
    static func live(_ settings: SessionMachine.Settings = settings) -> SessionMachine {
        var m = SessionMachine(settings: settings)
        _ = m.start(now: t(0))
        _ = m.connected(generation: 1, now: t(0))
        return m
    }

    @Test func startConnectsAndGoesLive() {
        var m = SessionMachine(settings: Self.settings)
        let start = m.start(now: Self.t(0))
        #expect(Self.connects(start) == [1])
        #expect(m.state == .connecting)
        let live = m.connected(generation: 1, now: Self.t(120))
        #expect(m.state == .live)
        #expect(Self.events(live).contains(.live(generation: 1, afterMs: 120)))
        #expect(Self.events(live).contains(.stateChanged(from: .connecting, to: .live, reason: "connected")))
    }

    @Test func networkBlipInsideGraceIsOneBlipAndNoLoss() {
        var m = Self.live()
        var all: [SessionAction] = []
        all += m.networkWentOffline(now: Self.t(1000))
        #expect(m.state == .degraded)
        #expect(all.first == .suspend(generation: 1), "no pings into a dead link")
        #expect(Self.connects(all).isEmpty, "no attempts while offline")
        all += m.networkCameOnline(now: Self.t(2500))
        // The old connection is kept and probed rather than replaced.
        #expect(all.contains(.probe(generation: 1)))
        all += m.probeSucceeded(generation: 1, now: Self.t(2520))
        #expect(m.state == .live)
        let blips = Self.events(all).filter { if case .blip = $0 { return true } else { return false } }
        #expect(blips == [.blip(durationMs: 1520)])
        #expect(Self.lostCount(all) == 0)
        // The grace timer must not fire later.
        all += m.tick(now: Self.t(10_000))
        #expect(Self.lostCount(all) == 0)
    }

    @Test func transportLossRecoveredInsideFailedGraceIsABlip() {
        var m = Self.live()
        let loss = m.failed(generation: 1, ConnectionFailure(.transport, "reset"), now: Self.t(1000))
        #expect(Self.connects(loss) == [2], "a transport failure tries again at once")
        #expect(m.state == .degraded)
        let back = m.connected(generation: 2, now: Self.t(1300))
        #expect(Self.events(back).contains(.blip(durationMs: 300)))
        #expect(Self.events(back).contains(.live(generation: 2, afterMs: 300)))
        #expect(m.reconnects == 1)
    }

    @Test func outagePastGraceIsOneLossThenOneLive() {
        var m = Self.live()
        var all = m.networkWentOffline(now: Self.t(1000))
        all += m.tick(now: Self.t(3999))
        #expect(Self.lostCount(all) == 0)
        all += m.tick(now: Self.t(4000))
        #expect(Self.lostCount(all) == 1)
        #expect(m.state == .offline)
        // The kept connection is reset, not closed: a close frame cannot cross a dead link.
        #expect(all.contains(.abort(generation: 1)))
        #expect(!all.contains(.close(generation: 1, code: .goingAway)))
        // Its late failure report is stale and must not produce a second loss.
        all += m.failed(generation: 1, ConnectionFailure(.network, "no answer to two pings"), now: Self.t(6000))
        all += m.tick(now: Self.t(20_000))
        #expect(Self.connects(all).isEmpty, "no attempts while offline")
        let online = m.networkCameOnline(now: Self.t(21_000))
        #expect(Self.connects(online) == [2])
        let live = m.connected(generation: 2, now: Self.t(21_050))
        all += online + live
        #expect(Self.lostCount(all) == 1)
        #expect(Self.events(live).contains(.live(generation: 2, afterMs: 20_050)))
        #expect(!Self.events(live).contains { if case .blip = $0 { return true } else { return false } })
    }

    @Test func transportFailurePastFailedGraceReportsLostAndKeepsTrying() {
        var m = Self.live()
        var all = m.failed(generation: 1, ConnectionFailure(.transport, "closed"), now: Self.t(0))
        all += m.failed(generation: 2, ConnectionFailure(.transport, "refused"), now: Self.t(5))
        #expect(m.nextWakeup == Self.t(505), "backoff of 500ms after the failure (jitter centred at 0.5)")
        all += m.tick(now: Self.t(505))
        #expect(Self.connects(all) == [2, 3])
        all += m.failed(generation: 3, ConnectionFailure(.transport, "refused"), now: Self.t(510))
        all += m.tick(now: Self.t(1000))
        #expect(Self.lostCount(all) == 1)
        #expect(m.state == .reconnecting)
        #expect(Self.events(all).contains(.lost(reason: "closed")))
    }

    @Test func staleGenerationCallbacksAreDropped() {
        var m = Self.live()
        _ = m.failed(generation: 1, ConnectionFailure(.transport, "reset"), now: Self.t(0))
        // Generation 1 reports again (a duplicate disconnect callback): ignored.
        let duplicate = m.failed(generation: 1, ConnectionFailure(.transport, "reset again"), now: Self.t(1))
        #expect(duplicate.isEmpty)
        // An abandoned attempt that connects late is closed, not adopted.
        _ = m.reconnectRequested(now: Self.t(2))  // abandons 2, starts 3
        let late = m.connected(generation: 2, now: Self.t(3))
        #expect(late == [.close(generation: 2, code: .normal)])
        #expect(m.state == .connecting)
        #expect(m.staleInputs == 2)
    }

    @Test func pauseDuringReconnectingProducesNoSecondLoss() {
        var m = Self.live()
        var all = m.failed(generation: 1, ConnectionFailure(.transport, "reset"), now: Self.t(0))
        all += m.failed(generation: 2, ConnectionFailure(.transport, "refused"), now: Self.t(10))
        all += m.tick(now: Self.t(1000))
        #expect(m.state == .reconnecting)
        #expect(Self.lostCount(all) == 1)
        all += m.pause(now: Self.t(1100))
        #expect(m.state == .paused)
        all += m.tick(now: Self.t(60_000))
        #expect(Self.lostCount(all) == 1)
        #expect(m.nextWakeup == nil)
        // And a pause inside grace announces nothing at all.
        var n = Self.live()
        var more = n.networkWentOffline(now: Self.t(0))
        more += n.pause(now: Self.t(500))
        more += n.tick(now: Self.t(10_000))
        #expect(Self.lostCount(more) == 0)
        #expect(more.contains(.close(generation: 1, code: .normal)))
    }

    @Test func authRefusalRetriesNoFasterThanBackoffMax() {
        var m = SessionMachine(settings: Self.settings)
        _ = m.start(now: Self.t(0))
        let refused = m.failed(generation: 1, .httpStatus(401, reason: "Unauthorized"), now: Self.t(10), random: 0)
        #expect(m.nextWakeup! >= Self.t(10) + .seconds(30))
        #expect(Self.events(refused) == [.stateChanged(from: .connecting, to: .reconnecting, reason: "upgrade refused: HTTP 401 Unauthorized")])
        // A policy close of a live session is paced the same way.
        var n = Self.live()
        let actions = n.failed(generation: 1, .closed(code: 4001, reason: "policy"), now: Self.t(0), random: 0)
        #expect(Self.connects(actions).isEmpty)
        #expect(n.nextWakeup! >= Self.t(30_000) || n.nextWakeup == Self.t(1000))
        _ = n.tick(now: Self.t(1000))  // failed_grace passes first
        #expect(n.nextWakeup! >= Self.t(30_000))
    }

    @Test func backoffGrowsCapsAndResets() {
        var b = Backoff(config: Self.settings.backoff)
        let delays = (0..<10).map { _ in b.nextDelay(unit: 0.5).milliseconds }
        #expect(delays == [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000])
        let jittered = Backoff(config: Self.settings.backoff)
        var low = jittered, high = jittered
        #expect(low.nextDelay(unit: 0).milliseconds == 400)
        #expect(high.nextDelay(unit: 0.999999).milliseconds == 599)
        b.reset()
        #expect(b.nextDelay(unit: 0.5).milliseconds == 500)

        // In the machine: success resets the growth.
        var m = SessionMachine(settings: Self.settings)
        _ = m.start(now: Self.t(0))
        var now: Int64 = 0
        for g in UInt64(1)...UInt64(4) {
            _ = m.failed(generation: g, ConnectionFailure(.transport, "refused"), now: Self.t(now))
            now = m.nextWakeup!.nanoseconds / 1_000_000
            _ = m.tick(now: Self.t(now))
        }
        #expect(now == 500 + 1000 + 2000 + 4000)
        _ = m.connected(generation: 5, now: Self.t(now))
        _ = m.failed(generation: 5, ConnectionFailure(.transport, "reset"), now: Self.t(now + 10))
        _ = m.failed(generation: 6, ConnectionFailure(.transport, "refused"), now: Self.t(now + 20))
        #expect(m.nextWakeup == Self.t(now + 20 + 500))
    }

    @Test func networkOfflineAbandonsAttemptsAndOnlineConnectsAtOnce() {
        var m = SessionMachine(settings: Self.settings)
        _ = m.start(now: Self.t(0))
        let off = m.networkWentOffline(now: Self.t(10))
        #expect(off.contains(.close(generation: 1, code: .normal)))
        #expect(m.state == .offline)
        #expect(m.nextWakeup == nil)
        let on = m.networkCameOnline(now: Self.t(5000))
        #expect(Self.connects(on) == [2])
        #expect(m.state == .reconnecting)
    }

    @Test func probeFailureWhileLiveReconnectsAtOnce() {
        var m = Self.live()
        let change = m.networkChanged(now: Self.t(100))
        #expect(change == [.probe(generation: 1)])
        let failed = m.failed(generation: 1, ConnectionFailure(.network, "probe unanswered"), now: Self.t(2100))
        #expect(Self.connects(failed) == [2])
        #expect(m.state == .degraded)
    }

    @Test func reconnectCommandForcesAFreshSession() {
        var m = Self.live()
        let actions = m.reconnectRequested(now: Self.t(100))
        #expect(actions.first == .close(generation: 1, code: .normal))
        #expect(Self.connects(actions) == [2])
        #expect(m.state == .connecting)
        #expect(Self.lostCount(actions) == 0)
    }

    @Test func stopClosesWithGoingAway() {
        var m = Self.live()
        let actions = m.stop(now: Self.t(5))
        #expect(actions.contains(.close(generation: 1, code: .goingAway)))
        #expect(m.state == .stopping)
        #expect(m.stop(now: Self.t(6)).isEmpty)
    }

    @Test func refusedAndClosedFailuresAreClassified() {
        #expect(ConnectionFailure.httpStatus(403, reason: "").kind == .refused)
        #expect(ConnectionFailure.httpStatus(502, reason: "").kind == .transport)
        #expect(ConnectionFailure.closed(code: 1008, reason: "").kind == .refused)
        #expect(ConnectionFailure.closed(code: 4400, reason: "").kind == .refused)
        #expect(ConnectionFailure.closed(code: 1011, reason: "").kind == .transport)
    }
}
