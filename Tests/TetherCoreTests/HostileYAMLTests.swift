import Testing
@testable import TetherCore

/// Files made to hurt a YAML reader, each sized up to ConfigFile's 1 MiB cap: every one is
/// refused with one ConfigError line, and quickly. The bound is far above the milliseconds these
/// take; what it catches is expansion or quadratic work, which would take minutes.
@Suite struct HostileYAMLTests {
    static let bound: Duration = .seconds(5)

    /// The ConfigError for `bytes`, checked to be one line, and how long the refusal took.
    static func refusal(_ bytes: [UInt8]) -> (error: ConfigError?, elapsed: Duration) {
        var error: ConfigError?
        let start = ContinuousClock.now
        do {
            _ = try ConfigLoader.load(bytes: bytes, source: "t.yaml")
        } catch let e {
            error = e
        }
        let elapsed = ContinuousClock.now - start
        if let error { #expect(!error.description.contains("\n") && error.description.hasPrefix("t.yaml")) }
        return (error, elapsed)
    }

    static func refusal(_ text: String) -> (error: ConfigError?, elapsed: Duration) { refusal(Array(text.utf8)) }

    @Test func deepNesting() {
        let flow = Self.refusal(String(repeating: "[", count: 500_000) + String(repeating: "]", count: 500_000))
        #expect(flow.error?.message == "invalid YAML: nested deeper than 64 levels" && flow.error?.line == 1)
        #expect(flow.elapsed < Self.bound)
        var block = "upstream:\n  session:\n"
        for level in 0..<1000 { block += String(repeating: " ", count: 4 + level) + "k:\n" }
        let blocky = Self.refusal(block)
        #expect(blocky.error?.message.contains("nested deeper than 64 levels") == true)
        #expect(blocky.elapsed < Self.bound)
    }

    @Test func billionLaughs() {
        var text = "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
        for (name, previous) in zip("bcdefghi", "abcdefgh") {
            text += "\(name): &\(name) [" + Array(repeating: "*\(previous)", count: 9).joined(separator: ",") + "]\n"
        }
        let result = Self.refusal(text)
        #expect(result.error?.message.contains("anchors (&a) are not supported") == true && result.error?.line == 1)
        #expect(result.elapsed < Self.bound)
        // An alias on its own, in the session object that is passed on as JSON.
        let alias = Self.refusal("upstream:\n  session: { voice: *v }\n")
        #expect(alias.error?.message.contains("aliases (*v) are not supported") == true && alias.error?.line == 2)
    }

    @Test func manyKeys() {
        // About 90,000 distinct keys in the one object that takes any key.
        var text = "upstream:\n  session:\n"
        var i = 0
        while text.utf8.count < (1 << 20) - 32 {
            text += "    k\(i): 1\n"
            i += 1
        }
        let distinct = Self.refusal(text)
        #expect(distinct.error?.message == "invalid YAML: more than 100000 values")
        #expect(distinct.elapsed < Self.bound)
        // The same key again and again: the second one is the error.
        let repeated = Self.refusal("upstream:\n  session:\n" + String(repeating: "    k: 1\n", count: 100_000))
        #expect(repeated.error?.key == "upstream.session.k" && repeated.error?.line == 4)
        #expect(repeated.error?.description == "t.yaml:4: upstream.session.k: appears more than once (first on line 3)")
        // Many keys where only known ones are allowed: the first unknown one is the error.
        let unknown = Self.refusal(String((0..<40_000).map { "k\($0): 1\n" }.joined()))
        #expect(unknown.error?.key == "k0" && unknown.error?.message == "unknown key")
        #expect(unknown.elapsed < Self.bound)
    }

    @Test func manyKeysUnderTheLimitLoadInLinearTime() throws {
        var text = "upstream:\n  session:\n"
        for i in 0..<40_000 { text += "    k\(i): \(i)\n" }
        var config: TetherConfig?
        let elapsed = try ContinuousClock().measure { config = try ConfigLoader.load(yaml: text) }
        #expect(config?.upstream.session.count == 40_000 && config?.upstream.session["k39999"] == .number(39_999))
        #expect(elapsed < Self.bound)
    }

    @Test func invalidUTF8() {
        var bytes = Array("link:\n  grace: 3s\nlog:\n  level: ".utf8)
        bytes += [0xC0, 0xAF]  // an overlong "/"
        bytes += Array("\n".utf8)
        let result = Self.refusal(bytes)
        #expect(result.error?.line == 4)
        #expect(result.error?.message.hasPrefix("invalid YAML: ") == true)
        // UTF-16 with a byte-order mark is not UTF-8 either.
        #expect(Self.refusal([0xFF, 0xFE] + Array("a".utf8).flatMap { [$0, 0] }).error != nil)
    }

    @Test func tabs() {
        let indented = Self.refusal("link:\n\tgrace: 3s\n")
        #expect(indented.error?.line == 2 && indented.error?.message.hasPrefix("invalid YAML: ") == true)
        // A tab as plain white space after a value is fine.
        #expect((try? ConfigLoader.load(yaml: "link:\n  grace: 3s\t# tab\n"))?.link.grace == .seconds(3))
    }

    @Test func twoDocuments() {
        let result = Self.refusal("link:\n  grace: 3s\n---\nlink:\n  grace: 1s\n")
        #expect(result.error?.line == 3 && result.error?.message.contains("second document") == true)
        // A stream of many empty documents stops at the second.
        #expect(Self.refusal(String(repeating: "---\n", count: 200_000)).error?.line == 2)
    }

    @Test func oneHugeScalar() {
        let result = Self.refusal("log:\n  level: " + String(repeating: "x", count: 1 << 20) + "\n")
        #expect(result.error?.key == "log.level")
        #expect(result.elapsed < Self.bound)
    }
}
