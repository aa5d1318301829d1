import Foundation
import Synchronization
import Testing
import TetherCore
@testable import TetherLinux

/// Drives Tests/rig/alsa_rig.py (the ALSA test rig: file plugin over null, paced by a feeder
/// and a reader) from Swift tests. Each test gets its own directory; ALSA's configuration is
/// process-wide, so the tests using it run serialized and point ALSA_CONFIG_PATH at their rig.
final class AudioRig {
    struct Format {
        var rate = 24000
        var channels = 1
        var periodMs = 20

        var frameBytes: Int { 2 * channels }
        var periodBytes: Int { rate * periodMs / 1000 * frameBytes }
        func bytes(ms: Int) -> Int { rate * ms / 1000 * frameBytes }
        func ms(bytes: Int) -> Double { Double(bytes) * 1000 / Double(rate * frameBytes) }
        var args: [String] { ["--rate", "\(rate)", "--channels", "\(channels)", "--period-ms", "\(periodMs)"] }
    }

    static let script: String = {
        // Tests/TetherLinuxTests/Audio/RigSupport.swift -> Tests/rig/alsa_rig.py
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.appendingPathComponent("rig/alsa_rig.py").path
    }()

    let dir: String
    var captureFIFO: String { dir + "/capture.fifo" }
    var playbackFIFO: String { dir + "/playback.fifo" }
    var playbackOut: String { dir + "/playback.raw" }
    var playbackLog: String { dir + "/playback.log" }
    var configPath: String { dir + "/asound.conf" }

    private var processes: [Process] = []

    init(_ name: String) throws {
        dir = NSTemporaryDirectory() + "tether-rig-\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try Self.run(["config", "--dir", dir, "--capture-fifo", captureFIFO, "--playback-fifo", playbackFIFO])
        // ALSA rereads its configuration when this changes.
        setenv("ALSA_CONFIG_PATH", configPath, 1)
    }

    deinit {
        stopAll()
        // TETHER_KEEP_RIG=1 keeps the directory (config, logs, what was played) to look at.
        if getenv("TETHER_KEEP_RIG") == nil { try? FileManager.default.removeItem(atPath: dir) }
    }

    func stopAll() {
        for p in processes where p.isRunning {
            p.terminate()
            p.waitUntilExit()
        }
        processes.removeAll()
    }

    /// Start feeding the capture FIFO: `lead` ms of silence, `input`, then silence until
    /// stopped. Returns once the FIFO exists.
    @discardableResult
    func startFeeder(input: [UInt8]? = nil, monoInput: Bool = false, format: Format, leadMs: Int = 0, tailMs: Int? = nil) throws -> Process {
        var args = ["feed", "--fifo", captureFIFO, "--lead-ms", "\(leadMs)"] + format.args
        if let tailMs { args += ["--tail-ms", "\(tailMs)"] }
        if let input {
            let path = dir + "/feed-\(processes.count).raw"
            try Data(input).write(to: URL(fileURLWithPath: path))
            args += ["--input", path]
            if monoInput { args.append("--mono-input") }
        }
        return try launch(args)
    }

    /// Stop a feeder: it closes and deletes the FIFO (the capture device vanishes).
    func stop(_ process: Process) {
        process.terminate()
        process.waitUntilExit()
        processes.removeAll { $0 === process }
    }

    @discardableResult
    func startReader(format: Format) throws -> Process {
        try launch(["play", "--fifo", playbackFIFO, "--out", playbackOut, "--log", playbackLog] + format.args)
    }

    /// Everything the playback reader received so far.
    func played() -> [UInt8] {
        (try? [UInt8](Data(contentsOf: URL(fileURLWithPath: playbackOut)))) ?? []
    }

    /// The reader's log: (monotonic time, stream offset, length) per read.
    func playbackReads() -> [(time: MonoTime, offset: Int, length: Int)] {
        guard let text = try? String(contentsOfFile: playbackLog, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { line in
            let parts = line.split(separator: " ").compactMap { Int64($0) }
            guard parts.count == 3 else { return nil }
            return (MonoTime(nanoseconds: parts[0]), Int(parts[1]), Int(parts[2]))
        }
    }

    private func launch(_ args: [String]) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = [Self.script] + args
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        processes.append(process)
        // Each long-running subcommand prints one line once it is set up.
        let line = out.fileHandleForReading.availableData
        guard String(decoding: line, as: UTF8.self).hasPrefix("ready") else {
            throw RigError("rig \(args.first ?? "") did not start: \(String(decoding: line, as: UTF8.self))")
        }
        return process
    }

    @discardableResult
    static func run(_ args: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = [script] + args
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw RigError("alsa_rig.py \(args.joined(separator: " ")) failed") }
        return String(decoding: data, as: UTF8.self)
    }

    /// Speech from espeak-ng via sox, mono S16_LE at `rate` (made once per text and rate).
    static func speech(_ text: String, rate: Int) throws -> [UInt8] {
        let path = NSTemporaryDirectory() + "tether-speech-\(rate)-\(UInt(bitPattern: text.hashValue)).raw"
        if let data = FileManager.default.contents(atPath: path), !data.isEmpty { return [UInt8](data) }
        try run(["speech", "--text", text, "--rate", "\(rate)", "--out", path])
        return [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    static func tone(ms: Int, rate: Int, freq: Int = 440, amplitude: Double = 0.5) throws -> [UInt8] {
        let path = NSTemporaryDirectory() + "tether-tone-\(getpid())-\(ms)-\(rate)-\(freq).raw"
        try run(["tone", "--ms", "\(ms)", "--rate", "\(rate)", "--freq", "\(freq)", "--amplitude", "\(amplitude)", "--out", path])
        defer { try? FileManager.default.removeItem(atPath: path) }
        return [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    }
}

struct RigError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// Poll `condition` until it holds or `timeout` passes: tests wait on conditions with a
/// deadline, never on a blind sleep.
@discardableResult
func waitFor(_ timeout: Duration, poll: Duration = .milliseconds(5), _ condition: () -> Bool) -> Bool {
    let deadline = MonoClock.now() + timeout
    while true {
        if condition() { return true }
        if MonoClock.now() >= deadline { return false }
        var ts = timespec(tv_sec: 0, tv_nsec: Int(poll.nanoseconds))
        nanosleep(&ts, nil)
    }
}

/// Collects what the engine hands on and publishes, with the monotonic time it arrived.
final class AudioRecorder: Sendable {
    let frames = Mutex<[CapturedFrame]>([])
    let events = Mutex<[(time: MonoTime, event: TetherEvent)]>([])

    var sink: @Sendable (CapturedFrame) -> Void {
        { [self] frame in frames.withLock { $0.append(frame) } }
    }

    func listen(to bus: EventBus) {
        bus.subscribe { [self] event in
            let now = MonoClock.now()
            events.withLock { $0.append((now, event)) }
        }
    }

    var capturedBytes: [UInt8] { frames.withLock { $0.flatMap(\.pcm) } }
    var frameCount: Int { frames.withLock { $0.count } }

    func events(named name: String) -> [(time: MonoTime, event: TetherEvent)] {
        events.withLock { $0.filter { $0.event.name == name } }
    }
}

/// Where `needle` sits in `haystack`, aligning on the first non-zero sample of each (both are
/// preceded by silence); nil if the bytes there are not identical.
func locate(_ needle: [UInt8], in haystack: [UInt8], sampleBytes: Int = 2) -> Int? {
    func firstSound(_ b: [UInt8]) -> Int? {
        stride(from: 0, to: b.count - 1, by: sampleBytes).first { b[$0] != 0 || b[$0 + 1] != 0 }
    }
    guard let n = firstSound(needle), let h = firstSound(haystack), h >= n else { return nil }
    let start = h - n
    guard start + needle.count <= haystack.count else { return nil }
    return Array(haystack[start..<start + needle.count]) == needle ? start : nil
}

/// An engine configuration on the rig's devices.
func rigAudioConfig(capture: AudioRig.Format = .init(), playback: AudioRig.Format = .init(),
                    prebufferMs: Int = 60, echo: EchoMode = .none, volume: Int = 100) -> AudioConfig {
    var config = AudioConfig()
    config.capture.device = "tether_capture"
    config.capture.rate = capture.rate
    config.capture.channels = capture.channels
    config.capture.period = .milliseconds(capture.periodMs)
    config.playback.device.device = "tether_playback"
    config.playback.device.rate = playback.rate
    config.playback.device.channels = playback.channels
    config.playback.device.period = .milliseconds(playback.periodMs)
    config.playback.prebuffer = .milliseconds(prebufferMs)
    config.echo = echo
    config.volume = volume
    return config
}

extension JSONObject {
    func path(_ keys: String...) -> JSONValue? {
        var value: JSONValue? = .object(self)
        for key in keys { value = value?[key] }
        return value
    }
}

/// CPU time a thread of this process has used, by name (from /proc/self/task/*/schedstat,
/// nanosecond resolution).
func threadCPU(named name: String) -> Duration? {
    guard let tasks = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task") else { return nil }
    var total: Int64 = 0
    var found = false
    for tid in tasks {
        let base = "/proc/self/task/\(tid)/"
        guard let comm = try? String(contentsOfFile: base + "comm", encoding: .utf8),
              comm.trimmingCharacters(in: .whitespacesAndNewlines) == name,
              let stat = try? String(contentsOfFile: base + "schedstat", encoding: .utf8),
              let ns = stat.split(separator: " ").first.flatMap({ Int64($0) }) else { continue }
        total += ns
        found = true
    }
    return found ? .nanoseconds(total) : nil
}

func processCPU() -> Duration {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    let micros = Int64(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1_000_000 + Int64(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec)
    return .microseconds(micros)
}

/// (user, system) CPU of a thread of this process by name, from /proc stat (10 ms ticks).
func threadUserSystem(named name: String) -> (user: Duration, system: Duration)? {
    guard let tasks = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task") else { return nil }
    for tid in tasks {
        let base = "/proc/self/task/\(tid)/"
        guard let comm = try? String(contentsOfFile: base + "comm", encoding: .utf8),
              comm.trimmingCharacters(in: .whitespacesAndNewlines) == name,
              let stat = try? String(contentsOfFile: base + "stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { continue }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // After the comm: state is field 3, utime 14, stime 15 (1-based in proc(5)).
        guard fields.count > 13, let u = Int64(fields[11]), let s = Int64(fields[12]) else { continue }
        let tick = Int64(sysconf(Int32(_SC_CLK_TCK)))
        return (.milliseconds(u * 1000 / tick), .milliseconds(s * 1000 / tick))
    }
    return nil
}

/// Sleep until `time` on the monotonic clock (for pacing a producer, not for waiting on a
/// condition).
func sleep(until time: MonoTime) {
    var ts = timespec(tv_sec: Int(time.nanoseconds / 1_000_000_000), tv_nsec: Int(time.nanoseconds % 1_000_000_000))
    while clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nil) == EINTR {}
}
