import Testing
@testable import TetherCore

@Suite struct JSONTests {
    @Test func parsesAndPrintsRoundTrip() throws {
        let text = #"{"id":1,"cmd":"say","text":"h\u00e9llo \"robot\"\n","n":-1.5e3,"ok":true,"x":null,"a":[1,[2,{}]]}"#
        let value = try JSONParser.parse(text)
        #expect(value["text"] == "héllo \"robot\"\n")
        #expect(value["n"] == .number(-1500))
        #expect(value["a"]?.arrayValue?.count == 2)
        #expect(try JSONParser.parse(JSONWriter.string(value)) == value)
        #expect(JSONWriter.string(["k": "a\u{1}b"]) == #"{"k":"a\u0001b"}"#)
        #expect(try JSONParser.parse(#""\ud83d\ude00""#) == "😀")
    }

    @Test(arguments: ["", "{", "[1,]", "{\"a\" 1}", "tru", "01", "1.", "\"\\x\"", "\"a\u{01}\"", "{\"a\":1}x",
                      "\"\\ud800\"", "[" + String(repeating: "[", count: 100) + "]", "1e999", "{1:2}"])
    func rejectsMalformed(text: String) {
        #expect(throws: JSONParseError.self) { try JSONParser.parse(text) }
    }

    @Test func rejectsInvalidUTF8() {
        #expect(throws: JSONParseError.self) { try JSONParser.parse(bytes: [0x22, 0xFF, 0xFE, 0x22]) }
    }

    /// Integers are built without strtod; they must come out exactly as strtod would.
    @Test(arguments: ["0", "-0", "7", "-45", "123456789012345", "-999999999999999", "9999999999999999",
                      "12345678901234567890", "1.5", "-2.25e3", "1E2", "0.1"])
    func numbersMatchTheFullConversion(text: String) throws {
        let value = try JSONParser.parse(text)
        let expected = Double(text)!
        #expect(value == .number(expected))
        #expect(value.doubleValue?.sign == expected.sign, "\(text): sign")
    }

    /// Random bytes and mutations of valid documents (100,000, seeded): errors, never traps.
    @Test func survivesRandomInput() {
        var rng = SplitMix64(seed: 42)
        let seeds = [#"{"id":1,"cmd":"volume","level":40}"#, #"{"type":"response.output_audio.delta","delta":"AAAA","item_id":"i"}"#,
                     #"{"a":[1,-2.5e3,true,false,null,{"b":"\u00e9\n\"x"}],"c":{"d":[[],{}]},"é":"€😀"}"#]
        var parsed = 0
        for i in 0..<100_000 {
            var bytes: [UInt8]
            if i % 2 == 0 {
                bytes = (0..<Int(rng.next() % 64)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            } else {
                bytes = Array(seeds[i % seeds.count].utf8)
                for _ in 0..<(1 + rng.next() % 4) {
                    let at = Int(rng.next() % UInt64(bytes.count))
                    bytes[at] = UInt8(truncatingIfNeeded: rng.next())
                }
                if rng.next() % 3 == 0 { bytes = Array(bytes.prefix(Int(rng.next() % UInt64(bytes.count)))) }
            }
            if (try? JSONParser.parse(bytes: bytes)) != nil { parsed += 1 }
        }
        #expect(parsed > 0)
    }
}

