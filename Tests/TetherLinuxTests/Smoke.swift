import Testing
@Test func linuxSmoke() { #expect(true) }
