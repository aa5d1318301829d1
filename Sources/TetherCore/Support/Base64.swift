/// Standard base64 (RFC 4648, with padding), written out here because it sits on the audio hot
/// path: every uplink frame of openai-realtime is base64 inside JSON, and every downlink delta
/// is base64 to decode. Table-driven, no Foundation, no intermediate strings.
public enum Base64 {
    private static let alphabet: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    private static let reverse: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (i, c) in alphabet.enumerated() { table[Int(c)] = UInt8(i) }
        return table
    }()

    public static func encodedLength(_ count: Int) -> Int { (count + 2) / 3 * 4 }

    /// Appends the encoding of `bytes` to `out` as ASCII bytes.
    public static func encode(_ bytes: UnsafeRawBufferPointer, into out: inout [UInt8]) {
        let n = bytes.count
        out.reserveCapacity(out.count + encodedLength(n))
        alphabet.withUnsafeBufferPointer { table in
            var i = 0
            while i + 3 <= n {
                let v = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
                out.append(table[Int(v >> 18 & 63)])
                out.append(table[Int(v >> 12 & 63)])
                out.append(table[Int(v >> 6 & 63)])
                out.append(table[Int(v & 63)])
                i += 3
            }
            let rest = n - i
            if rest == 1 {
                let v = UInt32(bytes[i]) << 16
                out.append(table[Int(v >> 18 & 63)])
                out.append(table[Int(v >> 12 & 63)])
                out.append(UInt8(ascii: "="))
                out.append(UInt8(ascii: "="))
            } else if rest == 2 {
                let v = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8
                out.append(table[Int(v >> 18 & 63)])
                out.append(table[Int(v >> 12 & 63)])
                out.append(table[Int(v >> 6 & 63)])
                out.append(UInt8(ascii: "="))
            }
        }
    }

    public static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        bytes.withUnsafeBytes { encode($0, into: &out) }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes padded or unpadded base64; nil on any character outside the alphabet or a
    /// impossible length. Never traps.
    public static func decode(_ text: UnsafeRawBufferPointer, into out: inout [UInt8]) -> Bool {
        var n = text.count
        while n > 0 && text[n - 1] == UInt8(ascii: "=") { n -= 1 }
        guard text.count - n <= 2, n % 4 != 1 else { return false }
        out.reserveCapacity(out.count + n * 3 / 4)
        return reverse.withUnsafeBufferPointer { table -> Bool in
            var i = 0
            while i + 4 <= n {
                let a = table[Int(text[i])], b = table[Int(text[i + 1])], c = table[Int(text[i + 2])], d = table[Int(text[i + 3])]
                guard (a | b | c | d) & 0xC0 == 0 else { return false }
                let v = UInt32(a) << 18 | UInt32(b) << 12 | UInt32(c) << 6 | UInt32(d)
                out.append(UInt8(truncatingIfNeeded: v >> 16))
                out.append(UInt8(truncatingIfNeeded: v >> 8))
                out.append(UInt8(truncatingIfNeeded: v))
                i += 4
            }
            let rest = n - i
            if rest == 2 {
                let a = table[Int(text[i])], b = table[Int(text[i + 1])]
                guard (a | b) & 0xC0 == 0 else { return false }
                out.append(a << 2 | b >> 4)
            } else if rest == 3 {
                let a = table[Int(text[i])], b = table[Int(text[i + 1])], c = table[Int(text[i + 2])]
                guard (a | b | c) & 0xC0 == 0 else { return false }
                out.append(a << 2 | b >> 4)
                out.append((b & 0x0F) << 4 | c >> 2)
            }
            return true
        }
    }

    public static func decode(_ text: String) -> [UInt8]? {
        var out: [UInt8] = []
        var text = text
        let ok = text.withUTF8 { decode(UnsafeRawBufferPointer($0), into: &out) }
        return ok ? out : nil
    }
}
