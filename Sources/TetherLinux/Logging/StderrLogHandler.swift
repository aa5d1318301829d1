import Glibc
import Logging
import TetherCore

/// Readable one-line records on stderr for a developer's terminal (and for journald's stream
/// capture when native records are not wanted):
/// `2026-11-22T01:02:03.456Z warning session: link lost [state=degraded session=sess_1]`.
public struct StderrLogHandler: TetherLogHandler {
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String
    let levelSwitch: LogLevelSwitch

    public init(label: String, levelSwitch: LogLevelSwitch) {
        self.label = label
        self.levelSwitch = levelSwitch
    }

    public func log(event: LogEvent) {
        let all = LogMetadata.merge(metadata, metadataProvider, event.metadata)
        var text = "\(TetherTimestamp.now()) \(event.level) \(label): \(event.message)"
        if !all.isEmpty {
            text += " [" + all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ") + "]"
        }
        text = String(text.map { $0 == "\n" ? " " : $0 }) + "\n"
        // One write(2) per record keeps lines from different threads from interleaving.
        var bytes = Array(text.utf8)
        _ = bytes.withUnsafeMutableBytes { Glibc.write(STDERR_FILENO, $0.baseAddress, $0.count) }
    }
}

enum TetherTimestamp {
    static func now() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Timestamp.iso8601(unixMillis: Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000)
    }
}
