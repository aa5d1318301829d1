/// Substring search by UTF-8 bytes. Release builds leave out the standard library's string
/// processing module (1.4 MB of every binary, see the Makefile), which is where
/// `String.contains(_: String)` and `replacing(_:with:)` live; TetherCore's few searches use this.
extension String {
    /// The UTF-8 offsets where `needle` occurs, from `start`, left to right, not overlapping.
    func utf8Occurrences(of needle: String) -> [Int] {
        let needle = Array(needle.utf8)
        guard !needle.isEmpty else { return [] }
        let haystack = Array(utf8)
        var found: [Int] = []
        var index = 0
        while index + needle.count <= haystack.count {
            if haystack[index] == needle[0], haystack[index..<(index + needle.count)].elementsEqual(needle) {
                found.append(index)
                index += needle.count
            } else {
                index += 1
            }
        }
        return found
    }

    /// True when `needle` occurs in the string (byte for byte).
    func containsText(_ needle: String) -> Bool {
        needle.isEmpty || !utf8Occurrences(of: needle).isEmpty
    }

    /// Every occurrence of `target` replaced, left to right.
    func replacingAll(_ target: String, with replacement: String) -> String {
        let hits = utf8Occurrences(of: target)
        guard !hits.isEmpty else { return self }
        let haystack = Array(utf8)
        let width = target.utf8.count
        var result: [UInt8] = []
        result.reserveCapacity(haystack.count)
        var copied = 0
        for hit in hits {
            result += haystack[copied..<hit]
            result += replacement.utf8
            copied = hit + width
        }
        result += haystack[copied...]
        return String(decoding: result, as: UTF8.self)
    }
}
