/// Builds a `YAMLNode` tree from libyaml's events. Besides what `YAMLEventStream` refuses, it
/// holds the document to the shapes a configuration file has, each refusal one `YAMLError`:
/// - one document: a second `---` is an error, not silently ignored;
/// - mapping keys are scalars, and a key given twice is an error naming it and both lines
///   (keys compare by their text: `1` and `"1"` are the same key here);
/// - at most `maxDepth` nested sequences and mappings, and `maxNodes` values in all, so that a
///   hostile file costs bounded time and memory (the size of the file is bounded where it is
///   read, by `ConfigFile`).
public enum YAMLParser {
    public struct Limits: Sendable {
        public var maxDepth: Int
        public var maxNodes: Int

        /// tether.yaml has under a hundred values and nests four deep; a session with tool
        /// schemas has a few thousand at most.
        public init(maxDepth: Int = 64, maxNodes: Int = 100_000) {
            self.maxDepth = maxDepth
            self.maxNodes = maxNodes
        }
    }

    /// The document in `bytes` (UTF-8), or nil for a stream without one (empty, or only comments).
    public static func parse(_ bytes: [UInt8], limits: Limits = Limits()) throws(YAMLError) -> YAMLNode? {
        var builder = TreeBuilder(events: YAMLEventStream(bytes), limits: limits)
        return try builder.document()
    }
}

private struct TreeBuilder: ~Copyable {
    var events: YAMLEventStream
    let limits: YAMLParser.Limits
    var nodes = 0
    /// The keys and indexes from the root to the node being built, to name a duplicate key.
    var path: [PathStep] = []

    enum PathStep {
        case key(String)
        case index(Int)
    }

    init(events: consuming YAMLEventStream, limits: YAMLParser.Limits) {
        self.events = events
        self.limits = limits
    }

    mutating func document() throws(YAMLError) -> YAMLNode? {
        guard try events.next() == .streamStart else { throw Self.outOfOrder }
        let start = try events.next()
        if start == .streamEnd { return nil }
        guard case .documentStart = start else { throw Self.outOfOrder }
        let root = try node(events.next(), depth: 1)
        guard try events.next() == .documentEnd else { throw Self.outOfOrder }
        switch try events.next() {
        case .streamEnd:
            return root
        case .documentStart(let line):
            throw YAMLError(line: line, message: "a second document (---) is not allowed: one file holds one configuration")
        default:
            throw Self.outOfOrder
        }
    }

    private mutating func node(_ event: YAMLEvent, depth: Int) throws(YAMLError) -> YAMLNode {
        switch event {
        case .scalar(let s):
            try count(line: s.line)
            return .scalar(s)
        case .sequenceStart(let line):
            try count(line: line)
            try checkDepth(depth, line: line)
            var items: [YAMLNode] = []
            while true {
                let next = try events.next()
                if next == .sequenceEnd { return .sequence(items, line: line) }
                path.append(.index(items.count))
                items.append(try node(next, depth: depth + 1))
                path.removeLast()
            }
        case .mappingStart(let line):
            try count(line: line)
            try checkDepth(depth, line: line)
            var pairs: [(key: YAMLScalar, value: YAMLNode)] = []
            var firstLine: [String: Int] = [:]
            while true {
                let next = try events.next()
                if next == .mappingEnd { return .mapping(pairs, line: line) }
                guard case .scalar(let key) = next else {
                    throw YAMLError(line: next.line ?? line, message: "a mapping key must be a single value, not a list or a mapping")
                }
                try count(line: key.line)
                path.append(.key(key.text))
                if let first = firstLine[key.text] {
                    throw YAMLError(line: key.line, key: dottedPath, message: "appears more than once (first on line \(first))")
                }
                firstLine[key.text] = key.line
                pairs.append((key, try node(events.next(), depth: depth + 1)))
                path.removeLast()
            }
        default:
            throw Self.outOfOrder
        }
    }

    private mutating func count(line: Int) throws(YAMLError) {
        nodes += 1
        guard nodes <= limits.maxNodes else {
            throw YAMLError(line: line, message: "more than \(limits.maxNodes) values")
        }
    }

    private func checkDepth(_ depth: Int, line: Int) throws(YAMLError) {
        guard depth <= limits.maxDepth else {
            throw YAMLError(line: line, message: "nested deeper than \(limits.maxDepth) levels")
        }
    }

    /// `upstream.session.tools[0].name`
    private var dottedPath: String {
        var text = ""
        for step in path {
            switch step {
            case .key(let key): text += text.isEmpty ? key : ".\(key)"
            case .index(let i): text += "[\(i)]"
            }
        }
        return text
    }

    /// libyaml emits events in a well-formed order; this is only for a broken promise.
    private static let outOfOrder = YAMLError(line: nil, message: "libyaml produced events out of order")
}

extension YAMLEvent {
    fileprivate var line: Int? {
        switch self {
        case .documentStart(let line), .sequenceStart(let line), .mappingStart(let line): line
        case .scalar(let s): s.line
        default: nil
        }
    }
}
