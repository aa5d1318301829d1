import Testing
@testable import TetherCore

@Suite struct UplinkQueueTests {
    static let period: Duration = .milliseconds(20)
    static func frame(_ n: Int) -> [UInt8] { [UInt8(truncatingIfNeeded: n), UInt8(truncatingIfNeeded: n >> 8), 0, 0] }
    static func t(_ ms: Int64) -> MonoTime { .milliseconds(ms) }

    func drain(_ q: inout UplinkQueue, max: Int = 1 << 20) -> [UInt8] {
        var out: [UInt8] = []
        while let chunk = q.takeUnsent(maxBytes: max) { out += chunk.bytes }
        return out
    }

    @Test func sendsInCaptureOrderAndKeepsUntilAcknowledged() {
        var q = UplinkQueue(limits: .init(maxAge: .seconds(30), maxBytes: 1 << 20, replay: true))
        for i in 0..<5 { q.append(Self.frame(i), capturedAt: Self.t(Int64(i) * 20), duration: Self.period, sending: true) }
        let first = q.takeUnsent(maxBytes: 8)!
        #expect(first.bytes == Self.frame(0) + Self.frame(1))
        let mark = q.sentMark
        #expect(mark == 2)
        #expect(q.unacknowledgedBytes == 8)
        #expect(drain(&q) == (2..<5).flatMap { Self.frame($0) })
        q.acknowledge(upTo: mark)
        #expect(q.frameCount == 3)
        #expect(q.unacknowledgedBytes == 12)
        // The connection dies: everything not acknowledged goes again, first.
        q.rewind()
        #expect(q.unacknowledgedBytes == 0)
        q.append(Self.frame(5), capturedAt: Self.t(100), duration: Self.period, sending: false)
        #expect(drain(&q) == (2..<6).flatMap { Self.frame($0) })
        #expect(q.droppedMs == 0)
    }

    @Test func boundsByAgeAndBytesCountingDrops() {
        var q = UplinkQueue(limits: .init(maxAge: .milliseconds(100), maxBytes: 1 << 20, replay: true))
        for i in 0..<10 { q.append(Self.frame(i), capturedAt: Self.t(Int64(i) * 20), duration: Self.period, sending: false) }
        // At t=180 frames captured before t=80 are older than 100 ms.
        #expect(q.droppedMs == 80)
        #expect(drain(&q) == (4..<10).flatMap { Self.frame($0) })

        var b = UplinkQueue(limits: .init(maxAge: .seconds(30), maxBytes: 12, replay: true))
        for i in 0..<5 { b.append(Self.frame(i), capturedAt: Self.t(Int64(i) * 20), duration: Self.period, sending: false) }
        #expect(b.totalBytes == 12)
        #expect(b.droppedMs == 40)
        #expect(drain(&b) == (2..<5).flatMap { Self.frame($0) })
    }

    @Test func withoutReplayOutageAudioIsDroppedAndCounted() {
        var q = UplinkQueue(limits: .init(maxAge: .seconds(30), maxBytes: 1 << 20, replay: false))
        q.append(Self.frame(0), capturedAt: Self.t(0), duration: Self.period, sending: true)
        _ = drain(&q)
        q.rewind()
        q.append(Self.frame(1), capturedAt: Self.t(20), duration: Self.period, sending: false)
        #expect(q.droppedMs == 40)
        #expect(q.takeUnsent(maxBytes: 100) == nil)
    }

    @Test func memoryStaysBoundedUnderLongOutage() {
        var q = UplinkQueue(limits: .init(maxAge: .seconds(30), maxBytes: 48_000, replay: true))
        let pcm = [UInt8](repeating: 7, count: 960)
        for i in 0..<10_000 { q.append(pcm, capturedAt: Self.t(Int64(i) * 20), duration: Self.period, sending: false) }
        #expect(q.totalBytes <= 48_000)
        #expect(q.droppedMs + q.queuedMs == 200_000)
    }

    @Test func pingTrackerMatchesOnlyItsPayloadsAndDeclaresDeath() {
        var p = PingTracker(interval: .seconds(3))
        #expect(p.answerTimeout == .seconds(1))
        #expect(PingTracker(interval: .seconds(1)).answerTimeout == .milliseconds(500))
        p.sent(payload: [1], mark: 10, now: Self.t(0))
        #expect(p.received(pong: [9], now: Self.t(5)) == .unmatched)
        #expect(p.received(pong: [1], now: Self.t(40)) == .matched(mark: 10, rtt: .milliseconds(40), answeredProbe: false))
        p.sent(payload: [2], mark: 11, now: Self.t(3000))
        #expect(p.verdict(now: Self.t(3999)) == .alive)
        #expect(p.verdict(now: Self.t(4000)) == .missedOne, "one unanswered ping asks for another at once")
        p.sent(payload: [3], mark: 12, now: Self.t(4000))
        #expect(p.verdict(now: Self.t(4999)) == .alive)
        #expect(p.verdict(now: Self.t(5000)) == .dead)
        // A late pong to the newer ping vouches for both.
        #expect(p.received(pong: [3], now: Self.t(4500)) == .matched(mark: 12, rtt: .milliseconds(500), answeredProbe: false))
        #expect(p.outstanding.isEmpty)
        p.sent(payload: [4], mark: 13, now: Self.t(7000), probeTimeout: .seconds(2))
        #expect(p.verdict(now: Self.t(9000)) == .probeFailed)
    }

    @Test func pingTrackerNextDeadlineAfterAVerdictIsTheFirstStillAhead() {
        var p = PingTracker(interval: .seconds(3))
        p.sent(payload: [1], mark: 1, now: Self.t(3000))
        #expect(p.nextDeadline(after: Self.t(3000)) == Self.t(4000))
        #expect(p.verdict(now: Self.t(4001)) == .missedOne)
        #expect(p.nextDeadline(after: Self.t(4001)) == nil, "nothing ahead: only a retry can change it")
        p.sent(payload: [2], mark: 2, now: Self.t(4001))
        #expect(p.nextDeadline == Self.t(4000), "the missed one, already judged")
        #expect(p.verdict(now: Self.t(4002)) == .alive)
        #expect(p.nextDeadline(after: Self.t(4002)) == Self.t(5001), "the retry's")
        #expect(p.verdict(now: Self.t(5001)) == .dead)
    }
}
