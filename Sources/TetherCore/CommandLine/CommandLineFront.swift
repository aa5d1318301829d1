/// What an executable does with its command line before it runs: help, version and usage
/// errors answered the same way by `tetherd` and `tetherctl`. Pure; the executable prints and
/// exits.
public enum CommandLineFront {
    public enum Action: Sendable, Equatable {
        case run(ParsedCommandLine)
        /// Print to standard output and exit 0.
        case answer(String)
        /// Print to standard error and exit 64 (EX_USAGE), as sysexits.h has it.
        case usageError(String)
    }

    public static let usageExitCode: Int32 = 64

    /// `--man-page YYYY-MM-DD`, undocumented, is how the Debian package gets its man pages
    /// (section `manSection`).
    public static func decide(_ words: [String], spec: CommandSpec, version: String, manSection: Int) -> Action {
        if words.count == 2, words[0] == "--man-page" {
            return .answer(CommandHelp.manPage(spec, section: manSection, version: version, date: words[1]))
        }
        switch CommandLineParser.parse(words, spec: spec) {
        case .success(.run(let parsed)): return .run(parsed)
        case .success(.version): return .answer(version + "\n")
        case .success(.help(let path)): return .answer(CommandHelp.text(path, in: spec, version: version))
        case .failure(let error): return .usageError(usageText(error, spec: spec))
        }
    }

    /// The error, the usage line of the command it concerns, and where to read more.
    public static func usageText(_ error: CommandLineError, spec: CommandSpec) -> String {
        let help = error.path.isEmpty ? "\(spec.name) --help" : "\(spec.name) help \(error.path.joined(separator: " "))"
        return "\(spec.name): \(error.message)\nUsage: \(CommandHelp.usage(error.path, in: spec))\nSee '\(help)'.\n"
    }
}
