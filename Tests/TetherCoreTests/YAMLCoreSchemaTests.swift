import Testing
@testable import TetherCore

/// Plain scalars resolve as YAML 1.2's core schema says; quoted ones are always strings.
@Suite struct YAMLCoreSchemaTests {
    static func plain(_ text: String) -> YAMLScalar.Value { YAMLScalar(text: text, style: .plain, line: 1).value }

    @Test(arguments: ["", "~", "null", "Null", "NULL"])
    func nulls(text: String) {
        #expect(Self.plain(text) == .null)
        #expect(YAMLScalar(text: text, style: .quoted, line: 1).value == .string(text))
    }

    @Test func onlyTrueAndFalseAreBooleans() {
        for text in ["true", "True", "TRUE"] { #expect(Self.plain(text) == .bool(true)) }
        for text in ["false", "False", "FALSE"] { #expect(Self.plain(text) == .bool(false)) }
        // YAML 1.1's booleans are strings in 1.2.
        for text in ["yes", "no", "on", "off", "y", "n", "Yes", "NO", "On", "OFF", "tRUE"] {
            #expect(Self.plain(text) == .string(text))
        }
        #expect(YAMLScalar(text: "true", style: .quoted, line: 1).value == .string("true"))
    }

    @Test func integers() {
        #expect(Self.plain("0") == .int(0))
        #expect(Self.plain("480000") == .int(480_000))
        #expect(Self.plain("-3") == .int(-3))
        #expect(Self.plain("+7") == .int(7))
        #expect(Self.plain("017") == .int(17))  // decimal in 1.2 (octal 15 in 1.1)
        #expect(Self.plain("0o17") == .int(15))
        #expect(Self.plain("0x1F") == .int(31))
        #expect(Self.plain("0xff") == .int(255))
        #expect(Self.plain("9223372036854775807") == .int(.max))
        #expect(Self.plain("-9223372036854775808") == .int(.min))
        // Beyond 64 bits: the nearest Double, as JSON would carry it.
        #expect(Self.plain("99999999999999999999") == .float(1e20))
        #expect(Self.plain("0xFFFFFFFFFFFFFFFFFF") == .float(0x1p72))
    }

    @Test(arguments: ["1_000", "0b101", "0X1F", "0O17", "-0x1F", "0o18", "0x", "0o", "1:30", "12abc", "+", "-", "0x1G"])
    func notNumbersInYAML12(text: String) {
        #expect(Self.plain(text) == .string(text))
    }

    @Test func floats() {
        #expect(Self.plain("1.5") == .float(1.5))
        #expect(Self.plain(".5") == .float(0.5))
        #expect(Self.plain("1.") == .float(1))
        #expect(Self.plain("-2.5e3") == .float(-2500))
        #expect(Self.plain("1e3") == .float(1000))
        #expect(Self.plain("+1E-2") == .float(0.01))
        #expect(Self.plain(".inf") == .float(.infinity))
        #expect(Self.plain("+.Inf") == .float(.infinity))
        #expect(Self.plain("-.INF") == .float(-.infinity))
        guard case .float(let nan) = Self.plain(".nan") else { Issue.record(".nan is not a float"); return }
        #expect(nan.isNaN)
    }

    @Test(arguments: [".", "e3", "1e", "1.2.3", "inf", "nan", "Infinity", "0x1p3", "1,5", ".5.", "- 1"])
    func notFloatsInYAML12(text: String) {
        #expect(Self.plain(text) == .string(text))
    }
}
