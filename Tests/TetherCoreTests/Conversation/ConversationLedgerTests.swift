import Testing
@testable import TetherCore

@Suite struct ConversationLedgerTests {
    static func t(_ ms: Int64) -> MonoTime { .milliseconds(ms) }

    static func ledger(_ limits: ConversationLedger.Limits = .init()) -> ConversationLedger {
        ConversationLedger(id: "conv_a", limits: limits)
    }

    @Test func turnsKeepTheBrainsOrderEvenWhenTheTranscriptComesLate() {
        var l = Self.ledger()
        l.itemAdded("u1", role: .user, now: Self.t(0))
        l.itemAdded("a1", role: .assistant, now: Self.t(10))
        // The robot's transcript arrives before the person's (transcription is slower).
        l.assistantTranscript("a1", "Hello there", now: Self.t(20))
        #expect(l.turns() == [.assistant("Hello there", interrupted: false)], "the person's turn waits for its text")
        l.userTranscript("u1", "Hi robot", now: Self.t(30))
        #expect(l.turns() == [.user("Hi robot"), .assistant("Hello there", interrupted: false)])
        #expect(l.itemCount == 2)
        #expect(l.charCount == "Hi robot".count + "Hello there".count)
    }

    @Test func aTranscriptOfAnUnknownItemIsAppended() {
        var l = Self.ledger()
        l.userTranscript("x", "first", now: Self.t(0))
        l.userTranscript(nil, "second", now: Self.t(1))
        #expect(l.turns() == [.user("first"), .user("second")])
    }

    @Test func anInterruptedReplyKeepsOnlyWhatWasPlayedCutAtAWord() {
        var l = Self.ledger()
        l.itemAdded("a1", role: .assistant, now: Self.t(0))
        l.assistantAudio("a1", milliseconds: 1000, now: Self.t(0))
        l.assistantAudio("a1", milliseconds: 1000, now: Self.t(0))
        l.assistantTranscript("a1", "one two three four five six seven eight", now: Self.t(0))
        l.assistantInterrupted("a1", playedMs: 1000, now: Self.t(0))
        // Half of 39 characters is 19: "one two three four " ends in a space, so four is whole.
        #expect(l.turns() == [.assistant("one two three four", interrupted: true)])
    }

    @Test func heardPartNeverEndsInAHalfWord() {
        #expect(ConversationLedger.heardPart(of: "hello world", playedMs: 300, audioMs: 1000) == "")
        #expect(ConversationLedger.heardPart(of: "hello world", playedMs: 700, audioMs: 1000) == "hello")
        #expect(ConversationLedger.heardPart(of: "hello world", playedMs: 1000, audioMs: 1000) == "hello world")
        #expect(ConversationLedger.heardPart(of: "hello world", playedMs: 0, audioMs: 1000) == "")
        #expect(ConversationLedger.heardPart(of: "hello", playedMs: 10, audioMs: 0) == "")
    }

    @Test func anInterruptionBeforeAnyWordWasHeardCarriesNothing() {
        var l = Self.ledger()
        l.itemAdded("a1", role: .assistant, now: Self.t(0))
        l.assistantAudio("a1", milliseconds: 2000, now: Self.t(0))
        l.assistantInterrupted("a1", playedMs: 0, now: Self.t(0))
        l.assistantTranscript("a1", "anything at all", now: Self.t(0))
        #expect(l.turns().isEmpty)
    }

    @Test func toolTurnsAreCarriedOnceAnswered() {
        var l = Self.ledger()
        l.toolCalled("c1", name: "wave", arguments: #"{"hand":"left"}"#, now: Self.t(0))
        #expect(l.turns().isEmpty)
        l.toolAnswered("c1", output: #"{"done":true}"#, now: Self.t(1))
        #expect(l.turns() == [.tool(callID: "c1", name: "wave", arguments: #"{"hand":"left"}"#, output: #"{"done":true}"#)])
        l.toolAnswered("unknown", output: "x", now: Self.t(2))
        #expect(l.itemCount == 1)
    }

    @Test func maxItemsDropsTheOldestAndCountsThem() {
        var l = Self.ledger(.init(maxItems: 3, maxChars: 10_000))
        for i in 1...5 { l.userTranscript("u\(i)", "turn \(i)", now: Self.t(Int64(i))) }
        #expect(l.turns() == [.user("turn 3"), .user("turn 4"), .user("turn 5")])
        #expect(l.droppedItems == 2)
    }

    @Test func maxCharsDropsTheOldestAndClipsALoneTurn() {
        var l = Self.ledger(.init(maxItems: 100, maxChars: 10))
        l.userTranscript("u1", "abcdef", now: Self.t(0))
        l.userTranscript("u2", "ghijkl", now: Self.t(1))
        #expect(l.turns() == [.user("ghijkl")])
        #expect(l.droppedItems == 1)
        l.userTranscript("u3", String(repeating: "x", count: 25), now: Self.t(2))
        #expect(l.turns() == [.user(String(repeating: "x", count: 10))], "a lone turn over the budget keeps its beginning")
        #expect(l.charCount == 10)
    }

    @Test func placeholdersWhoseTextNeverCameAreBounded() {
        var l = Self.ledger(.init(maxItems: 2, maxChars: 1000))
        for i in 0..<100 { l.itemAdded("u\(i)", role: .user, now: Self.t(Int64(i))) }
        l.userTranscript("u99", "last", now: Self.t(200))
        #expect(l.turns() == [.user("last")])
        #expect(l.droppedItems == 0, "placeholders are not turns")
    }

    @Test func idleLongerThanMaxAgeStartsAfresh() {
        var l = Self.ledger(.init(maxAge: .seconds(60)))
        func expire(at ms: Int64) -> Bool { l.expireIfIdle(now: Self.t(ms), freshID: "conv_b") }
        #expect(!expire(at: 1_000_000), "a conversation nothing happened in does not expire")
        l.userTranscript("u1", "hi", now: Self.t(0))
        #expect(!expire(at: 60_000))
        l.noteActivity(Self.t(50_000))
        #expect(!expire(at: 110_000), "activity keeps it alive")
        #expect(expire(at: 110_001))
        #expect(l.id == "conv_b")
        #expect(l.turns().isEmpty)
    }

    @Test func carryOffKeepsNoTurnsButTheID() {
        var l = Self.ledger(.init(carry: false))
        l.userTranscript("u1", "hi", now: Self.t(0))
        l.toolCalled("c", name: "n", arguments: "{}", now: Self.t(0))
        l.toolAnswered("c", output: "o", now: Self.t(0))
        #expect(l.turns().isEmpty)
        #expect(l.id == "conv_a")
        var on = Self.ledger()
        on.userTranscript("u1", "hi", now: Self.t(0))
        on.update(limits: .init(carry: false))
        #expect(on.turns().isEmpty, "switching carry off forgets what was kept")
    }

    @Test func resetForgetsEverything() {
        var l = Self.ledger(.init(maxItems: 1))
        l.userTranscript("u1", "a", now: Self.t(0))
        l.userTranscript("u2", "b", now: Self.t(0))
        l.reset(id: "conv_new")
        #expect(l.id == "conv_new" && l.turns().isEmpty && l.droppedItems == 0)
    }

    @Test func conversationIDsAreWellFormedAndDiffer() {
        var g = SplitMix64(seed: 7)
        let a = ConversationID.make(using: &g)
        let b = ConversationID.make(using: &g)
        #expect(a.hasPrefix("conv_") && a.count == 29 && a != b)
        #expect(a.dropFirst(5).allSatisfy { "0123456789abcdef".contains($0) })
    }

    @Test func quietMomentNeedsEverythingAtRest() {
        var q = QuietMoment()
        #expect(q.isQuiet(speakerIdle: true, toolCallsPending: 0))
        #expect(!q.isQuiet(speakerIdle: false, toolCallsPending: 0))
        #expect(!q.isQuiet(speakerIdle: true, toolCallsPending: 1))
        q.speechStarted()
        #expect(!q.isQuiet(speakerIdle: true, toolCallsPending: 0))
        q.speechStopped()
        q.responseStarted()
        #expect(!q.isQuiet(speakerIdle: true, toolCallsPending: 0))
        q.sessionChanged()
        #expect(q.isQuiet(speakerIdle: true, toolCallsPending: 0))
    }
}
