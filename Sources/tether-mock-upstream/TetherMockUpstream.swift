import ArgumentParser

@main
struct TetherMockUpstream: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tether-mock-upstream",
        abstract: "A local upstream for tether: openai-realtime at /v1/realtime, pcm-stream at /pcm.",
        discussion: """
            Echoes heard speech back as audio and has fault knobs for tests. On start it prints \
            one line, `listening on ws://HOST:PORT`, to stdout. Control endpoints (plain HTTP on \
            the same port): GET /mock/status; POST /mock/drop, /mock/stall?seconds=S, /mock/unstall, \
            /mock/refuse-auth?count=N, /mock/slow-handshake?ms=M, /mock/garbage, \
            /mock/close?code=C&reason=R, /mock/function-call?name=N&arguments=JSON, \
            /mock/speech-started, /mock/say?ms=M, /mock/flap?seed=S&seconds=T, /mock/max-session?seconds=S, \
            /mock/reset.
            """
    )

    @Option(help: "Address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "Port to listen on; 0 picks a free one (read it from the `listening on` line).")
    var port = 8765

    @Option(name: .customLong("record"), help: ArgumentHelp("Record received audio and events into DIR.", valueName: "DIR"))
    var recordDirectory: String?

    @Option(help: "When set, upgrades must carry `Authorization: Bearer KEY` (else HTTP 401).")
    var apiKey: String?

    @Option(help: "Sample rate of PCM16 mono audio, both ways (a multiple of 50).")
    var rate = 24000

    @Option(help: "Seed of the mock's random choices (flap schedules).")
    var seed: UInt64 = 1

    @Flag(inversion: .prefixedNo, help: "Answer heard speech by streaming it back.")
    var echo = true

    @Option(name: .customLong("speech-threshold-dbfs"), parsing: .unconditional,
            help: "RMS level of a 20 ms frame (dBFS) at or above which it counts as speech.")
    var speechThresholdDBFS = -45.0

    @Option(help: "Quiet time after the last loud frame that ends speech (ms).")
    var hangoverMs = 500

    @Option(help: "How many times faster than real time responses are sent (0: all at once).")
    var responseSpeed = 4.0

    @Option(help: "Length of one response audio chunk (ms).")
    var chunkMs = 100

    @Option(name: .customLong("max-session"),
            help: ArgumentHelp("End openai-realtime sessions after SECONDS (decimal), as the real API does after 60 minutes.",
                               valueName: "SECONDS"))
    var maxSessionSeconds: Double?

    @Option(parsing: .unconditional, help: "Fault from the start: refuse the next N upgrades with 401 (-1: all).")
    var refuseAuth = 0

    @Option(help: "Fault from the start: delay each handshake by MS.")
    var slowHandshakeMs = 0

    @Option(help: "What a slow handshake delays: upgrade (the HTTP 101) or session (session.created).")
    var slowHandshakePhase = "upgrade"

    @Option(help: "Fault from the start: drop each connection (TCP close) MS after it opens.")
    var dropAfterMs: Int?

    @Option(help: "Fault from the start: stall each connection for good MS after it opens.")
    var stallAfterMs: Int?

    @Option(help: "Fault from the start: flap (seeded by --seed) for SECONDS.")
    var flapSeconds: Double?

    @Flag(help: "Log every client event type on stderr.")
    var verbose = false

    @Flag(help: "Log only errors on stderr.")
    var quiet = false

    func validate() throws {
        guard (1...65535).contains(port) || port == 0 else { throw ValidationError("--port must be 0...65535") }
        guard (8000...192_000).contains(rate), rate % 50 == 0 else {
            throw ValidationError("--rate must be 8000...192000 and a multiple of 50 (20 ms frames)")
        }
        guard speechThresholdDBFS.isFinite, speechThresholdDBFS <= 0 else {
            throw ValidationError("--speech-threshold-dbfs must be <= 0")
        }
        guard hangoverMs >= 20 else { throw ValidationError("--hangover-ms must be >= 20") }
        guard responseSpeed >= 0, responseSpeed.isFinite else { throw ValidationError("--response-speed must be >= 0") }
        guard (10...1000).contains(chunkMs), rate * chunkMs % 1000 == 0 else {
            throw ValidationError("--chunk-ms must be 10...1000 and a whole number of samples")
        }
        if let maxSessionSeconds, !(maxSessionSeconds > 0 && maxSessionSeconds <= SessionCap.maxSeconds) {
            throw ValidationError("--max-session must be > 0 and at most \(Int(SessionCap.maxSeconds)) seconds")
        }
        guard refuseAuth >= -1 else { throw ValidationError("--refuse-auth must be >= -1") }
        guard slowHandshakeMs >= 0 else { throw ValidationError("--slow-handshake-ms must be >= 0") }
        guard HandshakePhase(rawValue: slowHandshakePhase) != nil else {
            throw ValidationError("--slow-handshake-phase must be upgrade or session")
        }
        if let dropAfterMs, dropAfterMs < 0 { throw ValidationError("--drop-after-ms must be >= 0") }
        if let stallAfterMs, stallAfterMs < 0 { throw ValidationError("--stall-after-ms must be >= 0") }
        if let flapSeconds, !(flapSeconds > 0) { throw ValidationError("--flap-seconds must be > 0") }
    }

    func run() throws {
        var options = MockOptions()
        options.host = host
        options.port = port
        options.recordDirectory = recordDirectory
        options.apiKey = apiKey
        options.sampleRate = rate
        options.seed = seed
        options.echo = echo
        options.speechThresholdDBFS = speechThresholdDBFS
        options.hangoverMs = hangoverMs
        options.responseSpeed = responseSpeed
        options.chunkMs = chunkMs
        options.maxSessionSeconds = maxSessionSeconds
        options.refuseAuth = refuseAuth
        options.slowHandshakeMs = slowHandshakeMs
        options.slowHandshakePhase = HandshakePhase(rawValue: slowHandshakePhase) ?? .upgrade
        options.dropAfterMs = dropAfterMs
        options.stallAfterMs = stallAfterMs
        options.flapSeconds = flapSeconds
        options.verbose = verbose
        options.quiet = quiet
        do {
            try MockServer.run(options: options)
        } catch let error as MockStartError {
            Log.error(error.message)
            throw ExitCode(69)
        } catch let error as RecorderError {
            Log.error(error.message)
            throw ExitCode(73)
        }
    }
}
