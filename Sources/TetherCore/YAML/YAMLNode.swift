/// A YAML document as tether reads it: scalars, sequences and mappings, each with the 1-based
/// line it starts on so that a configuration error can point at it. No anchors, aliases or tags
/// survive into this tree (`YAMLParser` refuses them), and mapping keys are always scalars.
public indirect enum YAMLNode: Sendable {
    case scalar(YAMLScalar)
    case sequence([YAMLNode], line: Int)
    /// In file order; no two keys have the same text.
    case mapping([(key: YAMLScalar, value: YAMLNode)], line: Int)

    public var line: Int {
        switch self {
        case .scalar(let s): s.line
        case .sequence(_, let line), .mapping(_, let line): line
        }
    }

    /// A plain `null`, `~` or nothing at all: the key is there but says "default".
    public var isNull: Bool {
        if case .scalar(let s) = self, s.value == .null { return true }
        return false
    }
}

/// One scalar exactly as written: its text (escapes and folding already applied by the parser),
/// whether it was plain, and its line. `value` says what YAML 1.2 makes of it.
public struct YAMLScalar: Sendable, Equatable {
    public enum Style: Sendable, Equatable {
        /// Written bare: YAML's core schema decides whether it is a null, bool, number or string.
        case plain
        /// Single- or double-quoted, or a `|` / `>` block: always a string.
        case quoted
    }

    public var text: String
    public var style: Style
    public var line: Int

    public init(text: String, style: Style, line: Int) {
        self.text = text
        self.style = style
        self.line = line
    }
}
