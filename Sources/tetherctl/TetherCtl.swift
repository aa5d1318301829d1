import ArgumentParser
import Glibc
import TetherCore

/// `tetherctl`: talk to tetherd over its control socket.
/// Exit codes: 0 ok, 1 the daemon refused the command, 69 the daemon is unreachable.
@main
struct TetherCtl: ParsableCommand {
    static func main() {
        // A daemon that hangs up on us must not kill us with SIGPIPE: we want to say why.
        signal(SIGPIPE, SIG_IGN)
        main(GlobalOptions.movedBehindSubcommand(Array(CommandLine.arguments.dropFirst())))
    }

    static let configuration = CommandConfiguration(
        commandName: "tetherctl",
        abstract: "Control and watch tetherd.",
        discussion: "Exit codes: 0 ok, 1 the daemon refused the command, 69 the daemon is unreachable.",
        version: TetherVersion.current,
        subcommands: [Status.self, Events.self, Mute.self, Unmute.self, Volume.self, Reconnect.self, Pause.self,
                      Resume.self, Say.self, Interrupt.self, Reload.self, LogLevel.self, ToolResult.self])
}

/// The global options: every subcommand takes them, before or after its name.
struct Connection: ParsableArguments {
    @Option(name: .long, help: "Control socket (default: $TETHER_SOCKET or /run/tether/control.sock).")
    var socket: String?
    @Flag(name: .long, help: "Print the raw JSON result (events: each raw JSON line).") var json = false
    @Option(name: .long, help: "Seconds to wait for the daemon's answer (events streams without a deadline).")
    var timeout: Int = 10

    var path: String {
        if let socket { return socket }
        if let env = getenv("TETHER_SOCKET"), let value = String(validatingCString: env), !value.isEmpty { return value }
        return "/run/tether/control.sock"
    }

    /// Sends one command and prints the outcome; exits 1 on refusal, 69 when unreachable.
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

protocol SimpleCommand: ParsableCommand {
    var connection: Connection { get }
    var command: JSONObject { get }
}

extension SimpleCommand {
    func run() throws { try perform { try connection.run(command) } }
}

func perform(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as Exit {
        FileHandle.stderrWrite("tetherctl: \(error.description)\n")
        switch error {
        case .refused: throw ExitCode(1)
        case .unreachable: throw ExitCode(69)
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

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show the daemon's state.")
    @OptionGroup var connection: Connection
    func run() throws { try perform { try connection.run(["cmd": "status"], render: StatusReport.render) } }
}

struct Events: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Follow the event stream until interrupted.")
    @OptionGroup var connection: Connection
    @Option(name: .long, help: "Only this topic (session, network, audio, speech, tool, error); repeatable.")
    var topic: [String] = []

    func run() throws {
        // Ctrl-C (or SIGTERM) ends the stream even when our parent left those signals ignored,
        // as a shell does for background jobs.
        signal(SIGINT, SIG_DFL)
        signal(SIGTERM, SIG_DFL)
        try perform {
            var client: ControlClient
            do {
                client = try ControlClient(path: connection.path, timeoutSeconds: 0)
            } catch {
                throw Exit.unreachable("\(error)")
            }
            defer { client.close() }
            var request: JSONObject = ["id": 1, "cmd": "subscribe"]
            if !topic.isEmpty { request["topics"] = .array(topic.map { .string($0) }) }
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
    }
}

struct Mute: SimpleCommand {
    static let configuration = CommandConfiguration(abstract: "Mute the microphone (nothing is sent upstream).")
    @OptionGroup var connection: Connection
    var command: JSONObject { ["cmd": "mute"] }
}

struct Unmute: SimpleCommand {
    static let configuration = CommandConfiguration(abstract: "Unmute the microphone.")
    @OptionGroup var connection: Connection
    var command: JSONObject { ["cmd": "unmute"] }
}

struct Volume: SimpleCommand {
    static let configuration = CommandConfiguration(abstract: "Set the speaker volume, 0..100.")
    @OptionGroup var connection: Connection
    @Argument(help: "Volume 0..100.") var level: Int
    var command: JSONObject { ["cmd": "volume", "level": .number(Double(level))] }
}

struct Reconnect: SimpleCommand {
    static let configuration = CommandConfiguration(abstract: "Replace the upstream session with a fresh one now.")
    @OptionGroup var connection: Connection
    var command: JSONObject { ["cmd": "reconnect"] }
}

struct Pause: SimpleCommand {
    static let configuration = CommandConfiguration(abstract: "Close the upstream session and stop listening.")
    @OptionGroup var connection: Connection
    var command: JSONObject { ["cmd": "pause"] }
}

struct Resume: SimpleCommand {
    static let configuration = CommandConfiguration(abstract: "Connect again after a pause.")
    @OptionGroup var connection: Connection
    var command: JSONObject { ["cmd": "resume"] }
}

struct Say: SimpleCommand {
    static let configuration = CommandConfiguration(abstract: "Ask the brain to say TEXT.")
    @OptionGroup var connection: Connection
    @Argument(help: "What to say.") var text: [String]
    var command: JSONObject { ["cmd": "say", "text": .string(text.joined(separator: " "))] }
}

struct Interrupt: SimpleCommand {
    static let configuration = CommandConfiguration(abstract: "Stop speaking now.")
    @OptionGroup var connection: Connection
    var command: JSONObject { ["cmd": "interrupt"] }
}

struct Reload: SimpleCommand {
    static let configuration = CommandConfiguration(abstract: "Reload the configuration (a bad file is refused, the old one kept).")
    @OptionGroup var connection: Connection
    var command: JSONObject { ["cmd": "reload"] }
}

struct LogLevel: SimpleCommand {
    static let configuration = CommandConfiguration(commandName: "log-level", abstract: "Set the log level (trace ... critical).")
    @OptionGroup var connection: Connection
    @Argument(help: "trace, debug, info, notice, warning, error or critical.") var level: String
    var command: JSONObject { ["cmd": "log-level", "level": .string(level)] }
}

struct ToolResult: SimpleCommand {
    static let configuration = CommandConfiguration(commandName: "tool-result", abstract: "Answer a tool.call.")
    @OptionGroup var connection: Connection
    @Argument(help: "The call_id of the tool.call event.") var callID: String
    @Argument(help: "The output to return to the brain (text or JSON).") var output: String
    var command: JSONObject { ["cmd": "tool-result", "call_id": .string(callID), "output": .string(output)] }
}
