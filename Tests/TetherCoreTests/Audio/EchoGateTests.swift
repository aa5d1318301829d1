import Testing
@testable import TetherCore

private func ms(_ v: Int64) -> MonoTime { .milliseconds(v) }
private let period = Duration.milliseconds(20)

@Suite struct EchoGateTests {
    @Test func gateSilencesWhileSpeakingAndForTheTail() {
        var gate = EchoGate(mode: .gate, tail: .milliseconds(200))
        #expect(!gate.isClosed(start: ms(0), duration: period))
        gate.speakerStarted(at: ms(1000))
        #expect(!gate.isClosed(start: ms(960), duration: period))   // ends at 980
        #expect(gate.isClosed(start: ms(990), duration: period))    // overlaps the start
        #expect(gate.isClosed(start: ms(5000), duration: period))
        gate.speakerStopped(at: ms(2000))
        #expect(gate.isClosed(start: ms(2100), duration: period))   // inside the tail
        #expect(gate.isClosed(start: ms(2190), duration: period))   // straddles tail end
        #expect(!gate.isClosed(start: ms(2200), duration: period))
        #expect(!gate.isClosed(start: ms(3000), duration: period))
    }

    @Test func applyReplacesWithSilenceOfTheSameLength() {
        var gate = EchoGate(mode: .gate, tail: .milliseconds(200))
        gate.speakerStarted(at: ms(0))
        var samples: [Int16] = [5, -5, 300, 1]
        let gated = samples.withUnsafeMutableBufferPointer { gate.apply(to: $0, start: ms(10), duration: period) }
        #expect(gated)
        #expect(samples == [0, 0, 0, 0])
    }

    @Test func noneModePassesEverything() {
        var gate = EchoGate(mode: .none, tail: .milliseconds(200))
        gate.speakerStarted(at: ms(0))
        var samples: [Int16] = [5, -5]
        let gated = samples.withUnsafeMutableBufferPointer { gate.apply(to: $0, start: ms(10), duration: period) }
        #expect(!gated)
        #expect(samples == [5, -5])
    }

    @Test func stopWithoutStartIsHarmless() {
        var gate = EchoGate(mode: .gate, tail: .milliseconds(200))
        gate.speakerStopped(at: ms(100))
        #expect(!gate.isClosed(start: ms(100), duration: period))
        #expect(!gate.isSpeakerActive)
    }
}
