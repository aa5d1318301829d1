/// YAML 1.2's core schema: what a plain scalar means. Only plain scalars are resolved; anything
/// quoted or written as a block is a string. Unlike YAML 1.1 (and Yams, which tether used
/// before), `yes`, `no`, `on`, `off`, `y` and `n` are strings, `1_000` is a string (no digit
/// separators), `017` is decimal 17, octal is `0o17` and only `0x`/`0o` prefixes exist, so a
/// robot's config never changes meaning with the parser that reads it.
extension YAMLScalar {
    public enum Value: Sendable, Equatable {
        case null
        case bool(Bool)
        /// An integer that fits 64 bits. A longer one is a `.float`, its nearest Double, as JSON
        /// would carry it.
        case int(Int)
        /// Includes `.inf`, `-.inf` and `.nan`: callers that need a finite number check.
        case float(Double)
        case string(String)
    }

    public var value: Value {
        style == .plain ? YAMLCoreSchema.resolve(text) : .string(text)
    }
}

enum YAMLCoreSchema {
    static func resolve(_ text: String) -> YAMLScalar.Value {
        switch text {
        case "", "~", "null", "Null", "NULL": return .null
        case "true", "True", "TRUE": return .bool(true)
        case "false", "False", "FALSE": return .bool(false)
        case ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF": return .float(.infinity)
        case "-.inf", "-.Inf", "-.INF": return .float(-.infinity)
        case ".nan", ".NaN", ".NAN": return .float(.nan)
        default: break
        }
        let bytes = Array(text.utf8)
        if let n = integer(bytes) { return n }
        if isFloat(bytes), let d = Double(text) { return .float(d) }
        return .string(text)
    }

    /// `[-+]?[0-9]+`, `0o[0-7]+` or `0x[0-9a-fA-F]+`.
    private static func integer(_ b: [UInt8]) -> YAMLScalar.Value? {
        if b.count > 2, b[0] == UInt8(ascii: "0") {
            if b[1] == UInt8(ascii: "o") { return digits(b[2...], radix: 8, negative: false) }
            if b[1] == UInt8(ascii: "x") { return digits(b[2...], radix: 16, negative: false) }
        }
        var body = b[...]
        var negative = false
        if let sign = body.first, sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") {
            negative = sign == UInt8(ascii: "-")
            body = body.dropFirst()
        }
        guard !body.isEmpty else { return nil }
        return digits(body, radix: 10, negative: negative)
    }

    /// The value of `digits` in `radix`, or nil when one is not a digit of it.
    private static func digits(_ digits: ArraySlice<UInt8>, radix: Int, negative: Bool) -> YAMLScalar.Value? {
        var exact = 0
        var overflowed = false
        var approximate = 0.0
        for byte in digits {
            guard let digit = digitValue(byte), digit < radix else { return nil }
            approximate = approximate * Double(radix) + Double(digit)
            guard !overflowed else { continue }
            let (shifted, o1) = exact.multipliedReportingOverflow(by: radix)
            let (next, o2) = negative ? shifted.subtractingReportingOverflow(digit) : shifted.addingReportingOverflow(digit)
            if o1 || o2 { overflowed = true } else { exact = next }
        }
        guard overflowed else { return .int(exact) }
        // Decimal text converts exactly-rounded; the prefixed forms are summed digit by digit.
        let magnitude = radix == 10 ? Double(String(decoding: digits, as: UTF8.self)) ?? approximate : approximate
        return .float(negative ? -magnitude : magnitude)
    }

    private static func digitValue(_ byte: UInt8) -> Int? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): Int(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): Int(byte - UInt8(ascii: "a")) + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): Int(byte - UInt8(ascii: "A")) + 10
        default: nil
        }
    }

    /// `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`, checked by hand so that Swift's
    /// more liberal `Double(_:)` (hex floats, `inf`, `nan`) only ever sees this shape.
    private static func isFloat(_ b: [UInt8]) -> Bool {
        var i = 0
        func skipDigits() -> Int {
            let start = i
            while i < b.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(b[i]) { i += 1 }
            return i - start
        }
        func skipSign() {
            if i < b.count, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") { i += 1 }
        }
        skipSign()
        let whole = skipDigits()
        if i < b.count, b[i] == UInt8(ascii: ".") {
            i += 1
            let fraction = skipDigits()
            guard whole > 0 || fraction > 0 else { return false }
        } else if whole == 0 {
            return false
        }
        if i < b.count, b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E") {
            i += 1
            skipSign()
            guard skipDigits() > 0 else { return false }
        }
        return i == b.count
    }
}
