import Foundation
import Testing
@testable import TetherCore

@Suite struct ConfigLoaderTests {
    @Test func emptyFileIsAllDefaults() throws {
        #expect(try ConfigLoader.load(yaml: "") == TetherConfig())
        #expect(try ConfigLoader.load(yaml: "# nothing\n") == TetherConfig())
    }

    @Test func shippedConfigDocumentsTheDefaults() throws {
        // config/tether.yaml is the annotated default: loading it must give exactly the
        // built-in defaults (the only difference: it names api_key_file explicitly).
        let path = #filePath.replacingOccurrences(of: "Tests/TetherCoreTests/ConfigLoaderTests.swift", with: "config/tether.yaml")
        let text = try readFile(path)
        var loaded = try ConfigLoader.load(yaml: text)
        #expect(loaded.upstream.apiKeyFileIsExplicit)
        loaded.upstream.apiKeyFileIsExplicit = false
        #expect(loaded == TetherConfig())
    }

    @Test func valuesAreRead() throws {
        let config = try ConfigLoader.load(yaml: """
            upstream:
              url: ws://10.0.0.2:8080/pcm
              protocol: pcm-stream
              api_key_file: null
              headers: { X-Robot: r2 }
              ping_interval: 500ms
              session: { instructions: "be brief", voice: marin, temperature: 0.7 }
            link:
              grace: 1.5s
              backoff: { initial: 100ms, max: 5s, multiplier: 1.5, jitter: 0 }
              buffer: { max_age: 10s, max_bytes: 480000, replay: false }
            audio:
              capture: { device: "plughw:1,0", rate: 16000, channels: 2, period: 10ms }
              playback: { device: tether_playback, prebuffer: 40ms, rate: 16000 }
              echo: none
              volume: 55
            network: { watch: false, ignore_interfaces: [lo, docker0], debounce: 0s }
            control: { socket: /tmp/t.sock, group: null, mode: "0600" }
            log: { level: debug, target: stderr }
            """)
        #expect(config.upstream.url == UpstreamURL(secure: false, host: "10.0.0.2", port: 8080, target: "/pcm"))
        #expect(config.upstream.protocolKind == .pcmStream)
        #expect(config.upstream.apiKeyFile == nil)
        #expect(config.upstream.headers == [HTTPHeader(name: "X-Robot", value: "r2")])
        #expect(config.upstream.pingInterval == .milliseconds(500))
        #expect(config.upstream.session["temperature"] == .number(0.7))
        #expect(config.upstream.session["voice"] == "marin")
        #expect(config.link.grace == .milliseconds(1500))
        #expect(config.link.backoff.multiplier == 1.5)
        #expect(config.link.buffer.replay == false)
        #expect(config.audio.capture.device == "plughw:1,0")
        #expect(config.audio.capture.channels == 2)
        #expect(config.audio.capture.framesPerPeriod == 160)
        #expect(config.audio.playback.prebuffer == .milliseconds(40))
        #expect(config.audio.echo == .none)
        #expect(config.network.ignoreInterfaces == ["lo", "docker0"])
        #expect(config.control.group == nil)
        #expect(config.control.mode == 0o600)
        #expect(config.log.level == .debug)
    }

    /// Each bad file must fail with one line naming the key (and the line when known).
    @Test(arguments: [
        ("upstream:\n  urll: ws://x\n", "upstream.urll", "unknown key", 2),
        ("link:\n  grace: 3 sec\n", "link.grace", "is not a duration", 2),
        ("link:\n  grace: 3\n", "link.grace", "is not a duration", 2),
        ("audio:\n  volume: 140\n", "audio.volume", "out of range", 2),
        ("audio:\n  capture: { period: 1s }\n", "audio.capture.period", "out of range", 2),
        ("upstream:\n  url: http://example.com\n", "upstream.url", "ws://", 2),
        ("upstream:\n  protocol: grpc\n", "upstream.protocol", "must be one of", 2),
        ("link:\n  backoff: { initial: 5s, max: 1s }\n", "link.backoff.max", "must not be shorter", nil),
        ("control:\n  mode: \"0999\"\n", "control.mode", "octal", 2),
        ("network:\n  watch: maybe\n", "network.watch", "true or false", 2),
        ("log:\n  level: loud\n", "log.level", "must be one of", 2),
        ("audio:\n  capture: { rate: 16000 }\n", "audio.capture.rate", "24000", nil),
        ("bogus: 1\n", "bogus", "unknown key", 1),
        ("upstream: 3\n", "upstream", "mapping", 1),
        ("conversation:\n  rotate_after: 4s\n", "conversation.rotate_after", "out of range", 2),
        ("conversation:\n  rotate_after: 10m\n  rotate_deadline: 10m\n", "conversation.rotate_deadline", "must be later", 3),
        ("conversation:\n  rotate_deadline: 50m\n", "conversation.rotate_deadline", "must be later", 2),
        ("conversation:\n  max_items: -1\n", "conversation.max_items", "out of range", 2),
        ("conversation:\n  max_age: 0s\n", "conversation.max_age", "out of range", 2),
        ("conversation:\n  transcribe: \"\"\n", "conversation.transcribe", "model name", 2),
        ("conversation:\n  carry: yes\n", "conversation.carry", "true or false", 2),
        ("conversation:\n  rotate: 5m\n", "conversation.rotate", "unknown key", 2),
        ("audio:\n  echo: aec\n", "audio.echo", "must be one of cancel, gate, none", 2),
        ("audio:\n  echo_delay: 600ms\n", "audio.echo_delay", "out of range", 2),
        ("audio:\n  echo_delay: -5ms\n", "audio.echo_delay", "duration", 2),
        ("audio:\n  noise_suppression: medium\n", "audio.noise_suppression", "must be one of off, low, high", 2),
        ("audio:\n  noise_suppression: false\n", "audio.noise_suppression", "must be one of", 2),
        ("audio:\n  echo: cancel\n  echo_tail: 2s\n", "audio.echo_tail", "20ms..500ms", 3),
        ("audio:\n  echo: cancel\n  echo_tail: 0ms\n", "audio.echo_tail", "filter length", 3),
    ] as [(String, String, String, Int?)])
    func badConfigNamesTheKey(yaml: String, key: String, fragment: String, line: Int?) {
        #expect {
            try ConfigLoader.load(yaml: yaml, source: "t.yaml")
        } throws: { error in
            guard let error = error as? ConfigError else { return false }
            let text = error.description
            return error.key == key && text.contains(fragment) && !text.contains("\n") && (line == nil || error.line == line)
                && text.hasPrefix("t.yaml")
        }
    }

    @Test func echoCancellationSettingsAreRead() throws {
        let config = try ConfigLoader.load(yaml: """
            audio:
              echo: cancel
              echo_tail: 300ms
              echo_delay: 120ms
              noise_suppression: low
            """)
        #expect(config.audio.echo == .cancel)
        #expect(config.audio.echoTail == .milliseconds(300))
        #expect(config.audio.echoDelay == .milliseconds(120))
        #expect(config.audio.noiseSuppression == .low)
        #expect(NoiseSuppression.low.suppressDB == -15 && NoiseSuppression.off.suppressDB == nil)
        // The defaults: no extra delay, no noise suppression; a gate's tail may be long.
        let gate = try ConfigLoader.load(yaml: "audio:\n  echo: gate\n  echo_tail: 2s\n")
        #expect(gate.audio.echoTail == .seconds(2) && gate.audio.echoDelay == .zero && gate.audio.noiseSuppression == .off)
        // Cancelling is the default (#15: it met its figures), so a person can talk over the robot.
        #expect(try ConfigLoader.load(yaml: "").audio.echo == .cancel)
    }

    @Test func badYAMLIsOneLineWithItsLine() {
        #expect {
            try ConfigLoader.load(yaml: "upstream:\n  url: [\n", source: "t.yaml")
        } throws: { error in
            guard let error = error as? ConfigError else { return false }
            return error.description.hasPrefix("t.yaml:") && error.description.contains("invalid YAML") && !error.description.contains("\n")
        }
    }

    @Test func durationsParseAndFormat() {
        #expect(DurationText.parse("250ms") == .milliseconds(250))
        #expect(DurationText.parse("1.5s") == .milliseconds(1500))
        #expect(DurationText.parse("2m") == .seconds(120))
        #expect(DurationText.parse("10us") == .microseconds(10))
        #expect(DurationText.parse("3") == nil)
        #expect(DurationText.parse("-1s") == nil)
        #expect(DurationText.parse("s") == nil)
        #expect(DurationText.parse("1e3s") == nil)
        for d: Duration in [.zero, .milliseconds(250), .seconds(3), .seconds(90), .microseconds(7)] {
            #expect(DurationText.parse(DurationText.format(d)) == d)
        }
    }

    @Test func upstreamURLs() {
        #expect(UpstreamURL.parse("wss://api.openai.com/v1/realtime?model=gpt-realtime")
            == UpstreamURL(secure: true, host: "api.openai.com", port: 443, target: "/v1/realtime?model=gpt-realtime"))
        #expect(UpstreamURL.parse("ws://[::1]:9000") == UpstreamURL(secure: false, host: "::1", port: 9000, target: "/"))
        #expect(UpstreamURL.parse("ws://host?x=1")?.target == "/?x=1")
        #expect(UpstreamURL.parse("ws://user:pw@host/") == nil)
        #expect(UpstreamURL.parse("ws://host:99999/") == nil)
        #expect(UpstreamURL.parse("https://host/") == nil)
    }
}

func readFile(_ path: String) throws -> String {
    try String(contentsOfFile: path, encoding: .utf8)
}
