import Testing
@testable import TetherCore

private func period(_ id: String?, audio: Int, starts: Bool = false, ends: Bool = false) -> JitterBuffer.Period {
    JitterBuffer.Period(itemID: id, hasItem: true, audioFrames: audio, startsItem: starts, endsItem: ends)
}

@Suite struct PlayoutLedgerTests {
    @Test func itemIsDoneOnlyOnceItsAudioLeftTheBuffer() {
        var ledger = PlayoutLedger(bufferFrames: 40)
        let r1 = ledger.record(period("a", audio: 10, starts: true), frames: 10)
        #expect(r1 == [.started(itemID: "a")])
        let r2 = ledger.record(period("a", audio: 4, ends: true), frames: 10)
        #expect(r2 == [])
        #expect(!ledger.isDrained)
        // Audio ends at frame 14: done once frame 54 has been written.
        let r3 = ledger.record(.silence, frames: 10)
        #expect(r3 == [])
        let r4 = ledger.record(.silence, frames: 10)
        #expect(r4 == [])
        let r5 = ledger.record(.silence, frames: 10)
        #expect(r5 == [])
        #expect(!ledger.isDrained)
        let r6 = ledger.record(.silence, frames: 10)
        #expect(r6 == [.done(itemID: "a")])
        #expect(ledger.isDrained)
        #expect(ledger.activeItems.isEmpty)
    }

    @Test func rewindTakesAudioBackFromTheNewestPeriods() {
        var ledger = PlayoutLedger(bufferFrames: 40)
        _ = ledger.record(period("a", audio: 10, starts: true), frames: 10)
        for _ in 0..<5 { _ = ledger.record(period("a", audio: 10), frames: 10) }
        // A rewind of 25 frames takes back two and a half periods of "a".
        let removed = ledger.rewind(25)
        #expect(removed.count == 1)
        #expect(removed.first?.itemID == "a")
        #expect(removed.first?.audioFrames == 25)
        #expect(ledger.written == 35)
    }

    @Test func rewindOfPaddedPeriodCountsOnlyAudio() {
        var ledger = PlayoutLedger(bufferFrames: 40)
        _ = ledger.record(period("a", audio: 10, starts: true), frames: 10)
        _ = ledger.record(period("a", audio: 3), frames: 10)  // 3 audio, 7 silence
        let removed = ledger.rewind(8)  // 7 silence + 1 audio
        #expect(removed.first?.audioFrames == 1)
        let more = ledger.rewind(100)  // cannot take more than was kept
        #expect(more.first?.audioFrames == 12)
        #expect(ledger.written == 0)
    }

    @Test func resetReportsItemsStillActive() {
        var ledger = PlayoutLedger(bufferFrames: 40)
        _ = ledger.record(period("a", audio: 10, starts: true), frames: 10)
        #expect(ledger.reset() == ["a"])
        #expect(ledger.activeItems.isEmpty)
        #expect(ledger.isDrained)
    }
}
