import Testing
@testable import TetherCore

/// Parsing is linear in the document for every shape (rule 14). An object used to insert by
/// linear search, so one upstream frame with 100,000 keys held the event loop for 37 s. The
/// check is a ratio measured in the same run (ten times the input may cost at most 30 times
/// the time: linear is 10, quadratic 100), not a fixed time, so a busy machine cannot fail it.
@Suite struct JSONComplexityTests {
    static func object(keys: Int) -> [UInt8] {
        var text = "{"
        for i in 0..<keys { text += (i == 0 ? "" : ",") + "\"k\(i)\":\(i)" }
        return Array((text + "}").utf8)
    }

    static func escapes(count: Int) -> [UInt8] {
        Array(("\"" + String(repeating: #"\u00e9\n\""#, count: count) + "\"").utf8)
    }

    static func nested(arrays: Int) -> [UInt8] {
        // Many shallow nests side by side: depth stays bounded, the count grows.
        Array(("[" + Array(repeating: "[[[[1]]]]", count: arrays).joined(separator: ",") + "]").utf8)
    }

    /// The fastest of three parses, in nanoseconds.
    static func parseTime(_ bytes: [UInt8]) throws -> Int64 {
        var best = Int64.max
        for _ in 0..<3 {
            let start = ContinuousClock.now
            _ = try JSONParser.parse(bytes: bytes)
            let elapsed = ContinuousClock.now - start
            best = min(best, elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000)
        }
        return max(best, 1)
    }

    @Test(arguments: ["keys", "escapes", "nested"])
    func tenTimesTheInputCostsAboutTenTimesTheTime(shape: String) throws {
        let make: (Int) -> [UInt8] = switch shape {
        case "keys": Self.object(keys:)
        case "escapes": Self.escapes(count:)
        default: Self.nested(arrays:)
        }
        let small = try Self.parseTime(make(10_000))
        let large = try Self.parseTime(make(100_000))
        #expect(Double(large) / Double(small) < 30, "\(shape): 10x input took \(Double(large) / Double(small))x the time")
    }

    @Test func duplicateKeysKeepTheirPlaceAndTheLastValue() throws {
        let value = try JSONParser.parse(#"{"a":1,"b":2,"a":3}"#)
        #expect(value.objectValue?.keys == ["a", "b"])
        #expect(value["a"] == .number(3))
    }

    @Test func objectsCompareWithoutRegardToOrder() {
        let one: JSONObject = ["a": 1, "b": 2]
        let other: JSONObject = ["b": 2, "a": 1]
        #expect(one == other)
        #expect(one != ["a": 1, "b": 3])
    }
}
