/// `--help` and the man pages, both from the same `CommandSpec`, so neither can drift from
/// what the parser accepts.
public enum CommandHelp {
    /// The spec at `path` (subcommand names), or nil.
    public static func command(at path: [String], in spec: CommandSpec) -> CommandSpec? {
        var command = spec
        for name in path {
            guard let sub = command.subcommand(named: name) else { return nil }
            command = sub
        }
        return command
    }

    public static func usage(_ path: [String], in spec: CommandSpec) -> String {
        ([spec.name] + path + usageTail(path, in: spec)).joined(separator: " ")
    }

    /// What follows the command's name in its usage line: `[options] <level>`.
    static func usageTail(_ path: [String], in spec: CommandSpec) -> [String] {
        guard let command = command(at: path, in: spec) else { return [] }
        var words: [String] = []
        if !spec.options.isEmpty || !command.options.isEmpty { words.append("[options]") }
        if !command.subcommands.isEmpty { words.append("<command>") }
        for argument in command.arguments { words.append(argument.variadic ? "<\(argument.name)> ..." : "<\(argument.name)>") }
        return words
    }

    public static func text(_ path: [String], in spec: CommandSpec, version: String) -> String {
        guard let command = command(at: path, in: spec) else { return usage([], in: spec) }
        var lines = ["\(path.isEmpty ? "\(spec.name) \(version)" : "\(spec.name) \(path.joined(separator: " "))"): \(command.abstract)",
                     "", "Usage: \(usage(path, in: spec))"]
        if let discussion = command.discussion { lines += ["", discussion] }
        if !command.arguments.isEmpty {
            lines += ["", "Arguments:"] + command.arguments.map { row("<\($0.name)>", $0.help) }
        }
        if !command.subcommands.isEmpty {
            lines += ["", "Commands:"] + command.subcommands.map { row($0.name, $0.abstract) }
        }
        var options = command.options
        if !path.isEmpty { options += spec.options }
        options.append(.flag("help", help: "Show this help."))
        if path.isEmpty { options.append(.flag("version", help: "Show the version.")) }
        lines += ["", "Options:"] + options.map { row(label($0), $0.help) }
        if !command.subcommands.isEmpty { lines += ["", "See '\(spec.name) help <command>' for a command's arguments."] }
        return lines.joined(separator: "\n") + "\n"
    }

    /// A man page in troff (man(7) macros) for `section`, dated `date` (YYYY-MM-DD).
    public static func manPage(_ spec: CommandSpec, section: Int, version: String, date: String) -> String {
        var out = [".TH \(spec.name.uppercased()) \(section) \(date) \"tether \(version)\"",
                   ".SH NAME", "\(spec.name) \\- \(escape(spec.abstract))",
                   ".SH SYNOPSIS", ".B \(spec.name)", escape(usageTail([], in: spec).joined(separator: " "))]
        if let discussion = spec.discussion { out += [".SH DESCRIPTION", escape(discussion)] }
        out.append(".SH OPTIONS")
        for option in spec.options + [.flag("help", help: "Show the help."), .flag("version", help: "Show the version.")] {
            out += [".TP", "\\fB\(escape(label(option)))\\fR", escape(option.help)]
        }
        if !spec.arguments.isEmpty {
            out.append(".SH ARGUMENTS")
            for argument in spec.arguments { out += [".TP", "\\fI\(argument.name)\\fR", escape(argument.help)] }
        }
        if !spec.subcommands.isEmpty {
            out.append(".SH COMMANDS")
            for sub in spec.subcommands {
                out += [".TP", "\\fB\(escape(([sub.name] + usageTail([sub.name], in: spec)).joined(separator: " ")))\\fR",
                        escape(sub.abstract)]
                for argument in sub.arguments { out += [".RS", "\\fI\(argument.name)\\fR: \(escape(argument.help))", ".RE"] }
                for option in sub.options { out += [".RS", "\\fB\(escape(label(option)))\\fR: \(escape(option.help))", ".RE"] }
            }
        }
        return out.joined(separator: "\n") + "\n"
    }

    static func label(_ option: OptionSpec) -> String {
        switch option.kind {
        case .flag: return "--\(option.name)"
        case .value(let name, _): return "--\(option.name) <\(name)>"
        }
    }

    static func row(_ label: String, _ help: String) -> String {
        let padded = label.count < 24 ? label + String(repeating: " ", count: 24 - label.count) : label + "  "
        return "  " + padded + help
    }

    /// troff: a backslash is `\e`, a leading dot or quote would be a request, a hyphen `\-`.
    static func escape<S: StringProtocol>(_ text: S) -> String {
        var out = ""
        for character in text {
            switch character {
            case "\\": out += "\\e"
            case "-": out += "\\-"
            default: out.append(character)
            }
        }
        if out.hasPrefix(".") || out.hasPrefix("'") { out = "\\&" + out }
        return out
    }
}
