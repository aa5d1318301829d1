import Glibc
import TetherCore

/// `tetherctl`: talk to tetherd over its control socket.
/// Exit codes: 0 ok, 1 the daemon refused the command, 69 the daemon is unreachable, 64 a bad
/// command line.
@main
enum TetherCtl {
    /// A command of `tetherctl`: its place on the command line and what it does.
    struct Command: Sendable {
        var spec: CommandSpec
        var run: @Sendable (Connection, ParsedCommandLine) throws -> Void

        /// A command that sends one control request and prints the answer.
        static func request(_ spec: CommandSpec,
                            _ build: @escaping @Sendable (ParsedCommandLine) throws(CommandLineError) -> JSONObject) -> Command {
            Command(spec: spec) { connection, parsed in try connection.run(try build(parsed)) }
        }

        /// A request with nothing but its name.
        static func simple(_ name: String, _ abstract: String) -> Command {
            request(CommandSpec(name: name, abstract: abstract)) { _ in ["cmd": .string(name)] }
        }
    }

    static let commands: [Command] = [
        Command(spec: CommandSpec(name: "status", abstract: "Show the daemon's state.")) { connection, _ in
            try connection.run(["cmd": "status"], render: StatusReport.render)
        },
        Command(spec: CommandSpec(name: "events", abstract: "Follow the event stream until interrupted.",
                                  options: [.value("topic", "topic", repeatable: true,
                                                   help: "Only this topic (session, network, audio, speech, tool, error); repeatable.")])) {
            connection, parsed in try followEvents(connection, topics: parsed.allValues("topic"))
        },
        .simple("mute", "Mute the microphone (nothing is sent upstream)."),
        .simple("unmute", "Unmute the microphone."),
        .request(CommandSpec(name: "volume", abstract: "Set the speaker volume, 0..100.",
                             arguments: [ArgumentSpec("level", help: "Volume 0..100.")])) { parsed throws(CommandLineError) in
            guard let level = parsed.argument("level").flatMap({ Int($0) }) else {
                throw CommandLineError(message: "the volume must be a whole number, 0..100", path: ["volume"])
            }
            return ["cmd": "volume", "level": .number(Double(level))]
        },
        .simple("reconnect", "Replace the upstream session with a fresh one now."),
        .simple("pause", "Close the upstream session and stop listening."),
        .simple("resume", "Connect again after a pause."),
        .request(CommandSpec(name: "say", abstract: "Ask the brain to say TEXT.",
                             arguments: [ArgumentSpec("text", help: "What to say.", variadic: true)])) { parsed in
            ["cmd": "say", "text": .string(parsed.allArguments("text").joined(separator: " "))]
        },
        .simple("interrupt", "Stop speaking now."),
        .simple("reload", "Reload the configuration (a bad file is refused, the old one kept)."),
        .request(CommandSpec(name: "log-level", abstract: "Set the log level (trace ... critical).",
                             arguments: [ArgumentSpec("level", help: "trace, debug, info, notice, warning, error or critical.")])) { parsed in
            ["cmd": "log-level", "level": .string(parsed.argument("level") ?? "")]
        },
        .request(CommandSpec(name: "tool-result", abstract: "Answer a tool.call.",
                             arguments: [ArgumentSpec("call_id", help: "The call_id of the tool.call event."),
                                         ArgumentSpec("output", help: "The output to return to the brain (text or JSON).")])) { parsed in
            ["cmd": "tool-result", "call_id": .string(parsed.argument("call_id") ?? ""), "output": .string(parsed.argument("output") ?? "")]
        },
        .simple("forget", "Forget the conversation and start a fresh upstream session now."),
    ]

    /// The global options: before or after the command's name, as with systemctl.
    static let commandLine = CommandSpec(
        name: "tetherctl",
        abstract: "Control and watch tetherd.",
        discussion: "Exit codes: 0 ok, 1 the daemon refused the command, 69 the daemon is unreachable, 64 a bad command line.",
        options: [.value("socket", "path", help: "Control socket (default: $TETHER_SOCKET or /run/tether/control.sock)."),
                  .flag("json", help: "Print the raw JSON result (events: each raw JSON line)."),
                  .value("timeout", "seconds", help: "Seconds to wait for the daemon's answer (events streams without a deadline).")],
        subcommands: commands.map(\.spec))

    static func main() {
        // A daemon that hangs up on us must not kill us with SIGPIPE: we want to say why.
        signal(SIGPIPE, SIG_IGN)
        let parsed: ParsedCommandLine
        switch CommandLineFront.decide(Array(CommandLine.arguments.dropFirst()), spec: commandLine,
                                       version: TetherVersion.current, manSection: 1) {
        case .answer(let text):
            FileHandle.stdoutWrite(text)
            return
        case .usageError(let text):
            FileHandle.stderrWrite(text)
            exit(CommandLineFront.usageExitCode)
        case .run(let p):
            parsed = p
        }
        do {
            // The parser accepts only the commands of the table, and always one of them.
            guard let command = commands.first(where: { $0.spec.name == parsed.path.first }) else { return }
            try command.run(try Connection(parsed), parsed)
        } catch let error as CommandLineError {
            FileHandle.stderrWrite(CommandLineFront.usageText(error, spec: commandLine))
            exit(CommandLineFront.usageExitCode)
        } catch let error as Exit {
            FileHandle.stderrWrite("tetherctl: \(error.description)\n")
            switch error {
            case .refused: exit(1)
            case .unreachable: exit(69)
            }
        } catch {
            FileHandle.stderrWrite("tetherctl: \(error)\n")
            exit(70)
        }
    }
}

/// Where and how long to talk to the daemon, from the global options.
struct Connection {
    var socket: String?
    var json: Bool
    var timeout: Int

    init(_ parsed: ParsedCommandLine) throws(CommandLineError) {
        socket = parsed.value("socket")
        json = parsed.flag("json")
        if let text = parsed.value("timeout") {
            guard let seconds = Int(text), seconds >= 0 else {
                throw CommandLineError(message: "--timeout must be a whole number of seconds", path: parsed.path)
            }
            timeout = seconds
        } else {
            timeout = 10
        }
    }

    var path: String {
        if let socket { return socket }
        if let env = getenv("TETHER_SOCKET"), let value = String(validatingCString: env), !value.isEmpty { return value }
        return "/run/tether/control.sock"
    }

    /// Sends one command and prints the outcome; throws `Exit` on refusal or when unreachable.
    func run(_ command: JSONObject, render: ((JSONValue) -> String)? = nil) throws {
        var client: ControlClient
        do {
            client = try ControlClient(path: path, timeoutSeconds: timeout)
        } catch {
            throw Exit.unreachable("\(error)")
        }
        defer { client.close() }
        let response: JSONValue
        do {
            response = try client.request(command)
        } catch {
            throw Exit.unreachable("\(error)")
        }
        guard response["ok"]?.boolValue == true else {
            let code = response["error"]?["code"]?.stringValue ?? "error"
            let message = response["error"]?["message"]?.stringValue ?? "the daemon refused"
            throw Exit.refused("\(code): \(message)")
        }
        let result = response["result"] ?? .null
        if json {
            print(JSONWriter.string(result))
        } else if let render {
            print(render(result))
        } else if !result.isNull, result != .object([:]) {
            print(JSONWriter.string(result))
        }
    }
}

enum Exit: Error, CustomStringConvertible {
    case refused(String)
    case unreachable(String)

    var description: String {
        switch self {
        case .refused(let m), .unreachable(let m): return m
        }
    }
}

enum FileHandle {
    static func stdoutWrite(_ text: String) {
        var bytes = Array(text.utf8)
        _ = bytes.withUnsafeMutableBytes { write(STDOUT_FILENO, $0.baseAddress, $0.count) }
    }

    static func stderrWrite(_ text: String) {
        var bytes = Array(text.utf8)
        _ = bytes.withUnsafeMutableBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
    }
}

/// `events`: subscribes and prints each event until the stream ends or we are interrupted.
func followEvents(_ connection: Connection, topics: [String]) throws {
    // Ctrl-C (or SIGTERM) ends the stream even when our parent left those signals ignored,
    // as a shell does for background jobs.
    signal(SIGINT, SIG_DFL)
    signal(SIGTERM, SIG_DFL)
    var client: ControlClient
    do {
        client = try ControlClient(path: connection.path, timeoutSeconds: 0)
    } catch {
        throw Exit.unreachable("\(error)")
    }
    defer { client.close() }
    var request: JSONObject = ["id": 1, "cmd": "subscribe"]
    if !topics.isEmpty { request["topics"] = .array(topics.map { .string($0) }) }
    do {
        try client.send(request)
        while let line = try client.readLine() {
            guard let value = try? JSONParser.parse(bytes: line) else { continue }
            if value["event"] != nil {
                // Written straight to fd 1 so a pipe (`tetherctl events | grep ...`) sees each
                // event at once instead of when stdio's buffer fills.
                FileHandle.stdoutWrite((connection.json ? String(decoding: line, as: UTF8.self) : StatusReport.renderEvent(value)) + "\n")
            } else if value["ok"]?.boolValue == false {
                throw Exit.refused(value["error"]?["message"]?.stringValue ?? "subscription refused")
            }
        }
    } catch let error as Exit {
        throw error
    } catch {
        throw Exit.unreachable("\(error)")
    }
    throw Exit.unreachable("tetherd closed the event stream")
}
