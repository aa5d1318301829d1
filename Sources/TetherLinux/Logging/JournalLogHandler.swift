import CSystemd
import Glibc
import Logging

/// Writes native journald records with `sd_journal_sendv`: the message, `PRIORITY`,
/// `SYSLOG_IDENTIFIER`, where in the code it came from, and logger metadata as
/// `TETHER_*` fields, so `journalctl -u tether TETHER_STATE=degraded` finds the records.
public struct JournalLogHandler: TetherLogHandler {
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String
    let levelSwitch: LogLevelSwitch
    private let identifier: String

    public init(label: String, identifier: String = "tetherd", levelSwitch: LogLevelSwitch) {
        self.label = label
        self.identifier = identifier
        self.levelSwitch = levelSwitch
    }

    public func log(event: LogEvent) {
        var fields = [
            "MESSAGE=\(event.message)",
            "PRIORITY=\(event.level.syslogPriority)",
            "SYSLOG_IDENTIFIER=\(identifier)",
            "CODE_FILE=\(event.file)",
            "CODE_LINE=\(event.line)",
            "CODE_FUNC=\(event.function)",
            "TETHER_COMPONENT=\(label)",
        ]
        for (key, value) in LogMetadata.merge(metadata, metadataProvider, event.metadata) {
            fields.append("\(JournalFieldName.from(metadataKey: key))=\(value)")
        }
        JournalLogHandler.send(fields)
    }

    static func send(_ fields: [String]) {
        // Build one iovec per field over stable C strings for the duration of the call.
        let cStrings = fields.map { strdup($0) }
        defer { cStrings.forEach { free($0) } }
        var vectors = cStrings.map { iovec(iov_base: UnsafeMutableRawPointer($0), iov_len: strlen($0!)) }
        _ = sd_journal_sendv(&vectors, Int32(vectors.count))
    }
}

extension Logger.Level {
    /// syslog(3) priorities, as journald's PRIORITY field wants them.
    var syslogPriority: Int {
        switch self {
        case .trace, .debug: return 7
        case .info: return 6
        case .notice: return 5
        case .warning: return 4
        case .error: return 3
        case .critical: return 2
        }
    }
}
