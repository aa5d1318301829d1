/// What a command line may hold: the options, arguments and subcommands of `tetherd` and
/// `tetherctl`, declared once and used for parsing, `--help` and the man pages.
///
/// Hand-written instead of swift-argument-parser, which imports FoundationEssentials: with it,
/// 3.9 MB of the 15 MB of code in tetherd (and of the 9.7 MB in tetherctl) was Foundation, its
/// collections, the regex engine and the parser itself, on robots whose boards count megabytes.
/// Two small command lines do not need a general library.
public struct CommandSpec: Sendable {
    public var name: String
    public var abstract: String
    public var discussion: String?
    public var options: [OptionSpec]
    public var arguments: [ArgumentSpec]
    public var subcommands: [CommandSpec]

    public init(name: String, abstract: String, discussion: String? = nil, options: [OptionSpec] = [],
                arguments: [ArgumentSpec] = [], subcommands: [CommandSpec] = []) {
        self.name = name
        self.abstract = abstract
        self.discussion = discussion
        self.options = options
        self.arguments = arguments
        self.subcommands = subcommands
    }

    public func subcommand(named name: String) -> CommandSpec? { subcommands.first { $0.name == name } }
}

/// A long option: `--name VALUE` / `--name=VALUE`, or a flag `--name`.
public struct OptionSpec: Sendable {
    public enum Kind: Sendable, Equatable {
        case flag
        /// Takes a value; `repeatable` collects every occurrence, otherwise the last one wins.
        case value(name: String, repeatable: Bool)
    }

    public var name: String
    public var kind: Kind
    public var help: String

    public static func flag(_ name: String, help: String) -> OptionSpec { OptionSpec(name: name, kind: .flag, help: help) }

    public static func value(_ name: String, _ valueName: String, repeatable: Bool = false, help: String) -> OptionSpec {
        OptionSpec(name: name, kind: .value(name: valueName, repeatable: repeatable), help: help)
    }
}

/// A positional argument; a variadic one takes the rest (at least one word).
public struct ArgumentSpec: Sendable {
    public var name: String
    public var help: String
    public var variadic: Bool

    public init(_ name: String, help: String, variadic: Bool = false) {
        self.name = name
        self.help = help
        self.variadic = variadic
    }
}
