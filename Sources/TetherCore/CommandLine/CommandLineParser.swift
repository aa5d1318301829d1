/// A command line read against its `CommandSpec`.
public struct ParsedCommandLine: Sendable, Equatable {
    /// The subcommands chosen, outermost first (`["volume"]`); empty for the root command.
    public var path: [String] = []
    public var flags: Set<String> = []
    public var values: [String: [String]] = [:]
    public var arguments: [String: [String]] = [:]

    public func flag(_ name: String) -> Bool { flags.contains(name) }
    /// The last value given for the option.
    public func value(_ name: String) -> String? { values[name]?.last }
    public func allValues(_ name: String) -> [String] { values[name] ?? [] }
    public func argument(_ name: String) -> String? { arguments[name]?.first }
    public func allArguments(_ name: String) -> [String] { arguments[name] ?? [] }
}

public enum CommandLineOutcome: Sendable, Equatable {
    case run(ParsedCommandLine)
    /// `--help`, `-h` or `help [SUBCOMMAND]`: help for the command at this path.
    case help(path: [String])
    case version
}

/// A command line that does not fit its spec; `path` names the command whose usage to show.
public struct CommandLineError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public var path: [String]
    public var description: String { message }

    public init(message: String, path: [String]) {
        self.message = message
        self.path = path
    }
}

/// Parses the way systemctl, docker and kubectl do: the root command's options are global and
/// may stand before or after the subcommand (`tetherctl --socket P status` and `tetherctl
/// status --socket P`); a subcommand's own options follow it; `--opt VALUE` and `--opt=VALUE`;
/// `--` ends the options. Pure, so every rule is a table test.
public enum CommandLineParser {
    public static func parse(_ words: [String], spec: CommandSpec) -> Result<CommandLineOutcome, CommandLineError> {
        var parsed = ParsedCommandLine()
        var command = spec
        var positional: [String] = []
        var index = 0
        var optionsEnded = false

        func fail(_ message: String) -> Result<CommandLineOutcome, CommandLineError> {
            .failure(CommandLineError(message: message, path: parsed.path))
        }

        if words.first == "help", !spec.subcommands.isEmpty {
            var path: [String] = []
            var at = spec
            for word in words.dropFirst() {
                guard let sub = at.subcommand(named: word) else {
                    return .failure(CommandLineError(message: "unknown command '\(word)'", path: path))
                }
                path.append(word)
                at = sub
            }
            return .success(.help(path: path))
        }

        while index < words.count {
            let word = words[index]
            index += 1
            if optionsEnded || word == "-" || !word.hasPrefix("-") {
                // The first word of a command line with subcommands names one.
                if parsed.path.isEmpty, !spec.subcommands.isEmpty, !optionsEnded {
                    guard let sub = command.subcommand(named: word) else { return fail("unknown command '\(word)'") }
                    parsed.path.append(word)
                    command = sub
                    continue
                }
                positional.append(word)
                continue
            }
            if word == "--" {
                optionsEnded = true
                continue
            }
            if word == "-h" || word == "--help" { return .success(.help(path: parsed.path)) }
            if word == "--version" && parsed.path.isEmpty { return .success(.version) }
            guard word.hasPrefix("--") else { return fail("unknown option '\(word)' (options are --long)") }

            let body = word.dropFirst(2)
            let name: String, inline: String?
            if let equals = body.firstIndex(of: "=") {
                name = String(body[..<equals])
                inline = String(body[body.index(after: equals)...])
            } else {
                name = String(body)
                inline = nil
            }
            // A subcommand's own options, then the global ones.
            guard let option = command.options.first(where: { $0.name == name })
                ?? (parsed.path.isEmpty ? nil : spec.options.first(where: { $0.name == name }))
            else { return fail("unknown option '--\(name)'") }
            switch option.kind {
            case .flag:
                guard inline == nil else { return fail("--\(name) takes no value") }
                parsed.flags.insert(name)
            case .value(let valueName, let repeatable):
                let value: String
                if let inline {
                    value = inline
                } else {
                    guard index < words.count else { return fail("--\(name) needs a value (\(valueName))") }
                    value = words[index]
                    index += 1
                }
                if repeatable {
                    parsed.values[name, default: []].append(value)
                } else {
                    parsed.values[name] = [value]
                }
            }
        }

        if parsed.path.isEmpty, !spec.subcommands.isEmpty {
            return fail("a command is needed: \(spec.subcommands.map(\.name).joined(separator: ", "))")
        }
        var rest = positional[...]
        for argument in command.arguments {
            if argument.variadic {
                guard !rest.isEmpty else { return fail("missing \(argument.name)") }
                parsed.arguments[argument.name] = Array(rest)
                rest = []
            } else {
                guard let first = rest.first else { return fail("missing \(argument.name)") }
                parsed.arguments[argument.name] = [first]
                rest = rest.dropFirst()
            }
        }
        if let extra = rest.first { return fail("unexpected argument '\(extra)'") }
        return .success(.run(parsed))
    }
}
