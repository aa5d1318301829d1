/// A configuration problem, printed as one line that names the key and, when known, the line:
/// `tether.yaml:12: link.grace: "3 sec" is not a duration (use e.g. 250ms, 3s)`.
/// Never carries a secret: messages quote values only for keys that are not secrets.
public struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    public var source: String
    public var key: String?
    public var line: Int?
    public var message: String

    public init(source: String = "", key: String?, line: Int? = nil, message: String) {
        self.source = source
        self.key = key
        self.line = line
        self.message = message
    }

    public var description: String {
        var text = source.isEmpty ? "config" : source
        if let line { text += ":\(line)" }
        text += ": "
        if let key { text += "\(key): " }
        return text + message
    }
}
