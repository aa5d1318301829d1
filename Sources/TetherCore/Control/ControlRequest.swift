/// One command line from a control client, decoded and validated. Decoding is pure so that
/// every malformed line a client can send is covered by unit tests, not by the socket server.
public struct ControlRequest: Sendable, Equatable {
    public var id: JSONValue
    public var command: ControlCommand

    public init(id: JSONValue, command: ControlCommand) {
        self.id = id
        self.command = command
    }

    /// Decodes a line, or returns the error response to send back (with the request's id
    /// when one could be read, so the client can still match it).
    public static func decode(line: [UInt8]) -> Result<ControlRequest, ControlFailure> {
        let value: JSONValue
        do {
            value = try JSONParser.parse(bytes: line, maxDepth: 16)
        } catch {
            return .failure(ControlFailure(id: .null, error: .init(.invalidJSON, "invalid JSON: \(error.description)")))
        }
        guard case .object(let object) = value else {
            return .failure(ControlFailure(id: .null, error: .init(.invalidRequest, "a request is a JSON object")))
        }
        let id = object["id"] ?? .null
        guard case .string(let name)? = object["cmd"] else {
            return .failure(ControlFailure(id: id, error: .init(.invalidRequest, "missing \"cmd\"")))
        }
        switch ControlCommand.decode(name: name, arguments: object) {
        case .success(let command): return .success(ControlRequest(id: id, command: command))
        case .failure(let error): return .failure(ControlFailure(id: id, error: error))
        }
    }
}

public struct ControlFailure: Error, Sendable, Equatable {
    public var id: JSONValue
    public var error: ControlError
}

public enum ControlCommand: Sendable, Equatable {
    case status
    case subscribe(topics: Set<EventTopic>)
    case mute
    case unmute
    case volume(Int)
    case reconnect
    case pause
    case resume
    case say(String)
    case interrupt
    case reload
    case logLevel(String)
    case toolResult(callID: String, output: String)
    /// Clear the conversation and start a fresh upstream session (a new person, or privacy).
    case forget
    /// Test-only (TETHER_TEST_FAULTS=1): stop one critical loop's heartbeat to prove the
    /// watchdog notices.
    case debugStall(loop: String, seconds: Double)
    /// Test-only: make a running component end as a real fault would, to prove that tetherd
    /// then exits 70 naming it. tetherd refuses it as an unknown command unless it was started
    /// with TETHER_TEST_FAULTS=1.
    case debugFault(component: String)
    /// Test-only (TETHER_TEST_FAULTS=1): rotate the upstream session now (make-before-break at
    /// the next quiet moment), so a soak can rotate fifty times without waiting `rotate_after`.
    case debugRotate

    public static let names = [
        "status", "subscribe", "mute", "unmute", "volume", "reconnect", "pause", "resume", "say",
        "interrupt", "reload", "log-level", "tool-result", "forget",
    ]

    public static let maxSayLength = 4096
    public static let maxToolOutputLength = 60_000

    static func decode(name: String, arguments a: JSONObject) -> Result<ControlCommand, ControlError> {
        switch name {
        case "status": return .success(.status)
        case "subscribe":
            guard let raw = a["topics"] else { return .success(.subscribe(topics: Set(EventTopic.allCases))) }
            guard case .array(let items) = raw else { return invalid("topics must be a list of strings") }
            var topics = Set<EventTopic>()
            for item in items {
                guard let text = item.stringValue, let topic = EventTopic(rawValue: text) else {
                    return invalid("unknown topic; topics are \(EventTopic.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                topics.insert(topic)
            }
            return .success(.subscribe(topics: topics.isEmpty ? Set(EventTopic.allCases) : topics))
        case "mute": return .success(.mute)
        case "unmute": return .success(.unmute)
        case "volume":
            guard let level = a["level"]?.intValue else { return invalid("level must be a whole number 0..100") }
            guard (0...100).contains(level) else { return invalid("level must be 0..100") }
            return .success(.volume(level))
        case "reconnect": return .success(.reconnect)
        case "pause": return .success(.pause)
        case "resume": return .success(.resume)
        case "say":
            guard let text = a["text"]?.stringValue, !text.isEmpty else { return invalid("text must be a non-empty string") }
            guard text.utf8.count <= maxSayLength else { return invalid("text is longer than \(maxSayLength) bytes") }
            return .success(.say(text))
        case "interrupt": return .success(.interrupt)
        case "reload": return .success(.reload)
        case "log-level":
            guard let level = a["level"]?.stringValue else { return invalid("level must be a string") }
            return .success(.logLevel(level))
        case "tool-result":
            guard let callID = a["call_id"]?.stringValue, !callID.isEmpty else { return invalid("call_id must be a string") }
            let output: String
            switch a["output"] {
            case .string(let s)?: output = s
            case let value? where !value.isNull: output = JSONWriter.string(value)
            default: return invalid("output is required (a string or any JSON value)")
            }
            guard output.utf8.count <= maxToolOutputLength else { return invalid("output is longer than \(maxToolOutputLength) bytes") }
            return .success(.toolResult(callID: callID, output: output))
        case "debug-stall":
            guard let loop = a["loop"]?.stringValue else { return invalid("loop must be a string") }
            let seconds = a["seconds"]?.doubleValue ?? 3600
            return .success(.debugStall(loop: loop, seconds: seconds))
        case "forget": return .success(.forget)
        case "debug-fault":
            guard let component = a["component"]?.stringValue else { return invalid("component must be a string") }
            return .success(.debugFault(component: component))
        case "debug-rotate": return .success(.debugRotate)
        default:
            return .failure(ControlError(.unknownCommand, "unknown command \"\(name.prefix(64))\"; commands are \(names.joined(separator: ", "))"))
        }
    }

    private static func invalid(_ message: String) -> Result<ControlCommand, ControlError> {
        .failure(ControlError(.invalidArgument, message))
    }
}

public struct ControlError: Error, Sendable, Equatable {
    public enum Code: String, Sendable {
        case invalidJSON = "invalid_json"
        case invalidRequest = "invalid_request"
        case unknownCommand = "unknown_command"
        case invalidArgument = "invalid_argument"
        case unavailable
        case forbidden
        case lineTooLong = "line_too_long"
        case busy
        case slowConsumer = "slow_consumer"
        case conflict
        case `internal`
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var json: JSONValue { ["code": .string(code.rawValue), "message": .string(message)] }
}

/// The lines the daemon writes back.
public enum ControlResponse {
    public static func ok(id: JSONValue, result: JSONValue? = nil) -> String {
        var object: JSONObject = ["id": id, "ok": true]
        if let result { object["result"] = result }
        return JSONWriter.string(.object(object))
    }

    public static func failure(id: JSONValue, _ error: ControlError) -> String {
        JSONWriter.string(.object(["id": id, "ok": false, "error": error.json]))
    }
}
