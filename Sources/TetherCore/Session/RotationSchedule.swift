/// When an upstream session is replaced before the brain's cap (rule 13): a rotation starts
/// `after` the session began, at the first quiet moment, and happens at the latest at
/// `deadline`. A server that says when it will close the session (`expires_at`) moves both
/// earlier, keeping a margin before its close.
public struct RotationSchedule: Sendable, Equatable {
    public var after: Duration
    public var deadline: Duration

    public init(after: Duration, deadline: Duration) {
        self.after = after
        self.deadline = deadline
    }

    /// The time to begin looking for a quiet moment, and the time to switch regardless, for a
    /// session that began at `began` and that the server closes `expiresIn` after that.
    public func times(began: MonoTime, expiresIn: Duration?) -> (due: MonoTime, deadline: MonoTime) {
        var latest = deadline
        var window = deadline - after
        if let expiresIn, expiresIn > .zero {
            // Switch at the latest a tenth of the session (at most a minute) before the close.
            let margin = min(.seconds(60), expiresIn / 10)
            if expiresIn - margin < latest {
                latest = expiresIn - margin
                // Never spend more than half the session waiting for a quiet moment.
                window = min(window, latest / 2)
            }
        }
        return (began + (latest - window), began + latest)
    }
}
