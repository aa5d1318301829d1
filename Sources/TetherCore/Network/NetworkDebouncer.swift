/// Leading edge plus hold-off. The first change after a quiet period is acted on at once
/// (the session must hear "offline" without delay); changes that follow within `holdOff`
/// are coalesced into a single evaluation when it ends. That evaluation opens a new
/// hold-off, so a flapping link is evaluated at most once per `holdOff`, and a change
/// that reverts inside the window costs nothing (the evaluation finds the view unchanged).
///
/// Pure: the caller passes `now` and arms a timer for `deadline`.
public struct NetworkDebouncer: Sendable {
    public let holdOff: Duration
    /// End of the current hold-off window; no evaluation happens before it.
    private var windowEnd: MonoTime?
    private var pending = false

    public init(holdOff: Duration) {
        self.holdOff = max(holdOff, .zero)
    }

    /// Something changed. Returns true when the caller should evaluate now.
    public mutating func changed(now: MonoTime) -> Bool {
        if let windowEnd, now < windowEnd {
            pending = true
            return false
        }
        windowEnd = now + holdOff
        pending = false
        return true
    }

    /// When a coalesced evaluation is due, if one is.
    public var deadline: MonoTime? { pending ? windowEnd : nil }

    /// Call when the timer fires (or on any wake-up). Returns true when the coalesced
    /// evaluation is due now.
    public mutating func tick(now: MonoTime) -> Bool {
        guard pending, let windowEnd, now >= windowEnd else { return false }
        self.windowEnd = now + holdOff
        pending = false
        return true
    }
}
