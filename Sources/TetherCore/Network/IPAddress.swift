/// An IPv4 or IPv6 address as rtnetlink carries it (network byte order in the attribute),
/// stored as integers so that it is cheap to hash, compare and keep in a snapshot.
/// `description` is the text robot processes see: `192.0.2.1`, `2001:db8::1` (RFC 5952).
public enum IPAddress: Sendable, Hashable, Comparable, CustomStringConvertible {
    case v4(UInt32)
    case v6(high: UInt64, low: UInt64)

    /// From the raw attribute bytes: 4 bytes for IPv4, 16 for IPv6, anything else is nil.
    public init?<Bytes: Collection>(bytes: Bytes) where Bytes.Element == UInt8 {
        switch bytes.count {
        case 4:
            self = .v4(bytes.reduce(0) { $0 << 8 | UInt32($1) })
        case 16:
            var high: UInt64 = 0
            var low: UInt64 = 0
            for (i, byte) in bytes.enumerated() {
                if i < 8 { high = high << 8 | UInt64(byte) } else { low = low << 8 | UInt64(byte) }
            }
            self = .v6(high: high, low: low)
        default:
            return nil
        }
    }

    /// Convenience for tests and configuration: dotted quad or RFC 4291 text.
    public init?(_ text: String) {
        if let v4 = IPAddress.parseV4(Substring(text)) {
            self = .v4(v4)
        } else if let (high, low) = IPAddress.parseV6(text) {
            self = .v6(high: high, low: low)
        } else {
            return nil
        }
    }

    public var family: UInt8 {
        switch self {
        case .v4: return Netlink.Family.inet
        case .v6: return Netlink.Family.inet6
        }
    }

    public var isIPv4: Bool {
        if case .v4 = self { return true }
        return false
    }

    /// 169.254.0.0/16 or fe80::/10: valid only on one link, never a way to the brain.
    public var isLinkLocal: Bool {
        switch self {
        case .v4(let a): return a >> 16 == 0xA9FE
        case .v6(let high, _): return high >> 54 == 0xFE80 >> 6
        }
    }

    /// 224.0.0.0/4 or ff00::/8.
    public var isMulticast: Bool {
        switch self {
        case .v4(let a): return a >> 28 == 0xE
        case .v6(let high, _): return high >> 56 == 0xFF
        }
    }

    /// 127.0.0.0/8 or ::1.
    public var isLoopback: Bool {
        switch self {
        case .v4(let a): return a >> 24 == 127
        case .v6(let high, let low): return high == 0 && low == 1
        }
    }

    /// 0.0.0.0 or ::.
    public var isUnspecified: Bool {
        switch self {
        case .v4(let a): return a == 0
        case .v6(let high, let low): return high == 0 && low == 0
        }
    }

    public static func < (a: IPAddress, b: IPAddress) -> Bool {
        switch (a, b) {
        case (.v4(let x), .v4(let y)): return x < y
        case (.v4, .v6): return true
        case (.v6, .v4): return false
        case (.v6(let xh, let xl), .v6(let yh, let yl)): return (xh, xl) < (yh, yl)
        }
    }

    public var description: String {
        switch self {
        case .v4(let a):
            return IPAddress.dotted(a)
        case .v6(let high, let low):
            let groups = (0..<8).map { i -> UInt16 in
                let word = i < 4 ? high : low
                return UInt16(truncatingIfNeeded: word >> (48 - 16 * UInt64(i % 4)))
            }
            // ::ffff:a.b.c.d keeps its embedded IPv4 readable (RFC 5952 section 5).
            if high == 0, low >> 32 == 0xFFFF {
                return "::ffff:" + IPAddress.dotted(UInt32(truncatingIfNeeded: low))
            }
            return IPAddress.compressed(groups)
        }
    }

    private static func dotted(_ a: UInt32) -> String {
        "\(a >> 24).\(a >> 16 & 0xFF).\(a >> 8 & 0xFF).\(a & 0xFF)"
    }

    /// RFC 5952: lowercase hex without leading zeros, the longest run of two or more zero
    /// groups (the first one on a tie) replaced by `::`.
    private static func compressed(_ groups: [UInt16]) -> String {
        var bestStart = -1
        var bestLength = 1
        var runStart = -1
        for i in 0...groups.count {
            if i < groups.count, groups[i] == 0 {
                if runStart < 0 { runStart = i }
            } else if runStart >= 0 {
                if i - runStart > bestLength {
                    bestStart = runStart
                    bestLength = i - runStart
                }
                runStart = -1
            }
        }
        func hex(_ range: Range<Int>) -> String {
            groups[range].map { String($0, radix: 16) }.joined(separator: ":")
        }
        guard bestStart >= 0 else { return hex(0..<groups.count) }
        return hex(0..<bestStart) + "::" + hex((bestStart + bestLength)..<groups.count)
    }

    private static func parseV4(_ text: Substring) -> UInt32? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var value: UInt32 = 0
        for part in parts {
            guard (1...3).contains(part.count), part.allSatisfy({ $0.isASCII && $0.isNumber }),
                let octet = UInt32(part), octet <= 255
            else { return nil }
            value = value << 8 | octet
        }
        return value
    }

    private static func parseV6(_ text: String) -> (UInt64, UInt64)? {
        guard text.contains(":"), text.count <= 45 else { return nil }
        let halves = text.components(separatedByDoubleColon: ())
        guard halves.count <= 2 else { return nil }
        func groups(_ part: Substring, allowV4Tail: Bool) -> [UInt16]? {
            if part.isEmpty { return [] }
            var result: [UInt16] = []
            let fields = part.split(separator: ":", omittingEmptySubsequences: false)
            for (i, field) in fields.enumerated() {
                if allowV4Tail, i == fields.count - 1, field.contains(".") {
                    guard let v4 = parseV4(field) else { return nil }
                    result.append(UInt16(v4 >> 16))
                    result.append(UInt16(v4 & 0xFFFF))
                } else {
                    guard (1...4).contains(field.count), let g = UInt16(field, radix: 16) else { return nil }
                    result.append(g)
                }
            }
            return result
        }
        var all: [UInt16]
        if halves.count == 2 {
            guard let head = groups(halves[0], allowV4Tail: false),
                let tail = groups(halves[1], allowV4Tail: true),
                head.count + tail.count <= 7
            else { return nil }
            all = head + Array(repeating: 0, count: 8 - head.count - tail.count) + tail
        } else {
            guard let only = groups(halves[0], allowV4Tail: true), only.count == 8 else { return nil }
            all = only
        }
        var high: UInt64 = 0
        var low: UInt64 = 0
        for (i, g) in all.enumerated() {
            if i < 4 { high = high << 16 | UInt64(g) } else { low = low << 16 | UInt64(g) }
        }
        return (high, low)
    }
}

extension String {
    /// Splits at `::` (at most the first two pieces matter; more means malformed).
    fileprivate func components(separatedByDoubleColon: ()) -> [Substring] {
        var pieces: [Substring] = []
        var start = startIndex
        var i = startIndex
        while i < endIndex {
            let next = index(after: i)
            if self[i] == ":", next < endIndex, self[next] == ":" {
                pieces.append(self[start..<i])
                start = index(after: next)
                i = start
            } else {
                i = next
            }
        }
        pieces.append(self[start..<endIndex])
        return pieces
    }
}
