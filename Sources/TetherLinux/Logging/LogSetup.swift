import Glibc
import Logging
import TetherCore

/// Chooses where records go: native journald records when stderr is connected to the
/// journal (`JOURNAL_STREAM` names stderr's device and inode) or when configured, readable
/// stderr lines otherwise.
public enum LogSetup {
    public static func useJournal(target: LogTarget, environment: [String: String]) -> Bool {
        switch target {
        case .journal: return true
        case .stderr: return false
        case .auto: return stderrIsJournal(environment["JOURNAL_STREAM"])
        }
    }

    static func stderrIsJournal(_ journalStream: String?) -> Bool {
        guard let journalStream else { return false }
        let parts = journalStream.split(separator: ":")
        guard parts.count == 2, let dev = UInt64(parts[0]), let ino = UInt64(parts[1]) else { return false }
        var st = stat()
        guard fstat(STDERR_FILENO, &st) == 0 else { return false }
        return UInt64(st.st_dev) == dev && UInt64(st.st_ino) == ino
    }

    /// Installs the process-wide logging backend once.
    public static func bootstrap(useJournal: Bool, levelSwitch: LogLevelSwitch) {
        LoggingSystem.bootstrap { label in
            if useJournal { return JournalLogHandler(label: label, levelSwitch: levelSwitch) }
            return StderrLogHandler(label: label, levelSwitch: levelSwitch)
        }
    }
}
