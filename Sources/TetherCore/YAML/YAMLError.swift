/// Why a YAML document was refused: a syntax error from libyaml, or one of the shapes tether's
/// parser will not build (aliases, tags, a second document, too deep, too many values, a key
/// given twice). `key` is set only when the problem belongs to one key (a duplicate), as the
/// dotted path of mapping keys that leads to it.
public struct YAMLError: Error, Sendable, Equatable {
    public var line: Int?
    public var key: String?
    public var message: String

    public init(line: Int?, key: String? = nil, message: String) {
        self.line = line
        self.key = key
        self.message = message
    }
}
