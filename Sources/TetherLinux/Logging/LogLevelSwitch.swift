import Logging
import Synchronization

/// The daemon-wide log level, changeable at run time (`tetherctl log-level`, reload) without
/// rebuilding loggers: every handler reads it on each call.
public final class LogLevelSwitch: Sendable {
    private let raw: Atomic<Int>
    private static let levels = Logger.Level.allCases

    public init(_ level: Logger.Level) {
        raw = Atomic(Self.levels.firstIndex(of: level) ?? 2)
    }

    public var level: Logger.Level {
        get { Self.levels[raw.load(ordering: .relaxed)] }
        set { raw.store(Self.levels.firstIndex(of: newValue) ?? 2, ordering: .relaxed) }
    }
}
