import Testing
@testable import TetherCore

@Suite struct BargeInPolicyTests {
    static let realtime = BargeInPolicy(protocolKind: .openaiRealtime)
    static let pcm = BargeInPolicy(protocolKind: .pcmStream)

    @Test func theInterruptCommandSilencesAndCancelsOnEveryProtocol() {
        #expect(Self.realtime.plan(for: .interruptCommand) == .init(cancelResponse: true))
        #expect(Self.pcm.plan(for: .interruptCommand) == .init(cancelResponse: true))
    }

    @Test func userSpeechSilencesARealtimeBrainWithoutCancellingItsResponse() {
        // The brain's own voice detection cancels the response; only the speaker is ours.
        #expect(Self.realtime.plan(for: .userStartedSpeaking) == .init(cancelResponse: false))
    }

    @Test func userSpeechLeavesAPCMStreamBrainToDecide() {
        #expect(Self.pcm.plan(for: .userStartedSpeaking) == nil)
    }

    @Test func aClearFromTheBrainSilencesWithoutCancelling() {
        #expect(Self.pcm.plan(for: .brainAskedToClear) == .init(cancelResponse: false))
        #expect(Self.realtime.plan(for: .brainAskedToClear) == .init(cancelResponse: false))
    }

    @Test func theItemThatWasPlayingIsTruncatedAtThePlayedMilliseconds() {
        let heard = BargeInPolicy.Heard(itemID: "item_7", playedMs: 1480)
        #expect(Self.realtime.truncation(after: heard) == heard)
        #expect(Self.realtime.truncation(after: .init(itemID: nil, playedMs: -3)) == .init(itemID: nil, playedMs: 0))
    }

    @Test func nothingPlayingMeansNothingToTruncate() {
        #expect(Self.realtime.truncation(after: nil) == nil)
        #expect(Self.pcm.truncation(after: nil) == nil)
    }
}
