import Glibc

/// Capture and playback run ahead of ordinary work, as a sound server's threads do (PulseAudio
/// and PipeWire use nice -11): on a busy board a late read or write is an xrun the person
/// hears. Realtime scheduling is deliberately not used (the unit keeps `RestrictRealtime=yes`):
/// a bug in a realtime thread can starve the whole board, a niced one cannot.
/// The unit grants it with `LimitNICE=-11` (and `setpriority` in its system call filter);
/// started by hand as an ordinary user the threads simply keep the default priority.
enum AudioThreadPriority {
    static let nice: Int32 = -11

    /// Raises the calling thread; nil when done, else why not.
    static func raiseCurrentThread() -> String? {
        // On Linux, PRIO_PROCESS with id 0 is the calling thread (a nice value is per thread).
        guard setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, nice) != 0 else { return nil }
        return String(cString: strerror(errno))
    }
}
