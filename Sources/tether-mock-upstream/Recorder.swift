import Glibc
import TetherCore

/// `--record DIR`: what the mock received, for tests to compare byte for byte.
///
/// - `conn-<n>.pcm`: PCM received on connection n, in arrival order
/// - `uplink.pcm`: PCM received on all connections, in arrival order
/// - `events.jsonl`: one line per client JSON event, `audio` strings replaced by their decoded length
/// - `connections.jsonl`: one line per connection open and close, and per refused upgrade
/// - `conn-<n>.items.jsonl`: one line per `conversation.item.create` on connection n (made on
///   the first one)
///
/// Every write goes straight to the kernel with write(2) (no user-space buffer), so a test
/// reading the files while the mock runs sees everything received so far. A failing write is
/// reported once on stderr and never stops the mock.
final class Recorder {
    let directory: String
    private var uplink: Int32 = -1
    private var events: Int32 = -1
    private var connections: Int32 = -1
    private var perConnection: [Int: Int32] = [:]
    private var itemFiles: [Int: Int32] = [:]
    private var reportedFailure = false

    init(directory: String) throws(RecorderError) {
        self.directory = directory
        try Self.makeDirectories(directory)
        uplink = try Self.open("\(directory)/uplink.pcm")
        events = try Self.open("\(directory)/events.jsonl")
        connections = try Self.open("\(directory)/connections.jsonl")
    }

    deinit {
        for fd in [uplink, events, connections] + Array(perConnection.values) + Array(itemFiles.values) where fd >= 0 {
            close(fd)
        }
    }

    func connectionOpened(_ n: Int, line: JSONObject) {
        if let fd = try? Self.open("\(directory)/conn-\(n).pcm") {
            perConnection[n] = fd
        } else {
            failed("cannot create conn-\(n).pcm")
        }
        writeLine(line, to: connections)
    }

    func connectionClosed(_ n: Int, line: JSONObject) {
        writeLine(line, to: connections)
        if let fd = perConnection.removeValue(forKey: n) { close(fd) }
        if let fd = itemFiles.removeValue(forKey: n) { close(fd) }
    }

    /// A created item of connection n; its file is made on the first, so a connection that
    /// seeded nothing has none.
    func createdItem(_ n: Int, line: JSONObject) {
        if itemFiles[n] == nil {
            guard let fd = try? Self.open("\(directory)/conn-\(n).items.jsonl") else {
                return failed("cannot create conn-\(n).items.jsonl")
            }
            itemFiles[n] = fd
        }
        if let fd = itemFiles[n] { writeLine(line, to: fd) }
    }

    func upgradeRejected(line: JSONObject) {
        writeLine(line, to: connections)
    }

    func receivedPCM(_ n: Int, _ bytes: UnsafeRawBufferPointer) {
        if let fd = perConnection[n] { write(bytes, to: fd) }
        write(bytes, to: uplink)
    }

    func receivedEvent(_ n: Int, event: JSONValue) {
        let line: JSONObject = ["conn": .number(Double(n)), "ts": .string(WallClock.iso8601Now()),
                                "t_ms": .number(Double(WallClock.sinceStartMilliseconds())),
                                "event": Self.replacingAudio(event)]
        writeLine(line, to: events)
    }

    func receivedInvalidEvent(_ n: Int, text: String, error: String) {
        let line: JSONObject = ["conn": .number(Double(n)), "ts": .string(WallClock.iso8601Now()),
                                "t_ms": .number(Double(WallClock.sinceStartMilliseconds())),
                                "invalid": .string(String(text.prefix(512))), "error": .string(error)]
        writeLine(line, to: events)
    }

    /// `audio` string fields anywhere in the event become their decoded byte length (or -1 when
    /// the text is not base64 of a possible length).
    static func replacingAudio(_ value: JSONValue) -> JSONValue {
        switch value {
        case .object(let object):
            var out = JSONObject()
            for (key, item) in object {
                if key == "audio", case .string(let text) = item {
                    out[key] = .number(Double(Base64.decodedLength(text) ?? -1))
                } else {
                    out[key] = replacingAudio(item)
                }
            }
            return .object(out)
        case .array(let items):
            return .array(items.map(replacingAudio))
        default:
            return value
        }
    }

    private func writeLine(_ object: JSONObject, to fd: Int32) {
        var text = JSONWriter.string(.object(object))
        text += "\n"
        text.withUTF8 { write(UnsafeRawBufferPointer($0), to: fd) }
    }

    private func write(_ bytes: UnsafeRawBufferPointer, to fd: Int32) {
        guard fd >= 0, var base = bytes.baseAddress else { return }
        var left = bytes.count
        while left > 0 {
            let n = Glibc.write(fd, base, left)
            if n < 0 {
                if errno == EINTR { continue }
                failed("write failed: errno \(errno)")
                return
            }
            left -= n
            base += n
        }
    }

    private func failed(_ message: String) {
        guard !reportedFailure else { return }
        reportedFailure = true
        Log.error("recording in \(directory): \(message) (further recording errors are not reported)")
    }

    private static func open(_ path: String) throws(RecorderError) -> Int32 {
        let fd = Glibc.open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw RecorderError(message: "cannot create \(path): errno \(errno)") }
        return fd
    }

    private static func makeDirectories(_ path: String) throws(RecorderError) {
        var prefix = path.hasPrefix("/") ? "/" : ""
        for part in path.split(separator: "/") {
            prefix += part
            if mkdir(prefix, 0o755) != 0 && errno != EEXIST {
                throw RecorderError(message: "cannot create directory \(prefix): errno \(errno)")
            }
            prefix += "/"
        }
    }
}

struct RecorderError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}
