import Testing
@testable import TetherCore

/// A deliberately naive encoder/decoder to check the table-driven one against.
private enum ReferenceBase64 {
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")

    static func encode(_ bytes: [UInt8]) -> String {
        var bits = ""
        for b in bytes {
            let s = String(b, radix: 2)
            bits += String(repeating: "0", count: 8 - s.count) + s
        }
        while bits.count % 6 != 0 { bits += "0" }
        var out = ""
        var chars = Array(bits)
        while !chars.isEmpty {
            let group = String(chars.prefix(6))
            chars.removeFirst(6)
            out.append(alphabet[Int(group, radix: 2)!])
        }
        while out.count % 4 != 0 { out += "=" }
        return out
    }
}

extension SplitMix64 {
    mutating func bytes(_ n: Int) -> [UInt8] { (0..<n).map { _ in UInt8(truncatingIfNeeded: next()) } }
}

@Suite struct Base64Tests {
    @Test(arguments: [
        ("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="), ("foobar", "Zm9vYmFy"),
    ])
    func rfc4648Vectors(plain: String, encoded: String) {
        #expect(Base64.encode(Array(plain.utf8)) == encoded)
        #expect(Base64.decode(encoded) == Array(plain.utf8))
    }

    @Test func everyByteValueRoundTrips() {
        let bytes = (0...255).map { UInt8($0) } + (0...255).reversed().map { UInt8($0) }
        let text = Base64.encode(bytes)
        #expect(text == ReferenceBase64.encode(bytes))
        #expect(Base64.decode(text) == bytes)
    }

    @Test func randomLengthsMatchReference() {
        var random = SplitMix64(seed: 42)
        for length in 0...200 {
            let bytes = random.bytes(length)
            let text = Base64.encode(bytes)
            #expect(text.utf8.count == Base64.encodedLength(length))
            #expect(text == ReferenceBase64.encode(bytes), "length \(length)")
            #expect(Base64.decode(text) == bytes, "length \(length)")
            #expect(Base64.decodedLength(text) == length)
        }
    }

    @Test func pcmSizedFrameRoundTrips() {
        var random = SplitMix64(seed: 7)
        let frame = random.bytes(4800)  // 100 ms of 24 kHz PCM16
        let text = Base64.encode(frame)
        #expect(text.utf8.count == 6400)
        #expect(Base64.decode(text) == frame)
    }

    @Test func unpaddedInputIsAccepted() {
        #expect(Base64.decode("Zg") == Array("f".utf8))
        #expect(Base64.decode("Zm8") == Array("fo".utf8))
        #expect(Base64.decode("Zm9vYmE") == Array("fooba".utf8))
    }

    @Test(arguments: [
        "Z",  // one dangling character
        "Zm9vY",  // five characters leave one dangling
        "Zg===",  // three padding characters
        "Zg=",  // padded but not a multiple of 4
        "Zm=v",  // padding in the middle
        "Zm9v\nYmFy",  // whitespace is not skipped
        "Zm9v YmFy",
        "Zm9v-mFy",  // URL-safe alphabet is not this one
        "Zm9v_mFy",
        "====",
        "Zm9\u{00E9}",  // non-ASCII
    ])
    func malformedInputIsRejected(text: String) {
        #expect(Base64.decode(text) == nil)
    }

    @Test func decodeIntoAppendsAndLeavesOutputAloneOnFailure() {
        var out: [UInt8] = [1, 2, 3]
        let good = Array("Zm9v".utf8)
        let ok = good.withUnsafeBytes { Base64.decode($0, into: &out) }
        #expect(ok)
        #expect(out == [1, 2, 3] + Array("foo".utf8))

        let bad = Array("Zm9v!!!!".utf8)
        let failed = bad.withUnsafeBytes { Base64.decode($0, into: &out) }
        #expect(!failed)
        #expect(out == [1, 2, 3] + Array("foo".utf8))
    }

    @Test func encodeIntoAppends() {
        var out: [UInt8] = Array("x:".utf8)
        [UInt8]("foobar".utf8).withUnsafeBytes { Base64.encode($0, into: &out) }
        #expect(String(decoding: out, as: UTF8.self) == "x:Zm9vYmFy")
    }

    @Test func nonzeroTrailingBitsAreIgnored() {
        // "Zh==" carries bits past the one byte it encodes; lenient decoders accept it.
        #expect(Base64.decode("Zh==") == Array("f".utf8))
    }

    @Test func everyInvalidByteIsRejectedInEveryPosition() {
        let valid = Set(Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8))
        for byte in 0...255 where !valid.contains(UInt8(byte)) && byte != UInt8(ascii: "=") {
            for position in 0..<8 {
                var text = Array("Zm9vYmFy".utf8)
                text[position] = UInt8(byte)
                #expect(Base64.decode(bytes: text) == nil, "byte \(byte) at \(position)")
            }
        }
    }
}
