import Testing
@testable import TetherCore

/// The conversation keys; their mistakes are in `ConfigLoaderTests.badConfigNamesTheKey`.
@Suite struct ConversationConfigTests {
    @Test func keysAreRead() throws {
        let c = try ConfigLoader.load(yaml: """
            conversation:
              carry: false
              max_items: 8
              max_chars: 2000
              max_age: 5m
              rotate_after: 8s
              rotate_deadline: 20s
              transcribe: whisper-1
            """).conversation
        #expect(!c.carry && c.maxItems == 8 && c.maxChars == 2000 && c.maxAge == .seconds(300))
        #expect(c.rotateAfter == .seconds(8) && c.rotateDeadline == .seconds(20) && c.rotateAfterIsExplicit)
        #expect(c.transcribe == "whisper-1")
        #expect(c.ledgerLimits == .init(carry: false, maxItems: 8, maxChars: 2000, maxAge: .seconds(300)))
    }

    @Test func rotationAppliesToPCMStreamOnlyWhenAsked() throws {
        let defaults = ConversationConfig()
        #expect(defaults.rotation(for: .openaiRealtime) == RotationSchedule(after: .seconds(3300), deadline: .seconds(3540)))
        #expect(defaults.rotation(for: .pcmStream) == nil)
        let asked = try ConfigLoader.load(yaml: "conversation: { rotate_after: 30m, rotate_deadline: 40m }").conversation
        #expect(asked.rotation(for: .pcmStream) == RotationSchedule(after: .seconds(1800), deadline: .seconds(2400)))
        let never = try ConfigLoader.load(yaml: "conversation: { rotate_after: null }").conversation
        #expect(never.rotation(for: .openaiRealtime) == nil && never.rotation(for: .pcmStream) == nil)
        #expect(try ConfigLoader.load(yaml: "conversation: { transcribe: null }").conversation.transcribe == nil)
    }
}
