import Glibc
import TetherCore

/// The one place the daemon reads the monotonic clock. Decision logic never calls this: it
/// is handed `MonoTime`s by the services that do.
public enum MonoClock {
    public static func now() -> MonoTime {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return MonoTime(nanoseconds: Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec))
    }

    /// Wall-clock milliseconds since the epoch, for event timestamps only.
    public static func unixMillis() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }
}
