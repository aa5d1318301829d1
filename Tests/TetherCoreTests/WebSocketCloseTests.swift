import Testing
@testable import TetherCore

@Suite struct WebSocketCloseTests {
    @Test(arguments: [(UInt16(1000), true), (1001, true), (1003, true), (1004, false), (1005, false), (1006, false),
                      (1007, true), (1011, true), (1014, true), (1015, false), (1016, false), (999, false), (0, false),
                      (2999, false), (3000, true), (4999, true), (5000, false), (65535, false)])
    func receivedCodes(code: UInt16, valid: Bool) {
        #expect(WebSocketClose.isValidReceivedCode(code) == valid)
        let parsed = WebSocketClose.parse([UInt8(code >> 8), UInt8(code & 0xFF)])
        #expect(parsed == (valid ? .status(code: code, reason: "") : .violation(code: 1002, message: "invalid close code \(code)")))
    }

    @Test func emptyOneByteAndInvalidUTF8Payloads() {
        #expect(WebSocketClose.parse([]) == .noStatus)
        #expect(WebSocketClose.parse([0x03]) == .violation(code: 1002, message: "close frame with a 1-byte payload"))
        #expect(WebSocketClose.parse([0x03, 0xE8, 0xC3]) == .violation(code: 1007, message: "close reason is not valid UTF-8"))
        #expect(WebSocketClose.parse([0x03, 0xE8] + Array("bye ü".utf8)) == .status(code: 1000, reason: "bye ü"))
    }

    @Test(arguments: [1, 2, 3, 4])
    func reasonsAreCutAtACharacterBoundaryWithinTheLimit(bytesPerCharacter: Int) {
        let character: String = ["a", "é", "€", "😀"][bytesPerCharacter - 1]
        let reason = String(repeating: character, count: 200)
        let payload = WebSocketClose.payload(code: 1011, reason: reason)
        #expect(payload.count <= 125)
        #expect(payload.count >= 125 - (bytesPerCharacter - 1))
        guard case .status(let code, let text) = WebSocketClose.parse(payload) else {
            Issue.record("the truncated payload does not parse")
            return
        }
        #expect(code == 1011)
        #expect(text.allSatisfy { String($0) == character })
    }
}
