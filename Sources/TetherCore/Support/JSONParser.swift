/// A strict RFC 8259 JSON parser over bytes. Bounded: nesting deeper than `maxDepth` is an
/// error, never a stack overflow. Every malformed input is a `JSONParseError`, never a trap.
public struct JSONParser {
    public static let defaultMaxDepth = 64

    public static func parse(_ text: String, maxDepth: Int = defaultMaxDepth) throws(JSONParseError) -> JSONValue {
        var text = text
        return try text.withUTF8 { buffer in
            Result { () throws(JSONParseError) in try parse(UnsafeRawBufferPointer(buffer), maxDepth: maxDepth) }
        }.get()
    }

    public static func parse(bytes: [UInt8], maxDepth: Int = defaultMaxDepth) throws(JSONParseError) -> JSONValue {
        try bytes.withUnsafeBytes { buffer in
            Result { () throws(JSONParseError) in try parse(buffer, maxDepth: maxDepth) }
        }.get()
    }

    public static func parse(_ buffer: UnsafeRawBufferPointer, maxDepth: Int = defaultMaxDepth) throws(JSONParseError) -> JSONValue {
        var parser = JSONParser(buffer: buffer, maxDepth: maxDepth)
        parser.skipWhitespace()
        let value = try parser.parseValue(depth: 0)
        parser.skipWhitespace()
        guard parser.index == buffer.count else { throw parser.error("unexpected data after the JSON value") }
        return value
    }

    private let buffer: UnsafeRawBufferPointer
    private let maxDepth: Int
    private var index = 0

    private init(buffer: UnsafeRawBufferPointer, maxDepth: Int) {
        self.buffer = buffer
        self.maxDepth = maxDepth
    }

    private func error(_ message: String) -> JSONParseError { JSONParseError(message: message, offset: index) }

    private var current: UInt8? { index < buffer.count ? buffer[index] : nil }

    private mutating func skipWhitespace() {
        while index < buffer.count {
            switch buffer[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    private mutating func expect(_ literal: StaticString) throws(JSONParseError) {
        let count = literal.utf8CodeUnitCount
        guard buffer.count - index >= count else { throw error("truncated literal") }
        let start = literal.utf8Start
        for i in 0..<count where buffer[index + i] != start[i] { throw error("invalid literal") }
        index += count
    }

    private mutating func parseValue(depth: Int) throws(JSONParseError) -> JSONValue {
        guard depth <= maxDepth else { throw error("nesting deeper than \(maxDepth)") }
        guard let byte = current else { throw error("unexpected end of input") }
        switch byte {
        case UInt8(ascii: "{"): return try parseObject(depth: depth)
        case UInt8(ascii: "["): return try parseArray(depth: depth)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expect("true"); return .bool(true)
        case UInt8(ascii: "f"): try expect("false"); return .bool(false)
        case UInt8(ascii: "n"): try expect("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try parseNumber())
        default: throw error("unexpected character")
        }
    }

    private mutating func parseObject(depth: Int) throws(JSONParseError) -> JSONValue {
        index += 1
        var object = JSONObject()
        skipWhitespace()
        if current == UInt8(ascii: "}") { index += 1; return .object(object) }
        while true {
            skipWhitespace()
            guard current == UInt8(ascii: "\"") else { throw error("expected a string key") }
            let key = try parseString()
            skipWhitespace()
            guard current == UInt8(ascii: ":") else { throw error("expected ':'") }
            index += 1
            skipWhitespace()
            object[key] = try parseValue(depth: depth + 1)
            skipWhitespace()
            switch current {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "}"): index += 1; return .object(object)
            default: throw error("expected ',' or '}'")
            }
        }
    }

    private mutating func parseArray(depth: Int) throws(JSONParseError) -> JSONValue {
        index += 1
        var array: [JSONValue] = []
        skipWhitespace()
        if current == UInt8(ascii: "]") { index += 1; return .array(array) }
        while true {
            skipWhitespace()
            array.append(try parseValue(depth: depth + 1))
            skipWhitespace()
            switch current {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "]"): index += 1; return .array(array)
            default: throw error("expected ',' or ']'")
            }
        }
    }

    private mutating func parseNumber() throws(JSONParseError) -> Double {
        let start = index
        if current == UInt8(ascii: "-") { index += 1 }
        guard let first = current, first >= 0x30, first <= 0x39 else { throw error("invalid number") }
        if first == 0x30 {
            index += 1
        } else {
            while let c = current, c >= 0x30, c <= 0x39 { index += 1 }
        }
        var isFraction = false
        if current == UInt8(ascii: ".") {
            isFraction = true
            index += 1
            guard let c = current, c >= 0x30, c <= 0x39 else { throw error("invalid number") }
            while let c = current, c >= 0x30, c <= 0x39 { index += 1 }
        }
        if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
            isFraction = true
            index += 1
            if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { index += 1 }
            guard let c = current, c >= 0x30, c <= 0x39 else { throw error("invalid number") }
            while let c = current, c >= 0x30, c <= 0x39 { index += 1 }
        }
        // Integers of up to 15 digits are exact in a Double: built here, they skip strtod, which
        // was the largest single cost of a frame of many small numbers.
        let digits = index - start - (buffer[start] == UInt8(ascii: "-") ? 1 : 0)
        if !isFraction, digits <= 15 {
            var magnitude = 0
            for i in (index - digits)..<index { magnitude = magnitude &* 10 &+ Int(buffer[i] &- 0x30) }
            let value = Double(magnitude)
            return buffer[start] == UInt8(ascii: "-") ? -value : value
        }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: buffer[start..<index]), as: UTF8.self)
        guard let value = Double(text), value.isFinite else { throw error("number out of range") }
        return value
    }

    private mutating func parseString() throws(JSONParseError) -> String {
        index += 1  // opening quote
        let start = index
        // Fast path: no escapes, plain UTF-8 up to the closing quote.
        while index < buffer.count {
            let c = buffer[index]
            if c == UInt8(ascii: "\"") {
                let slice = UnsafeRawBufferPointer(rebasing: buffer[start..<index])
                index += 1
                return try decodeUTF8(slice)
            }
            if c == UInt8(ascii: "\\") { break }
            if c < 0x20 { throw error("control character in string") }
            index += 1
        }
        guard index < buffer.count else { throw error("unterminated string") }
        var bytes = [UInt8](UnsafeRawBufferPointer(rebasing: buffer[start..<index]))
        while true {
            guard index < buffer.count else { throw error("unterminated string") }
            let c = buffer[index]
            index += 1
            switch c {
            case UInt8(ascii: "\""):
                return try bytes.withUnsafeBytes { b in Result { () throws(JSONParseError) in try decodeUTF8(b) } }.get()
            case UInt8(ascii: "\\"):
                guard index < buffer.count else { throw error("unterminated escape") }
                let e = buffer[index]
                index += 1
                switch e {
                case UInt8(ascii: "\""): bytes.append(0x22)
                case UInt8(ascii: "\\"): bytes.append(0x5C)
                case UInt8(ascii: "/"): bytes.append(0x2F)
                case UInt8(ascii: "b"): bytes.append(0x08)
                case UInt8(ascii: "f"): bytes.append(0x0C)
                case UInt8(ascii: "n"): bytes.append(0x0A)
                case UInt8(ascii: "r"): bytes.append(0x0D)
                case UInt8(ascii: "t"): bytes.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try parseHex4()
                    if (0xD800...0xDBFF).contains(scalar) {
                        guard buffer.count - index >= 6, buffer[index] == UInt8(ascii: "\\"),
                            buffer[index + 1] == UInt8(ascii: "u")
                        else { throw error("unpaired surrogate") }
                        index += 2
                        let low = try parseHex4()
                        guard (0xDC00...0xDFFF).contains(low) else { throw error("unpaired surrogate") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00...0xDFFF).contains(scalar) {
                        throw error("unpaired surrogate")
                    }
                    guard let u = Unicode.Scalar(scalar) else { throw error("invalid unicode escape") }
                    bytes.append(contentsOf: Array(String(Character(u)).utf8))
                default: throw error("invalid escape")
                }
            default:
                if c < 0x20 { throw error("control character in string") }
                bytes.append(c)
            }
        }
    }

    private mutating func parseHex4() throws(JSONParseError) -> UInt32 {
        guard buffer.count - index >= 4 else { throw error("truncated unicode escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let c = buffer[index]
            index += 1
            let digit: UInt32
            switch c {
            case 0x30...0x39: digit = UInt32(c - 0x30)
            case 0x41...0x46: digit = UInt32(c - 0x41 + 10)
            case 0x61...0x66: digit = UInt32(c - 0x61 + 10)
            default: throw error("invalid unicode escape")
            }
            value = value << 4 | digit
        }
        return value
    }

    private func decodeUTF8(_ bytes: UnsafeRawBufferPointer) throws(JSONParseError) -> String {
        // Checked by the same validator as WebSocket text frames, not the standard library's
        // generic `String(validating:)`, whose metadata look-ups cost more than the decoding
        // itself for the short strings of a JSON object's keys.
        guard UTF8Validation.isValid(bytes) else { throw error("invalid UTF-8 in string") }
        return String(decoding: bytes, as: UTF8.self)
    }
}

public struct JSONParseError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String
    public let offset: Int
    public var description: String { "\(message) at byte \(offset)" }
}
