import Testing
@testable import TetherCore

/// The rules of the command line, as a table: global options on either side of the command,
/// `=` or a separate word, `--`, help and version, and a clear error for everything else.
@Suite struct CommandLineParserTests {
    static let spec = CommandSpec(
        name: "tool", abstract: "A tool.",
        options: [.value("socket", "path", help: "Socket."), .flag("json", help: "JSON.")],
        subcommands: [
            CommandSpec(name: "status", abstract: "Status."),
            CommandSpec(name: "events", abstract: "Events.", options: [.value("topic", "t", repeatable: true, help: "Topic.")]),
            CommandSpec(name: "say", abstract: "Say.", arguments: [ArgumentSpec("text", help: "Text.", variadic: true)]),
            CommandSpec(name: "answer", abstract: "Answer.", arguments: [ArgumentSpec("id", help: "Id."), ArgumentSpec("output", help: "Out.")]),
        ])

    static func run(_ words: [String]) -> ParsedCommandLine? {
        if case .success(.run(let parsed)) = CommandLineParser.parse(words, spec: spec) { return parsed }
        return nil
    }

    static func error(_ words: [String]) -> String? {
        if case .failure(let error) = CommandLineParser.parse(words, spec: spec) { return error.message }
        return nil
    }

    @Test(arguments: [["--socket", "/s", "status", "--json"], ["status", "--socket", "/s", "--json"],
                      ["--json", "status", "--socket=/s"], ["--socket=/x", "status", "--socket", "/s", "--json"]])
    func globalOptionsGoOnEitherSideOfTheCommand(words: [String]) {
        let parsed = Self.run(words)
        #expect(parsed?.path == ["status"])
        #expect(parsed?.value("socket") == "/s")
        #expect(parsed?.flag("json") == true)
    }

    @Test func aCommandsOwnOptionsFollowItAndRepeat() {
        #expect(Self.run(["events", "--topic", "a", "--topic=b"])?.allValues("topic") == ["a", "b"])
        #expect(Self.error(["--topic", "a", "events"]) == "unknown option '--topic'")
    }

    @Test func argumentsFillInOrderAndVariadicTakesTheRest() {
        #expect(Self.run(["say", "hello", "there"])?.allArguments("text") == ["hello", "there"])
        #expect(Self.run(["say", "--", "--json", "-x"])?.allArguments("text") == ["--json", "-x"])
        let answer = Self.run(["answer", "c1", "{}"])
        #expect(answer?.argument("id") == "c1" && answer?.argument("output") == "{}")
        #expect(Self.error(["answer", "c1"]) == "missing output")
        #expect(Self.error(["answer", "c1", "o", "extra"]) == "unexpected argument 'extra'")
        #expect(Self.error(["say"]) == "missing text")
    }

    @Test func helpAndVersion() {
        #expect(CommandLineParser.parse(["--help"], spec: Self.spec) == .success(.help(path: [])))
        #expect(CommandLineParser.parse(["say", "-h"], spec: Self.spec) == .success(.help(path: ["say"])))
        #expect(CommandLineParser.parse(["help", "events"], spec: Self.spec) == .success(.help(path: ["events"])))
        #expect(CommandLineParser.parse(["--version"], spec: Self.spec) == .success(.version))
    }

    @Test(arguments: [
        (["bogus"], "unknown command 'bogus'"),
        ([], "a command is needed: status, events, say, answer"),
        (["--socket"], "--socket needs a value (path)"),
        (["status", "--json=1"], "--json takes no value"),
        (["-s", "status"], "unknown option '-s' (options are --long)"),
        (["status", "--nope"], "unknown option '--nope'"),
        (["help", "nope"], "unknown command 'nope'"),
    ])
    func badCommandLinesSayWhatIsWrong(words: [String], message: String) {
        #expect(Self.error(words) == message)
    }

    @Test func usageErrorsNameTheCommandAndExit64() {
        guard case .usageError(let text) = CommandLineFront.decide(["answer", "x"], spec: Self.spec, version: "1", manSection: 1) else {
            Issue.record("a usage error")
            return
        }
        #expect(text == "tool: missing output\nUsage: tool answer [options] <id> <output>\nSee 'tool help answer'.\n")
        #expect(CommandLineFront.usageExitCode == 64)
    }

    @Test func helpListsEveryCommandAndOption() {
        let text = CommandHelp.text([], in: Self.spec, version: "1")
        for word in ["status", "events", "say", "answer", "--socket <path>", "--json", "--help", "--version"] {
            #expect(text.contains(word), "\(word) in help")
        }
        let sub = CommandHelp.text(["events"], in: Self.spec, version: "1")
        #expect(sub.contains("--topic <t>") && sub.contains("--socket <path>"))
    }

    @Test func theManPageEscapesForTroff() {
        let page = CommandHelp.manPage(Self.spec, section: 1, version: "1", date: "2026-12-02")
        #expect(page.hasPrefix(".TH TOOL 1 2026-12-02 \"tether 1\"\n"))
        #expect(page.contains("\\fB\\-\\-socket <path>\\fR"))
        #expect(page.contains(".SH COMMANDS"))
        #expect(!page.split(separator: "\n").contains { $0.hasPrefix(".") && $0.contains("--") })
    }
}
