import CLibYAML

/// What tether takes from libyaml's event API (yaml_parser_parse): the structure, each event's
/// 1-based line, and for scalars their text and whether they were plain.
enum YAMLEvent: Equatable {
    case streamStart
    case streamEnd
    case documentStart(line: Int)
    case documentEnd
    case scalar(YAMLScalar)
    case sequenceStart(line: Int)
    case sequenceEnd
    case mappingStart(line: Int)
    case mappingEnd
}

/// libyaml's parser over a private copy of the input, one event at a time. This is the only
/// code that touches libyaml. It refuses, as the events arrive, what tether's configuration never
/// needs and what makes YAML dangerous or ambiguous to read:
/// - anchors and aliases (`&a`, `*a`): refused outright rather than expanded with a bound, so
///   "billion laughs" stops at its first anchor and every value in the file is written where
///   it applies;
/// - tags (`!!str`, `!!int`, `!custom`): quoting says "string" and nothing else needs a tag;
/// - a `%YAML` directive other than 1.2: this parser resolves scalars as YAML 1.2 does, so a file
///   that asks for 1.1 (where `yes` is true) would be read differently from what it says.
/// The input must be UTF-8 (libyaml checks every byte and reports where it is not).
struct YAMLEventStream: ~Copyable {
    private let parser: UnsafeMutablePointer<yaml_parser_t>
    private let input: UnsafeMutableBufferPointer<UInt8>
    private let length: Int
    private let initialized: Bool

    init(_ bytes: [UInt8]) {
        // Both live on the heap: libyaml keeps a pointer to the input, and its string reader keeps
        // a pointer to the parser itself, so neither may move while parsing.
        parser = .allocate(capacity: 1)
        input = .allocate(capacity: max(bytes.count, 1))
        _ = input.initialize(from: bytes)
        length = bytes.count
        initialized = yaml_parser_initialize(parser) == 1
        if initialized {
            yaml_parser_set_encoding(parser, YAML_UTF8_ENCODING)
            yaml_parser_set_input_string(parser, input.baseAddress, length)
        }
    }

    deinit {
        if initialized { yaml_parser_delete(parser) }
        parser.deallocate()
        input.deallocate()
    }

    mutating func next() throws(YAMLError) -> YAMLEvent {
        guard initialized else { throw YAMLError(line: nil, message: "out of memory") }
        var event = yaml_event_t()
        guard yaml_parser_parse(parser, &event) == 1 else { throw parserError() }
        defer { yaml_event_delete(&event) }
        let line = event.start_mark.line + 1
        switch event.type {
        case YAML_STREAM_START_EVENT:
            return .streamStart
        case YAML_STREAM_END_EVENT:
            return .streamEnd
        case YAML_DOCUMENT_START_EVENT:
            if let version = event.data.document_start.version_directive,
               version.pointee.major != 1 || version.pointee.minor != 2 {
                throw YAMLError(line: line, message: "%YAML \(version.pointee.major).\(version.pointee.minor) is not supported: "
                                + "tether reads YAML 1.2 (remove the directive)")
            }
            return .documentStart(line: line)
        case YAML_DOCUMENT_END_EVENT:
            return .documentEnd
        case YAML_ALIAS_EVENT:
            throw YAMLError(line: line, message: "aliases (*\(text(event.data.alias.anchor))) are not supported: write the value out")
        case YAML_SCALAR_EVENT:
            let s = event.data.scalar
            try refuse(anchor: s.anchor, tag: s.tag, line: line)
            let value = String(decoding: UnsafeBufferPointer(start: s.value, count: s.length), as: UTF8.self)
            return .scalar(YAMLScalar(text: value, style: s.style == YAML_PLAIN_SCALAR_STYLE ? .plain : .quoted, line: line))
        case YAML_SEQUENCE_START_EVENT:
            try refuse(anchor: event.data.sequence_start.anchor, tag: event.data.sequence_start.tag, line: line)
            return .sequenceStart(line: line)
        case YAML_SEQUENCE_END_EVENT:
            return .sequenceEnd
        case YAML_MAPPING_START_EVENT:
            try refuse(anchor: event.data.mapping_start.anchor, tag: event.data.mapping_start.tag, line: line)
            return .mappingStart(line: line)
        case YAML_MAPPING_END_EVENT:
            return .mappingEnd
        default:
            throw YAMLError(line: line, message: "unexpected event \(event.type.rawValue) from libyaml")
        }
    }

    private func refuse(anchor: UnsafeMutablePointer<yaml_char_t>?, tag: UnsafeMutablePointer<yaml_char_t>?, line: Int) throws(YAMLError) {
        if let anchor {
            throw YAMLError(line: line, message: "anchors (&\(text(anchor))) are not supported: write the value out")
        }
        if let tag {
            // libyaml hands over the expanded tag; show it as it was most likely written.
            var written = text(tag)
            if written.hasPrefix("tag:yaml.org,2002:") { written = "!!" + written.dropFirst("tag:yaml.org,2002:".count) }
            throw YAMLError(line: line, message: "tags (\(written)) are not supported: quote a value to make it a string")
        }
    }

    private func text(_ pointer: UnsafeMutablePointer<yaml_char_t>?) -> String {
        guard let pointer else { return "" }
        return String(cString: UnsafePointer(pointer))
    }

    /// libyaml's problem as one line. A scanner or parser error has a position; a reader error
    /// (bad UTF-8, a control character) only a byte offset, turned into a line here.
    private func parserError() -> YAMLError {
        let p = parser.pointee
        let problem = p.problem.map { String(cString: $0) } ?? "unreadable"
        switch p.error {
        case YAML_MEMORY_ERROR:
            return YAMLError(line: nil, message: "out of memory")
        case YAML_READER_ERROR:
            let end = min(p.problem_offset, length)
            let line = 1 + input[..<end].reduce(0) { $0 + ($1 == UInt8(ascii: "\n") ? 1 : 0) }
            return YAMLError(line: line, message: problem)
        default:
            return YAMLError(line: p.problem_mark.line + 1, message: problem)
        }
    }
}
