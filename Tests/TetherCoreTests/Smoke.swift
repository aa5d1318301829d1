import Testing
@testable import TetherCore
@Test func smoke() { #expect(DurationText.parse("3s") == .seconds(3)) }
