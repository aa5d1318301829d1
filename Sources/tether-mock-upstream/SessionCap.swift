/// The maximum duration of an openai-realtime session (`--max-session`, `POST /mock/max-session`).
///
/// The real API ends every session after 60 minutes: an `error` event with code
/// `session_expired`, then close 1001 with "Your session hit the maximum duration of 60
/// minutes.". The mock does the same after a cap a test can afford to wait for, so session
/// rotation can be tested in seconds; `session.created` announces the end in `expires_at`.
struct SessionCap {
    /// A day: longer caps are surely a typo.
    static let maxSeconds = 86400.0

    let seconds: Double

    init?(seconds: Double?) {
        guard let seconds, seconds > 0, seconds.isFinite else { return nil }
        self.seconds = seconds
    }

    var milliseconds: Int { max(1, Int((seconds * 1000).rounded())) }

    /// Unix seconds at which a session opened at `openedAt` (unix seconds) expires, rounded
    /// down: a client that leaves at `expires_at` is never late.
    func expiresAt(openedAt: Double) -> Int { Int((openedAt + seconds).rounded(.down)) }

    /// The real server's words: "60 minutes", "1 minute"; the mock's short caps as "6 seconds",
    /// "0.5 seconds", "1 second".
    var durationText: String {
        if seconds >= 60, seconds.truncatingRemainder(dividingBy: 60) == 0 {
            let minutes = Int(seconds / 60)
            return minutes == 1 ? "1 minute" : "\(minutes) minutes"
        }
        if seconds == 1 { return "1 second" }
        let number = seconds.rounded() == seconds && seconds < 1e15 ? String(Int(seconds)) : String(seconds)
        return "\(number) seconds"
    }

    /// The text of both the `error` event and the close frame's reason.
    var message: String { "Your session hit the maximum duration of \(durationText)." }
}
