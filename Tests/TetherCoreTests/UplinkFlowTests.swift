import Testing
@testable import TetherCore

/// The uplink's send/ping/hold decisions over a real `UplinkQueue` filled on a manual clock:
/// each 20 ms period is 960 bytes (24 kHz mono PCM16).
@Suite struct UplinkFlowTests {
    static let period: Duration = .milliseconds(20)
    static let periodBytes = 960
    static func t(_ ms: Int64) -> MonoTime { .milliseconds(ms) }
    static let unbounded = UplinkQueue.Limits(maxAge: .seconds(60), maxBytes: 1 << 24, replay: true)

    /// Captures `periods` periods from `start` ms on.
    static func capture(_ q: inout UplinkQueue, periods: Int, from start: Int64 = 0, sending: Bool) {
        for i in 0..<periods {
            q.append([UInt8](repeating: UInt8(truncatingIfNeeded: i), count: periodBytes), capturedAt: t(start + Int64(i) * 20),
                     duration: period, sending: sending)
        }
    }

    /// Runs the policy like the uplink stage does, until it holds or asks for a ping.
    static func pump(_ flow: inout UplinkFlow, _ q: inout UplinkQueue, writable: Bool = true) -> (sent: [Int], last: UplinkFlow.Step) {
        var sent: [Int] = []
        while true {
            let step = flow.next(q.backlog, writable: writable)
            guard case .send(let maxBytes) = step, let chunk = q.takeUnsent(maxBytes: maxBytes) else { return (sent, step) }
            sent.append(chunk.bytes.count)
        }
    }

    @Test func liveAudioWakesTheLoopOnlyOnceABatchIsQueued() {
        let limits = UplinkFlow.Limits()
        var q = UplinkQueue(limits: Self.unbounded)
        Self.capture(&q, periods: 1, sending: true)
        #expect(!limits.batchReady(queuedMs: q.queuedMs))
        Self.capture(&q, periods: 1, from: 20, sending: true)
        #expect(limits.batchReady(queuedMs: q.queuedMs))
    }

    @Test func liveAudioIsSentWholeAndThenHolds() {
        var flow = UplinkFlow()
        var q = UplinkQueue(limits: Self.unbounded)
        Self.capture(&q, periods: 2, sending: true)
        let (sent, last) = Self.pump(&flow, &q)
        #expect(sent == [2 * Self.periodBytes])
        #expect(last == .hold)
        #expect(!flow.awaitingWindowAck)
    }

    @Test func aBacklogIsReplayedInChunksUpToTheWindowThenPings() {
        var flow = UplinkFlow()
        var q = UplinkQueue(limits: Self.unbounded)
        // Five seconds captured during an outage: 240,000 bytes.
        Self.capture(&q, periods: 250, sending: false)
        let (sent, last) = Self.pump(&flow, &q)
        #expect(sent.allSatisfy { $0 <= flow.limits.maxChunkBytes })
        #expect(sent.reduce(0, +) >= flow.limits.replayWindowBytes)
        #expect(sent.reduce(0, +) < flow.limits.replayWindowBytes + flow.limits.maxChunkBytes)
        #expect(last == .pingAndAwaitWindow)
        // Until the pong, nothing more goes out, even on a writable socket.
        #expect(flow.next(q.backlog, writable: true) == .hold)
        #expect(Self.pump(&flow, &q).sent.isEmpty)
    }

    @Test func thePongOpensTheNextWindow() {
        var flow = UplinkFlow()
        var q = UplinkQueue(limits: Self.unbounded)
        Self.capture(&q, periods: 250, sending: false)
        _ = Self.pump(&flow, &q)
        let mark = q.sentMark
        q.acknowledge(upTo: mark)
        let resumed = flow.acknowledged()
        let resumedAgain = flow.acknowledged()
        #expect(resumed, "a window ping was out: resume")
        #expect(!resumedAgain, "a later pong resumes nothing")
        let (sent, last) = Self.pump(&flow, &q)
        #expect(!sent.isEmpty)
        #expect(last == .pingAndAwaitWindow)
    }

    @Test func liveAudioIsNotHeldBehindAFullWindowOnceTheBacklogIsGone() {
        var flow = UplinkFlow()
        var q = UplinkQueue(limits: Self.unbounded)
        // 1.6 s from an outage goes out whole: the window fills only as the backlog empties.
        Self.capture(&q, periods: 80, sending: false)
        #expect(Self.pump(&flow, &q).last == .hold)
        #expect(q.unacknowledgedBytes >= flow.limits.replayWindowBytes)
        // A live batch (100 ms, not a backlog) is sent though no pong has come back yet.
        Self.capture(&q, periods: 5, from: 1600, sending: true)
        let (sent, last) = Self.pump(&flow, &q)
        #expect(sent == [5 * Self.periodBytes])
        #expect(last == .hold)
    }

    @Test func aFullSocketHolds() {
        var flow = UplinkFlow()
        var q = UplinkQueue(limits: Self.unbounded)
        Self.capture(&q, periods: 5, sending: true)
        #expect(flow.next(q.backlog, writable: false) == .hold)
        #expect(q.hasUnsent)
    }

    @Test func aNewConnectionStartsWithAnEmptyWindow() {
        var flow = UplinkFlow()
        var q = UplinkQueue(limits: Self.unbounded)
        Self.capture(&q, periods: 250, sending: false)
        _ = Self.pump(&flow, &q)
        #expect(flow.awaitingWindowAck)
        q.rewind()
        flow.connectionChanged()
        #expect(!flow.awaitingWindowAck)
        #expect(flow.next(q.backlog, writable: true) == .send(maxBytes: flow.limits.maxChunkBytes))
    }
}
