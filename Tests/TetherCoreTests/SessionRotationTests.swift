import Testing
@testable import TetherCore

/// Make-before-break rotation (rule 13) on a manual clock: the next session is dialled while the
/// live one stays live, switched to at a quiet moment (or the deadline) once the old one has
/// acknowledged its mic audio, and nothing of it looks like a loss.
@Suite struct SessionRotationTests {
    static let schedule = RotationSchedule(after: .seconds(8), deadline: .seconds(12))
    static let settings = SessionMachine.Settings(
        grace: .seconds(3), failedGrace: .seconds(1),
        backoff: { var b = BackoffConfig(); b.initial = .milliseconds(500); b.max = .seconds(30); b.multiplier = 2; b.jitter = 0; return b }(),
        rotation: schedule, handoverTimeout: .seconds(2))

    static func t(_ ms: Int64) -> MonoTime { .milliseconds(ms) }
    static func events(_ a: [SessionAction]) -> [SessionEvent] { SessionMachineTests.events(a) }
    static func connects(_ a: [SessionAction]) -> [UInt64] { SessionMachineTests.connects(a) }

    static func noLossOrBlip(_ actions: [SessionAction]) -> Bool {
        !events(actions).contains { e in
            switch e {
            case .lost, .blip: return true
            case .stateChanged(_, let to, _): return to != .live
            default: return false
            }
        }
    }

    /// Live with generation 1 since t=0, the conversation not quiet.
    static func live() -> SessionMachine { SessionMachineTests.live(settings) }

    @Test func dueSessionDialsItsSuccessorAndSwitchesAtTheQuietMoment() {
        var m = Self.live()
        var all: [SessionAction] = []
        #expect(m.nextWakeup == Self.t(8000))
        all += m.tick(now: Self.t(7999))
        #expect(Self.connects(all).isEmpty)
        all += m.tick(now: Self.t(8000))
        #expect(Self.connects(all) == [2])
        #expect(m.isDialling(2) && !m.isDialling(1), "credentials and dialing go ahead for the successor")
        #expect(m.state == .live && m.connectionGeneration == 1, "the old session stays live while the next is dialled")
        all += m.connected(generation: 2, now: Self.t(8100))
        #expect(m.awaitingQuietMoment && !m.isDialling(2))
        #expect(m.connectionGeneration == 1)
        #expect(m.nextWakeup == Self.t(12_000), "the deadline")
        let quiet = m.quietMoment(now: Self.t(9000))
        all += quiet
        #expect(quiet == [.drainUplink(generation: 1)])
        #expect(m.drainingGeneration == 1)
        let switched = m.uplinkDrained(generation: 1, now: Self.t(9020))
        all += switched
        #expect(switched == [.close(generation: 1, code: .normal),
                             .emit(.rotated(from: 1, to: 2, waitedMs: 920, reason: .quiet))])
        #expect(m.connectionGeneration == 2 && m.drainingGeneration == nil && m.rotations == 1)
        #expect(Self.noLossOrBlip(all))
        #expect(m.reconnects == 0, "a rotation is not a reconnect")
        // The new session rotates 8 s after it was ready.
        #expect(m.rotationTimes?.due == Self.t(16_100))
    }

    @Test func aQuietMomentBeforeTheSuccessorIsReadyChangesNothing() {
        var m = Self.live()
        #expect(m.quietMoment(now: Self.t(5000)).isEmpty, "nothing to switch to")
        _ = m.tick(now: Self.t(8000))
        #expect(m.quietMoment(now: Self.t(8010)).isEmpty, "still dialling")
        #expect(m.connected(generation: 2, now: Self.t(8050)).isEmpty, "ready: now the session looks for a quiet moment")
        #expect(m.awaitingQuietMoment)
        #expect(m.quietMoment(now: Self.t(8060)) == [.drainUplink(generation: 1)])
        #expect(m.quietMoment(now: Self.t(8070)).isEmpty, "once")
    }

    @Test func noQuietMomentSwitchesAtTheDeadlineAnyway() {
        var m = Self.live()
        _ = m.tick(now: Self.t(8000))
        _ = m.connected(generation: 2, now: Self.t(8100))
        #expect(m.tick(now: Self.t(11_999)).isEmpty)
        #expect(m.tick(now: Self.t(12_000)) == [.drainUplink(generation: 1)])
        let switched = m.uplinkDrained(generation: 1, now: Self.t(12_010))
        #expect(Self.events(switched) == [.rotated(from: 1, to: 2, waitedMs: 3910, reason: .deadline)])
    }

    @Test func anUnacknowledgedHandoverSwitchesAfterItsTimeout() {
        var m = Self.live()
        _ = m.tick(now: Self.t(8000))
        _ = m.connected(generation: 2, now: Self.t(8000))
        _ = m.quietMoment(now: Self.t(8000))
        #expect(m.nextWakeup == Self.t(10_000))
        let switched = m.tick(now: Self.t(10_000))
        #expect(switched.first == .close(generation: 1, code: .normal))
        #expect(m.connectionGeneration == 2)
        #expect(m.uplinkDrained(generation: 1, now: Self.t(10_001)).isEmpty, "a late acknowledgement is stale")
    }

    @Test func aSuccessorThatCannotBeHadIsRetriedWhileTheOldSessionCarriesOn() {
        var m = Self.live()
        _ = m.tick(now: Self.t(8000))
        let failed = m.failed(generation: 2, ConnectionFailure(.transport, "refused"), now: Self.t(8100), random: 0.5)
        #expect(failed == [.close(generation: 2, code: .normal)])
        #expect(m.state == .live && m.connectionGeneration == 1)
        #expect(m.nextWakeup == Self.t(8600), "backoff.initial")
        #expect(Self.connects(m.tick(now: Self.t(8600))) == [3])
        _ = m.failed(generation: 3, ConnectionFailure(.transport, "refused"), now: Self.t(8700), random: 0.5)
        #expect(m.nextWakeup == Self.t(9700), "the backoff grows")
    }

    @Test func losingTheOldSessionWhileTheSuccessorWaitsPromotesIt() {
        var m = Self.live()
        _ = m.tick(now: Self.t(8000))
        _ = m.connected(generation: 2, now: Self.t(8100))
        let lost = m.failed(generation: 1, .closed(code: 1001, reason: "Your session hit the maximum duration of 60 minutes."),
                            now: Self.t(8500))
        #expect(lost == [.close(generation: 1, code: .goingAway),
                         .emit(.rotated(from: 1, to: 2, waitedMs: 400, reason: .serverCap))])
        #expect(m.state == .live && m.connectionGeneration == 2)
    }

    @Test func losingTheOldSessionWhileTheSuccessorIsDialledMakesItTheReconnect() {
        var m = Self.live()
        _ = m.tick(now: Self.t(8000))
        var all = m.failed(generation: 1, ConnectionFailure(.expired, "cap"), now: Self.t(8010))
        #expect(m.state == .degraded)
        #expect(Self.connects(all).isEmpty, "the successor being dialled is the reconnect")
        all += m.connected(generation: 2, now: Self.t(8200))
        #expect(m.state == .live && m.connectionGeneration == 2)
        #expect(Self.events(all).contains(.rotated(from: 1, to: 2, waitedMs: 190, reason: .serverCap)))
        #expect(!Self.events(all).contains { if case .lost = $0 { true } else { false } })
    }

    @Test func theServersCapCloseIsAForcedRotationWithGrace() {
        var m = SessionMachineTests.live(.init(grace: .seconds(3), failedGrace: .seconds(1), backoff: Self.settings.backoff))
        var all = m.failed(generation: 1, .closed(code: 1001, reason: "Your session hit the maximum duration of 6 seconds."),
                           now: Self.t(6000))
        #expect(Self.connects(all) == [2], "reconnect at once")
        #expect(m.nextWakeup == Self.t(9000), "the full link.grace, not failed_grace")
        all += m.connected(generation: 2, now: Self.t(6030))
        let events = Self.events(all)
        #expect(events.contains(.rotated(from: 1, to: 2, waitedMs: 30, reason: .serverCap)))
        #expect(events.contains(.blip(durationMs: 30)))
        #expect(!events.contains { if case .lost = $0 { true } else { false } })
        #expect(m.rotations == 1)
    }

    @Test func aCapCloseThatTakesLongerThanGraceIsALossNotARotation() {
        var m = Self.live()
        _ = m.failed(generation: 1, ConnectionFailure(.expired, "cap"), now: Self.t(1000))
        let lost = m.tick(now: Self.t(4000))
        #expect(Self.events(lost).contains(.lost(reason: "cap")))
        let live = m.connected(generation: 2, now: Self.t(4500))
        #expect(!Self.events(live).contains { if case .rotated = $0 { true } else { false } })
    }

    @Test func theNetworkGoingAwayAbandonsTheRotation() {
        var m = Self.live()
        _ = m.tick(now: Self.t(8000))
        _ = m.connected(generation: 2, now: Self.t(8100))
        let offline = m.networkWentOffline(now: Self.t(8200))
        #expect(offline.contains(.close(generation: 2, code: .normal)))
        #expect(m.state == .degraded && !m.awaitingQuietMoment)
        // A probe that finds the old connection alive keeps its schedule.
        _ = m.networkCameOnline(now: Self.t(9000))
        _ = m.probeSucceeded(generation: 1, now: Self.t(9010))
        #expect(m.state == .live)
        #expect(Self.connects(m.tick(now: Self.t(9010))) == [3], "still due: the next session is dialled again")
    }

    @Test func pauseAndStopCloseTheSuccessorToo() {
        var m = Self.live()
        _ = m.tick(now: Self.t(8000))
        let paused = m.pause(now: Self.t(8100))
        #expect(paused.contains(.close(generation: 2, code: .normal)) && paused.contains(.close(generation: 1, code: .normal)))
        var s = Self.live()
        _ = s.tick(now: Self.t(8000))
        _ = s.connected(generation: 2, now: Self.t(8100))
        let stopped = s.stop(now: Self.t(8200))
        #expect(stopped.contains(.close(generation: 2, code: .normal)) && stopped.contains(.close(generation: 1, code: .goingAway)))
        #expect(s.nextWakeup == nil)
    }

    @Test func aRequestedRotationDialsAtOnce() {
        var m = Self.live()
        #expect(Self.connects(m.rotateRequested(now: Self.t(100))) == [2])
        #expect(m.rotateRequested(now: Self.t(150)).isEmpty, "one at a time")
        _ = m.connected(generation: 2, now: Self.t(200))
        #expect(m.nextWakeup == Self.t(4100), "the configured window from the request")
    }

    @Test func noScheduleNoRotation() {
        var m = SessionMachineTests.live(.init(grace: .seconds(3), failedGrace: .seconds(1), backoff: Self.settings.backoff))
        #expect(m.nextWakeup == nil)
        #expect(m.tick(now: Self.t(10_000_000)).isEmpty)
    }

    @Test func theServersExpiryMovesTheScheduleEarlier() {
        let schedule = RotationSchedule(after: .seconds(55 * 60), deadline: .seconds(59 * 60))
        let plain = schedule.times(began: Self.t(0), expiresIn: nil)
        #expect(plain.due == Self.t(55 * 60_000) && plain.deadline == Self.t(59 * 60_000))
        #expect(schedule.times(began: Self.t(0), expiresIn: .seconds(3600)) == plain, "a 60-minute cap changes nothing")
        let thirty = schedule.times(began: Self.t(0), expiresIn: .seconds(30 * 60))
        #expect(thirty.deadline == Self.t(29 * 60_000) && thirty.due == Self.t(25 * 60_000))
        let six = schedule.times(began: Self.t(0), expiresIn: .seconds(6))
        #expect(six.deadline == Self.t(5400) && six.due == Self.t(2700))
    }
}
