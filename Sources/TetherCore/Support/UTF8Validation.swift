/// Checks bytes for well-formed UTF-8 without building a String: text frames (JSON events, a
/// base64 audio delta in each) are checked on every arrival, and `String(validating:)` would
/// allocate a copy of each just to throw it away.
public enum UTF8Validation {
    public static func isValid(_ bytes: UnsafeRawBufferPointer) -> Bool {
        let span = bytes.assumingMemoryBound(to: UInt8.self).span
        do {
            _ = try UTF8Span(validating: span)
            return true
        } catch {
            return false
        }
    }
}
