/// Standard base64 (RFC 4648 section 4, `+/` alphabet, `=` padding), written out here because it
/// sits on the audio hot path: every openai-realtime uplink frame is base64 inside JSON and every
/// downlink delta is base64 to decode, 50 times a second each way.
///
/// Encoding reads 3 bytes and writes 4 through a 4096-entry table of character pairs; decoding
/// reads 4 characters and ORs four 256-entry tables of pre-shifted 6-bit values, so an invalid
/// character shows up as one flag bit instead of four branches. Output is written straight into
/// preallocated storage. No Foundation, no intermediate strings; malformed input is a `false` or
/// `nil`, never a trap.
///
/// Decoding is strict about what matters and lenient where encoders differ: it rejects any byte
/// outside the alphabet (including whitespace), `=` anywhere but at the end, more than two `=`,
/// a padded text whose length is not a multiple of 4, and a length that leaves a single dangling
/// character; it accepts unpadded text and ignores nonzero bits in the last character, as
/// Python's `base64.b64decode` does.
public enum Base64 {
    private static let alphabet: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    private static let pad = UInt8(ascii: "=")

    /// `pairs[v]` for a 12-bit `v` holds the two characters for `v >> 6` and `v & 63`, first
    /// character in the low byte, so one little-endian 16-bit store writes both.
    private static let pairs: [UInt16] = {
        var table = [UInt16](repeating: 0, count: 4096)
        for v in 0..<4096 {
            table[v] = UInt16(alphabet[v >> 6]) | UInt16(alphabet[v & 63]) << 8
        }
        return table
    }()

    /// Marks an invalid character in the decode tables; no valid combination sets it.
    private static let invalid: UInt32 = 0x0100_0000

    /// `decodeTables[k][c]`: the 6-bit value of character `c` shifted into place for position `k`
    /// of a 4-character group (18, 12, 6, 0), or `invalid`. Laid out as one flat array of 4 x 256.
    private static let decodeTables: [UInt32] = {
        var table = [UInt32](repeating: invalid, count: 4 * 256)
        for (value, c) in alphabet.enumerated() {
            for k in 0..<4 {
                table[k * 256 + Int(c)] = UInt32(value) << UInt32(18 - 6 * k)
            }
        }
        return table
    }()

    /// The length of the padded encoding of `count` bytes.
    public static func encodedLength(_ count: Int) -> Int { (count + 2) / 3 * 4 }

    /// An upper bound of the decoded length of `count` characters of base64.
    public static func maxDecodedLength(_ count: Int) -> Int { (count + 3) / 4 * 3 }

    // MARK: encode

    /// Writes the padded encoding of `bytes` to `out`, which must hold `encodedLength(bytes.count)`.
    private static func encode(_ bytes: UnsafeRawBufferPointer, to out: UnsafeMutableRawPointer) {
        let n = bytes.count
        guard n > 0, let src = bytes.baseAddress else { return }
        pairs.withUnsafeBufferPointer { pairs in
            alphabet.withUnsafeBufferPointer { table in
                var i = 0
                var o = 0
                while i + 3 <= n {
                    let v = Int(src.load(fromByteOffset: i, as: UInt8.self)) << 16
                        | Int(src.load(fromByteOffset: i + 1, as: UInt8.self)) << 8
                        | Int(src.load(fromByteOffset: i + 2, as: UInt8.self))
                    out.storeBytes(of: pairs[v >> 12].littleEndian, toByteOffset: o, as: UInt16.self)
                    out.storeBytes(of: pairs[v & 0xFFF].littleEndian, toByteOffset: o + 2, as: UInt16.self)
                    i += 3
                    o += 4
                }
                switch n - i {
                case 1:
                    let v = Int(src.load(fromByteOffset: i, as: UInt8.self)) << 16
                    out.storeBytes(of: table[v >> 18 & 63], toByteOffset: o, as: UInt8.self)
                    out.storeBytes(of: table[v >> 12 & 63], toByteOffset: o + 1, as: UInt8.self)
                    out.storeBytes(of: pad, toByteOffset: o + 2, as: UInt8.self)
                    out.storeBytes(of: pad, toByteOffset: o + 3, as: UInt8.self)
                case 2:
                    let v = Int(src.load(fromByteOffset: i, as: UInt8.self)) << 16
                        | Int(src.load(fromByteOffset: i + 1, as: UInt8.self)) << 8
                    out.storeBytes(of: table[v >> 18 & 63], toByteOffset: o, as: UInt8.self)
                    out.storeBytes(of: table[v >> 12 & 63], toByteOffset: o + 1, as: UInt8.self)
                    out.storeBytes(of: table[v >> 6 & 63], toByteOffset: o + 2, as: UInt8.self)
                    out.storeBytes(of: pad, toByteOffset: o + 3, as: UInt8.self)
                default:
                    break
                }
            }
        }
    }

    /// Appends the encoding of `bytes` to `out` as ASCII bytes.
    public static func encode(_ bytes: UnsafeRawBufferPointer, into out: inout [UInt8]) {
        let length = encodedLength(bytes.count)
        guard length > 0 else { return }
        let start = out.count
        out.append(contentsOf: repeatElement(0, count: length))
        out.withUnsafeMutableBytes { encode(bytes, to: $0.baseAddress! + start) }
    }

    /// The encoding of `bytes` as a String, built in place.
    public static func encode(_ bytes: UnsafeRawBufferPointer) -> String {
        let length = encodedLength(bytes.count)
        guard length > 0 else { return "" }
        return String(unsafeUninitializedCapacity: length) { buffer in
            encode(bytes, to: UnsafeMutableRawPointer(buffer.baseAddress!))
            return length
        }
    }

    public static func encode(_ bytes: [UInt8]) -> String {
        bytes.withUnsafeBytes { encode($0) }
    }

    public static func encode(_ bytes: ArraySlice<UInt8>) -> String {
        bytes.withUnsafeBytes { encode($0) }
    }

    // MARK: decode

    /// The number of significant characters (padding stripped), or nil when the padding or the
    /// length is impossible.
    private static func significantLength(_ text: UnsafeRawBufferPointer) -> Int? {
        var n = text.count
        while n > 0 && text[n - 1] == pad { n -= 1 }
        let padding = text.count - n
        guard padding <= 2, n % 4 != 1 else { return nil }
        if padding > 0 && text.count % 4 != 0 { return nil }
        return n
    }

    /// Decodes the first `n` characters of `text` (no padding among them) into `out`, which must
    /// hold `n * 3 / 4` bytes. Returns false on a character outside the alphabet.
    private static func decode(_ text: UnsafeRawBufferPointer, count n: Int, to out: UnsafeMutableRawPointer) -> Bool {
        guard n > 0, let src = text.baseAddress else { return true }
        return decodeTables.withUnsafeBufferPointer { t -> Bool in
            var i = 0
            var o = 0
            var bad: UInt32 = 0
            while i + 4 <= n {
                let v = t[Int(src.load(fromByteOffset: i, as: UInt8.self))]
                    | t[256 + Int(src.load(fromByteOffset: i + 1, as: UInt8.self))]
                    | t[512 + Int(src.load(fromByteOffset: i + 2, as: UInt8.self))]
                    | t[768 + Int(src.load(fromByteOffset: i + 3, as: UInt8.self))]
                bad |= v
                out.storeBytes(of: UInt8(truncatingIfNeeded: v >> 16), toByteOffset: o, as: UInt8.self)
                out.storeBytes(of: UInt8(truncatingIfNeeded: v >> 8), toByteOffset: o + 1, as: UInt8.self)
                out.storeBytes(of: UInt8(truncatingIfNeeded: v), toByteOffset: o + 2, as: UInt8.self)
                i += 4
                o += 3
            }
            switch n - i {
            case 2:
                let v = t[Int(src.load(fromByteOffset: i, as: UInt8.self))]
                    | t[256 + Int(src.load(fromByteOffset: i + 1, as: UInt8.self))]
                bad |= v
                out.storeBytes(of: UInt8(truncatingIfNeeded: v >> 16), toByteOffset: o, as: UInt8.self)
            case 3:
                let v = t[Int(src.load(fromByteOffset: i, as: UInt8.self))]
                    | t[256 + Int(src.load(fromByteOffset: i + 1, as: UInt8.self))]
                    | t[512 + Int(src.load(fromByteOffset: i + 2, as: UInt8.self))]
                bad |= v
                out.storeBytes(of: UInt8(truncatingIfNeeded: v >> 16), toByteOffset: o, as: UInt8.self)
                out.storeBytes(of: UInt8(truncatingIfNeeded: v >> 8), toByteOffset: o + 1, as: UInt8.self)
            default:
                break
            }
            return bad & invalid == 0
        }
    }

    /// Appends the decoding of `text` to `out`. Returns false, leaving `out` as it was, on
    /// malformed input.
    public static func decode(_ text: UnsafeRawBufferPointer, into out: inout [UInt8]) -> Bool {
        guard let n = significantLength(text) else { return false }
        let length = n * 3 / 4
        guard length > 0 else { return true }
        let start = out.count
        out.append(contentsOf: repeatElement(0, count: length))
        let ok = out.withUnsafeMutableBytes { decode(text, count: n, to: $0.baseAddress! + start) }
        if !ok { out.removeLast(length) }
        return ok
    }

    /// The decoding of `text`, or nil when it is malformed.
    public static func decode(_ text: UnsafeRawBufferPointer) -> [UInt8]? {
        guard let n = significantLength(text) else { return nil }
        let length = n * 3 / 4
        var ok = true
        let bytes = [UInt8](unsafeUninitializedCapacity: length) { buffer, initialized in
            if length > 0 { ok = decode(text, count: n, to: UnsafeMutableRawPointer(buffer.baseAddress!)) }
            initialized = length
        }
        return ok ? bytes : nil
    }

    public static func decode(_ text: String) -> [UInt8]? {
        var text = text
        return text.withUTF8 { decode(UnsafeRawBufferPointer($0)) }
    }

    public static func decode(bytes: [UInt8]) -> [UInt8]? {
        bytes.withUnsafeBytes { decode($0) }
    }

    /// The length `text` decodes to, or nil when it is malformed in length or padding (the
    /// characters themselves are not checked). Cheap: for counting without decoding.
    public static func decodedLength(_ text: String) -> Int? {
        var text = text
        return text.withUTF8 { significantLength(UnsafeRawBufferPointer($0)) }.map { $0 * 3 / 4 }
    }
}
