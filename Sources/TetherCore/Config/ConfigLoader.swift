import Logging

/// Reads `tether.yaml` strictly: every key must be known, every value well-formed and in range.
/// A mistake stops the daemon with exit 78 and one line naming the key, because a robot that
/// silently runs on a half-understood configuration is worse than one that refuses to start.
public enum ConfigLoader {
    public static func load(yaml: String, source: String = "tether.yaml") throws(ConfigError) -> TetherConfig {
        try load(bytes: Array(yaml.utf8), source: source)
    }

    /// `bytes` as read from the file: libyaml checks that they are UTF-8 and says on which line
    /// they are not.
    public static func load(bytes: [UInt8], source: String = "tether.yaml") throws(ConfigError) -> TetherConfig {
        let root: YAMLNode?
        do {
            root = try YAMLParser.parse(bytes)
        } catch {
            // A duplicate key is a mistake in the configuration, named like the others;
            // everything else is a mistake in the YAML itself.
            throw ConfigError(source: source, key: error.key, line: error.line,
                              message: error.key == nil ? "invalid YAML: \(error.message)" : error.message)
        }
        var config = TetherConfig()
        guard let root, !root.isNull else { return config }
        var reader = SectionReader(node: root, path: "", source: source)
        try reader.requireMapping()
        try reader.section("upstream") { (s: inout SectionReader) throws(ConfigError) in try readUpstream(&s, into: &config.upstream) }
        try reader.section("link") { (s: inout SectionReader) throws(ConfigError) in try readLink(&s, into: &config.link) }
        try reader.section("audio") { (s: inout SectionReader) throws(ConfigError) in try readAudio(&s, into: &config.audio) }
        try reader.section("conversation") { (s: inout SectionReader) throws(ConfigError) in
            try readConversation(&s, into: &config.conversation)
        }
        try reader.section("network") { (s: inout SectionReader) throws(ConfigError) in try readNetwork(&s, into: &config.network) }
        try reader.section("control") { (s: inout SectionReader) throws(ConfigError) in try readControl(&s, into: &config.control) }
        try reader.section("log") { (s: inout SectionReader) throws(ConfigError) in try readLog(&s, into: &config.log) }
        try reader.finish()
        try crossCheck(config, source: source)
        return config
    }

    private static func readUpstream(_ s: inout SectionReader, into u: inout UpstreamConfig) throws(ConfigError) {
        if let text = try s.string("url") {
            guard let url = UpstreamURL.parse(text) else {
                throw s.error("url", "must be a ws:// or wss:// URL with a host")
            }
            u.url = url
        }
        if let p: UpstreamProtocol = try s.enumeration("protocol") { u.protocolKind = p }
        if s.has("api_key_file") {
            u.apiKeyFile = try s.optionalString("api_key_file")
            u.apiKeyFileIsExplicit = u.apiKeyFile != nil
        }
        if let headers = try s.stringMap("headers") { u.headers = headers.map { HTTPHeader(name: $0.0, value: $0.1) } }
        if s.has("ca_file") { u.caFile = try s.optionalString("ca_file") }
        if let d = try s.duration("connect_timeout", min: .milliseconds(100), max: .seconds(300)) { u.connectTimeout = d }
        if let d = try s.duration("handshake_timeout", min: .milliseconds(100), max: .seconds(300)) { u.handshakeTimeout = d }
        if let d = try s.duration("ping_interval", min: .milliseconds(100), max: .seconds(300)) { u.pingInterval = d }
        if let d = try s.duration("tool_timeout", min: .milliseconds(100), max: .seconds(3600)) { u.toolTimeout = d }
        if let n = try s.integer("max_frame_bytes", in: 1024...(64 << 20)) { u.maxFrameBytes = n }
        if s.has("token") {
            if s.isNull("token") {
                s.markRead("token")
                u.token = nil
            } else {
                try s.section("token") { (t: inout SectionReader) throws(ConfigError) in u.token = try readToken(&t) }
            }
        }
        if let session = try s.object("session") { u.session = session }
    }

    private static func readToken(_ t: inout SectionReader) throws(ConfigError) -> TokenConfig {
        guard let url = try t.string("url") else { throw t.error("url", "is required for a token endpoint") }
        guard url.hasPrefix("https://") || url.hasPrefix("http://") else {
            throw t.error("url", "must be an https:// (or http://) URL")
        }
        var token = TokenConfig(url: url)
        if let m = try t.string("method") {
            guard let method = TokenConfig.Method(rawValue: m.uppercased()) else {
                throw t.error("method", "must be POST or GET")
            }
            token.method = method
        }
        if t.has("credential_file") { token.credentialFile = try t.optionalString("credential_file") }
        if let headers = try t.stringMap("headers") { token.headers = headers.map { HTTPHeader(name: $0.0, value: $0.1) } }
        if t.has("body") {
            if let object = try? t.object("body") {
                token.body = JSONWriter.string(.object(object))
            } else {
                token.body = try t.optionalString("body")
            }
        }
        for key in ["field", "expires_field"] {
            guard let path = try t.string(key) else { continue }
            guard !path.isEmpty, !path.split(separator: ".", omittingEmptySubsequences: false).contains(where: \.isEmpty) else {
                throw t.error(key, "must be a dotted path such as value or client_secret.value")
            }
            if key == "field" { token.field = path } else { token.expiresField = path }
        }
        if token.method == .get && token.body != nil {
            throw t.error("body", "is sent only with method POST")
        }
        if let d = try t.duration("refresh_before", min: .zero, max: .seconds(86400)) { token.refreshBefore = d }
        if let d = try t.duration("connect_timeout", min: .milliseconds(100), max: .seconds(300)) { token.connectTimeout = d }
        if let d = try t.duration("timeout", min: .milliseconds(100), max: .seconds(300)) { token.timeout = d }
        return token
    }

    private static func readLink(_ s: inout SectionReader, into l: inout LinkConfig) throws(ConfigError) {
        if let d = try s.duration("grace", min: .zero, max: .seconds(3600)) { l.grace = d }
        if let d = try s.duration("failed_grace", min: .zero, max: .seconds(3600)) { l.failedGrace = d }
        try s.section("backoff") { (b: inout SectionReader) throws(ConfigError) in
            if let d = try b.duration("initial", min: .milliseconds(1), max: .seconds(3600)) { l.backoff.initial = d }
            if let d = try b.duration("max", min: .milliseconds(1), max: .seconds(86400)) { l.backoff.max = d }
            if let m = try b.number("multiplier", in: 1...100) { l.backoff.multiplier = m }
            if let j = try b.number("jitter", in: 0...1) { l.backoff.jitter = j }
        }
        if l.backoff.max < l.backoff.initial {
            throw s.error("backoff.max", "must not be shorter than backoff.initial")
        }
        try s.section("buffer") { (b: inout SectionReader) throws(ConfigError) in
            if let d = try b.duration("max_age", min: .zero, max: .seconds(3600)) { l.buffer.maxAge = d }
            if let n = try b.integer("max_bytes", in: 0...(256 << 20)) { l.buffer.maxBytes = n }
            if let r = try b.bool("replay") { l.buffer.replay = r }
        }
    }

    private static func readDevice(_ d: inout SectionReader, into c: inout AudioDeviceConfig) throws(ConfigError) {
        if let name = try d.string("device") {
            guard !name.isEmpty else { throw d.error("device", "must not be empty") }
            c.device = name
        }
        if let r = try d.integer("rate", in: 8000...192_000) { c.rate = r }
        if let ch = try d.integer("channels", in: 1...8) { c.channels = ch }
        if let p = try d.duration("period", min: .milliseconds(5), max: .milliseconds(200)) { c.period = p }
    }

    private static func readAudio(_ s: inout SectionReader, into a: inout AudioConfig) throws(ConfigError) {
        try s.section("capture") { (d: inout SectionReader) throws(ConfigError) in try readDevice(&d, into: &a.capture) }
        try s.section("playback") { (d: inout SectionReader) throws(ConfigError) in
            if let p = try d.duration("prebuffer", min: .zero, max: .seconds(2)) { a.playback.prebuffer = p }
            if let m = try d.duration("max_buffer", min: .seconds(1), max: .seconds(600)) { a.playback.maxBuffer = m }
            try readDevice(&d, into: &a.playback.device)
        }
        if let e: EchoMode = try s.enumeration("echo") { a.echo = e }
        if let t = try s.duration("echo_tail", min: .zero, max: .seconds(5)) { a.echoTail = t }
        // As a filter length the tail costs CPU in proportion and converges slower: a canceller
        // longer than half a second models a hall, not a robot's head.
        if a.echo == .cancel, !(Duration.milliseconds(20)...Duration.milliseconds(500)).contains(a.echoTail) {
            throw s.error("echo_tail", "\(DurationText.format(a.echoTail)) is out of range for echo: cancel (20ms..500ms: the canceller's filter length)")
        }
        if let d = try s.duration("echo_delay", min: .zero, max: .milliseconds(500)) { a.echoDelay = d }
        if let n: NoiseSuppression = try s.enumeration("noise_suppression") { a.noiseSuppression = n }
        if let v = try s.integer("volume", in: 0...100) { a.volume = v }
    }

    private static func readConversation(_ s: inout SectionReader, into c: inout ConversationConfig) throws(ConfigError) {
        if let b = try s.bool("carry") { c.carry = b }
        if let n = try s.integer("max_items", in: 0...1000) { c.maxItems = n }
        if let n = try s.integer("max_chars", in: 0...1_000_000) { c.maxChars = n }
        if let d = try s.duration("max_age", min: .seconds(1), max: .seconds(7 * 86400)) { c.maxAge = d }
        if s.has("rotate_after") {
            c.rotateAfterIsExplicit = true
            c.rotateAfter = try s.duration("rotate_after", min: .seconds(5), max: .seconds(86400))
        }
        if let d = try s.duration("rotate_deadline", min: .seconds(5), max: .seconds(86400)) { c.rotateDeadline = d }
        if let after = c.rotateAfter, c.rotateDeadline <= after {
            throw s.error(s.has("rotate_deadline") ? "rotate_deadline" : "rotate_after",
                          "rotate_deadline (\(DurationText.format(c.rotateDeadline))) must be later than rotate_after (\(DurationText.format(after)))")
        }
        if s.has("transcribe") {
            let model = try s.optionalString("transcribe")
            if let model, model.isEmpty || model.contains(where: { $0.isWhitespace }) {
                throw s.error("transcribe", "must be a model name such as gpt-4o-mini-transcribe, or null")
            }
            c.transcribe = model
        }
    }

    private static func readNetwork(_ s: inout SectionReader, into n: inout NetworkConfig) throws(ConfigError) {
        if let w = try s.bool("watch") { n.watch = w }
        if let list = try s.stringList("ignore_interfaces") { n.ignoreInterfaces = list }
        if let d = try s.duration("debounce", min: .zero, max: .seconds(60)) { n.debounce = d }
        if let d = try s.duration("probe_timeout", min: .milliseconds(100), max: .seconds(60)) { n.probeTimeout = d }
    }

    private static func readControl(_ s: inout SectionReader, into c: inout ControlConfig) throws(ConfigError) {
        if let path = try s.string("socket") {
            guard path.hasPrefix("/"), path.utf8.count < 108 else {
                throw s.error("socket", "must be an absolute path shorter than 108 bytes")
            }
            c.socket = path
        }
        if s.has("group") { c.group = try s.optionalString("group") }
        if let text = try s.scalarText("mode") {
            guard text.count <= 4, let mode = UInt32(text, radix: 8), mode <= 0o777 else {
                throw s.error("mode", "must be an octal file mode such as \"0660\"")
            }
            c.mode = mode
        }
    }

    private static func readLog(_ s: inout SectionReader, into l: inout LogConfig) throws(ConfigError) {
        if let text = try s.string("level") {
            guard let level = parseLogLevel(text) else {
                throw s.error("level", "must be one of trace, debug, info, notice, warning, error, critical")
            }
            l.level = level
        }
        if let t: LogTarget = try s.enumeration("target") { l.target = t }
    }

    public static func parseLogLevel(_ text: String) -> Logger.Level? {
        Logger.Level(rawValue: text.lowercased() == "warn" ? "warning" : text.lowercased())
    }

    private static func crossCheck(_ c: TetherConfig, source: String) throws(ConfigError) {
        if c.upstream.protocolKind == .openaiRealtime {
            if c.audio.capture.rate != 24_000 {
                throw ConfigError(source: source, key: "audio.capture.rate",
                                  message: "openai-realtime streams 24000 Hz PCM; use rate 24000 (a plug device resamples)")
            }
            if c.audio.playback.device.rate != 24_000 {
                throw ConfigError(source: source, key: "audio.playback.rate",
                                  message: "openai-realtime streams 24000 Hz PCM; use rate 24000 (a plug device resamples)")
            }
        }
        if c.audio.capture.framesPerPeriod < 1 {
            throw ConfigError(source: source, key: "audio.capture.period", message: "is shorter than one sample")
        }
    }
}

/// Walks one mapping of the YAML document, remembering which keys were read so that
/// `finish()` can refuse the ones nobody asked for.
struct SectionReader {
    let node: YAMLNode
    let path: String
    let source: String
    private var seen: Set<String> = []

    init(node: YAMLNode, path: String, source: String) {
        self.node = node
        self.path = path
        self.source = source
    }

    func fullKey(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    func error(_ key: String, _ message: String) -> ConfigError {
        let line = value(key)?.line ?? node.line
        return ConfigError(source: source, key: fullKey(key), line: line, message: message)
    }

    func requireMapping() throws(ConfigError) {
        guard case .mapping = node else {
            throw ConfigError(source: source, key: path.isEmpty ? nil : path, line: node.line,
                              message: "must be a mapping of keys to values")
        }
    }

    private func value(_ key: String) -> YAMLNode? {
        guard case .mapping(let mapping, _) = node else { return nil }
        for (k, v) in mapping where k.text == key { return v }
        return nil
    }

    func has(_ key: String) -> Bool { value(key) != nil }

    func isNull(_ key: String) -> Bool { value(key)?.isNull ?? false }

    private mutating func take(_ key: String) -> YAMLNode? {
        seen.insert(key)
        guard let v = value(key), !v.isNull else { return nil }
        return v
    }

    /// For keys whose null value needs no reading.
    mutating func markRead(_ key: String) { seen.insert(key) }

    func finish() throws(ConfigError) {
        guard case .mapping(let mapping, _) = node else { return }
        for (k, _) in mapping where !seen.contains(k.text) {
            throw ConfigError(source: source, key: fullKey(k.text), line: k.line, message: "unknown key")
        }
    }

    mutating func section(_ key: String, _ body: (inout SectionReader) throws(ConfigError) -> Void) throws(ConfigError) {
        guard let v = take(key) else { return }
        var sub = SectionReader(node: v, path: fullKey(key), source: source)
        try sub.requireMapping()
        try body(&sub)
        try sub.finish()
    }

    private mutating func scalar(_ key: String, _ shape: String) throws(ConfigError) -> YAMLScalar? {
        guard let v = take(key) else { return nil }
        guard case .scalar(let s) = v else { throw error(key, shape) }
        return s
    }

    /// The text as written, whatever YAML would make of it: for keys with their own format
    /// (durations, file modes, names).
    mutating func scalarText(_ key: String) throws(ConfigError) -> String? {
        try scalar(key, "must be a single value")?.text
    }

    mutating func string(_ key: String) throws(ConfigError) -> String? {
        try scalar(key, "must be a string")?.text
    }

    mutating func optionalString(_ key: String) throws(ConfigError) -> String? {
        try string(key)
    }

    mutating func duration(_ key: String, min: Duration, max: Duration) throws(ConfigError) -> Duration? {
        guard let text = try scalarText(key) else { return nil }
        guard let d = DurationText.parse(text) else {
            throw error(key, "\"\(text)\" is not a duration (use e.g. 250ms, 3s, 1m)")
        }
        guard d >= min, d <= max else {
            throw error(key, "\(text) is out of range (\(DurationText.format(min))..\(DurationText.format(max)))")
        }
        return d
    }

    /// A YAML 1.2 integer: `480000`, `-3`, `0x1F`, `0o17`. Not `1_000` (a string in YAML 1.2),
    /// not a quoted `"55"` and not `017` (decimal in YAML 1.2, octal in 1.1 and C): each is
    /// refused with a hint rather than guessed at.
    mutating func integer(_ key: String, in range: ClosedRange<Int>) throws(ConfigError) -> Int? {
        guard let s = try scalar(key, "must be a whole number") else { return nil }
        switch s.value {
        case .int(let n):
            let digits = s.text.drop { $0 == "+" || $0 == "-" }
            if digits.count > 1, digits.first == "0", digits.allSatisfy({ $0.isASCII && $0.isNumber }) {
                throw error(key, "\"\(s.text)\" has a leading zero: write \(n), or 0o\(digits.dropFirst()) for octal")
            }
            guard range.contains(n) else { throw error(key, "\(n) is out of range (\(range.lowerBound)..\(range.upperBound))") }
            return n
        case .float(let d) where d.magnitude >= 0x1p63:
            throw error(key, "\(s.text) is out of range (\(range.lowerBound)..\(range.upperBound))")
        default:
            let separators = s.style == .plain && s.text.contains("_")
            let hint = separators ? " (YAML 1.2 has no digit separators: write it without _)" : Self.quotedHint(s)
            throw error(key, "\"\(s.text)\" is not a whole number" + hint)
        }
    }

    /// A YAML 1.2 integer or float, finite and in `range`.
    mutating func number(_ key: String, in range: ClosedRange<Double>) throws(ConfigError) -> Double? {
        guard let s = try scalar(key, "must be a number") else { return nil }
        let n: Double
        switch s.value {
        case .int(let i): n = Double(i)
        case .float(let d): n = d
        default: throw error(key, "\"\(s.text)\" is not a number" + Self.quotedHint(s))
        }
        // Also refuses .inf and .nan, which no range contains.
        guard range.contains(n) else { throw error(key, "\(s.text) is out of range (\(range.lowerBound)..\(range.upperBound))") }
        return n
    }

    /// Only `true` and `false` (YAML 1.2): `yes`, `on` and the like are strings, refused here
    /// instead of being read as a YAML 1.1 parser would.
    mutating func bool(_ key: String) throws(ConfigError) -> Bool? {
        guard let s = try scalar(key, "must be true or false") else { return nil }
        if case .bool(let b) = s.value { return b }
        let yaml11 = ["yes", "no", "on", "off", "y", "n"].contains(s.text.lowercased())
        let hint = s.style == .plain && yaml11 ? " (YAML 1.2 reads \(s.text) as a string)" : Self.quotedHint(s)
        throw error(key, "\"\(s.text)\" is not true or false" + hint)
    }

    /// A hint for a quoted scalar that would have been a number or a bool without its quotes.
    private static func quotedHint(_ s: YAMLScalar) -> String {
        guard s.style == .quoted else { return "" }
        if case .string = YAMLScalar(text: s.text, style: .plain, line: s.line).value { return "" }
        return " (quoted, so it is a string: remove the quotes)"
    }

    mutating func enumeration<E: RawRepresentable & CaseIterable>(_ key: String) throws(ConfigError) -> E?
    where E.RawValue == String {
        guard let text = try scalarText(key) else { return nil }
        guard let e = E(rawValue: text) else {
            throw error(key, "\"\(text)\" must be one of \(E.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return e
    }

    mutating func stringList(_ key: String) throws(ConfigError) -> [String]? {
        guard let v = take(key) else { return nil }
        guard case .sequence(let seq, _) = v else { throw error(key, "must be a list of strings") }
        var out: [String] = []
        for item in seq {
            guard case .scalar(let s) = item else { throw error(key, "must be a list of strings") }
            out.append(s.text)
        }
        return out
    }

    mutating func stringMap(_ key: String) throws(ConfigError) -> [(String, String)]? {
        guard let v = take(key) else { return nil }
        guard case .mapping(let mapping, _) = v else { throw error(key, "must be a mapping of names to strings") }
        var out: [(String, String)] = []
        for (name, item) in mapping {
            guard case .scalar(let value) = item, !name.text.isEmpty,
                !name.text.contains(where: { $0 == ":" || $0.isWhitespace || $0.isNewline }),
                !value.text.contains(where: \.isNewline)
            else { throw error(key, "must map header names to single-line strings") }
            out.append((name.text, value.text))
        }
        return out
    }

    mutating func object(_ key: String) throws(ConfigError) -> JSONObject? {
        guard let v = take(key) else { return nil }
        guard case .object(let object) = try json(v, key: key) else { throw error(key, "must be a mapping") }
        return object
    }

    /// YAML 1.2 values as JSON: plain scalars by the core schema, quoted ones as strings.
    private func json(_ node: YAMLNode, key: String) throws(ConfigError) -> JSONValue {
        switch node {
        case .scalar(let s):
            switch s.value {
            case .null: return .null
            case .bool(let b): return .bool(b)
            case .int(let i): return .number(Double(i))
            case .float(let f):
                guard f.isFinite else {
                    throw ConfigError(source: source, key: fullKey(key), line: s.line, message: "\(s.text) is not a number JSON can carry")
                }
                return .number(f)
            case .string(let text): return .string(text)
            }
        case .sequence(let seq, _):
            var items: [JSONValue] = []
            for item in seq { items.append(try json(item, key: key)) }
            return .array(items)
        case .mapping(let mapping, _):
            var object = JSONObject()
            for (name, item) in mapping { object[name.text] = try json(item, key: key) }
            return .object(object)
        }
    }
}
