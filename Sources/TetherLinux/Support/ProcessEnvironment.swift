import Glibc

/// The process environment as a dictionary, read straight from `environ` (Foundation's
/// `ProcessInfo` did this before, and is not linked into tether's binaries).
public enum ProcessEnvironment {
    public static func current() -> [String: String] {
        var variables: [String: String] = [:]
        // environ is imported as an implicitly unwrapped pointer; it is NULL only after clearenv(3).
        let first: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = environ
        guard var entry = first else { return variables }
        while let pointer = entry.pointee {
            let text = String(cString: pointer)
            if let equals = text.firstIndex(of: "=") {
                let name = String(text[..<equals])
                // The first of duplicate names wins, as with getenv(3).
                if variables[name] == nil { variables[name] = String(text[text.index(after: equals)...]) }
            }
            entry += 1
        }
        return variables
    }
}
