import NIOCore
import NIOPosix
import Testing
@testable import TetherCore
@testable import TetherLinux

/// The uplink stage between a capturing thread (the test) and a real event loop, writing into
/// a recording sink: capture order, batching, the replay after a carrier change, discarding.
@Suite struct UplinkStageTests {
    static let period: Duration = .milliseconds(20)
    static let unbounded = UplinkQueue.Limits(maxAge: .seconds(60), maxBytes: 1 << 24, replay: true)

    /// What the stage wrote, in order; `flushes` counts the flushes after writes.
    final class RecordingSink: UplinkSink {
        var writable = true
        var sent: [[UInt8]] = []
        var flushes = 0
        var pings = 0
        var isWritable: Bool { writable }
        func sendAudio(_ pcm: [UInt8]) { sent.append(pcm) }
        func flush() { flushes += 1 }
        func pingNow() { pings += 1 }
    }

    /// Period `n` of the mic: four bytes naming it.
    static func frame(_ n: Int) -> CapturedFrame {
        CapturedFrame(pcm: [UInt8(truncatingIfNeeded: n), UInt8(truncatingIfNeeded: n >> 8), 0xAA, 0xBB],
                      capturedAt: .milliseconds(Int64(n) * 20), duration: period)
    }

    static func periods(_ range: Range<Int>) -> [UInt8] { range.flatMap { frame($0).pcm } }

    let loop: any EventLoop = MultiThreadedEventLoopGroup.singleton.next()

    func onLoop<T: Sendable>(_ body: @escaping @Sendable () -> T) async throws -> T {
        try await loop.submit(body).get()
    }

    @Test func audioCapturedBeforeLiveIsSentFirstInCaptureOrder() async throws {
        let stage = UplinkStage(limits: Self.unbounded, loop: loop)
        for n in 0..<5 { stage.captured(Self.frame(n)) }
        let sent = try await onLoop { () -> [UInt8] in
            let sink = RecordingSink()
            stage.sessionSettled(in: .live, connection: 1)
            _ = stage.pump(into: sink)
            #expect(sink.flushes == 1)
            return sink.sent.flatMap { $0 }
        }
        #expect(sent == Self.periods(0..<5))
    }

    @Test func liveAudioWakesThePumpOncePerBatch() async throws {
        let stage = UplinkStage(limits: Self.unbounded, loop: loop)
        let sink = try await onLoop { () -> NIOLoopBound<RecordingSink> in
            let sink = RecordingSink()
            stage.sessionSettled(in: .live, connection: 1)
            stage.whenBatchReady { _ = stage.pump(into: sink) }
            return NIOLoopBound(sink, eventLoop: self.loop)
        }
        // One 20 ms period is not a batch; the second makes 40 ms.
        stage.captured(Self.frame(0))
        #expect(try await onLoop { sink.value.sent.count } == 0)
        stage.captured(Self.frame(1))
        let sent = try await onLoop { sink.value.sent }
        #expect(sent == [Self.periods(0..<2)])
    }

    @Test func aNewCarrierGetsWhatTheOldOneLeftUnacknowledged() async throws {
        let stage = UplinkStage(limits: Self.unbounded, loop: loop)
        for n in 0..<4 { stage.captured(Self.frame(n)) }
        let (first, second) = try await onLoop { () -> ([UInt8], [UInt8]) in
            let one = RecordingSink(), two = RecordingSink()
            stage.sessionSettled(in: .live, connection: 1)
            _ = stage.pump(into: one)
            // The peer read the first two periods, then the connection died.
            _ = stage.acknowledged(upTo: 2, on: 1)
            stage.connectionEnded(1)
            stage.sessionSettled(in: .degraded, connection: nil)
            stage.sessionSettled(in: .live, connection: 2)
            _ = stage.pump(into: two)
            return (one.sent.flatMap { $0 }, two.sent.flatMap { $0 })
        }
        #expect(first == Self.periods(0..<4))
        #expect(second == Self.periods(2..<4))
    }

    @Test func aStalePongAcknowledgesNothing() async throws {
        let stage = UplinkStage(limits: Self.unbounded, loop: loop)
        for n in 0..<2 { stage.captured(Self.frame(n)) }
        let marks = try await onLoop { () -> (UInt64, UInt64) in
            stage.sessionSettled(in: .live, connection: 2)
            _ = stage.pump(into: RecordingSink())
            _ = stage.acknowledged(upTo: 2, on: 1)
            return (stage.mark(for: 1), stage.mark(for: 2))
        }
        #expect(marks == (0, 2))
        #expect(stage.status["unacknowledged_frames"] == .number(2))
    }

    @Test func pausingForgetsTheBuffer() async throws {
        let stage = UplinkStage(limits: Self.unbounded, loop: loop)
        for n in 0..<3 { stage.captured(Self.frame(n)) }
        #expect(stage.queuedMs == 60)
        try await onLoop { stage.sessionSettled(in: .paused, connection: nil) }
        #expect(stage.queuedMs == 0)
        stage.captured(Self.frame(3))
        #expect(stage.queuedMs == 0, "not kept while paused")
        #expect(stage.status["dropped_ms"] == .number(0), "a pause is not a loss")
    }

    @Test func aFullSocketKeepsTheAudioQueued() async throws {
        let stage = UplinkStage(limits: Self.unbounded, loop: loop)
        for n in 0..<3 { stage.captured(Self.frame(n)) }
        let written = try await onLoop { () -> Int in
            let sink = RecordingSink()
            sink.writable = false
            stage.sessionSettled(in: .live, connection: 1)
            return stage.pump(into: sink)
        }
        #expect(written == 0)
        #expect(stage.queuedMs == 60)
    }
}
