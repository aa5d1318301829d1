/// Decides whether the last token fetched may be used for the next connection attempt.
///
/// A token is kept until `refreshBefore` ahead of its expiry, so that it is still valid while
/// the WebSocket handshake that presents it completes. The deadline is kept on the monotonic
/// clock: an NTP step after the fetch (a robot without an RTC booting with last week's time)
/// cannot make a dead token look fresh. The lifetime itself is measured in the server's time
/// when the response carried a `Date` header, so a wrong local wall clock at fetch time does
/// not stretch or shrink it either. A token without an expiry, or one that would need
/// refreshing at once, is not kept: it is used for one attempt and fetched again next time.
public struct TokenCache: Sendable {
    /// Both clocks, read once when a fetch starts.
    public struct Reading: Sendable, Equatable {
        public var wallSeconds: Double
        public var mono: MonoTime
        public init(wallSeconds: Double, mono: MonoTime) {
            self.wallSeconds = wallSeconds
            self.mono = mono
        }
    }

    /// Longest a token is ever kept, whatever the endpoint says: a wrong expiry field (a
    /// millisecond timestamp, a date far in the future) must not pin a token for years.
    public static let maxLifetime: Duration = .seconds(24 * 3600)

    public var refreshBefore: Duration
    private var token: Secret?
    private var refreshAt: MonoTime?

    public init(refreshBefore: Duration) { self.refreshBefore = refreshBefore }

    /// The cached token if it may still be used at `now`.
    public func token(now: MonoTime) -> Secret? {
        guard let token, let refreshAt, now < refreshAt else { return nil }
        return token
    }

    /// Remembers a fetched token. `fetchStarted` is when the request was sent (a conservative
    /// origin: the server issued the token after that); `serverDate` is the response's `Date`.
    /// Returns how long the token will be reused, nil when it is single-use.
    @discardableResult
    public mutating func store(_ issued: IssuedToken, fetchStarted: Reading, serverDate: Double?) -> Duration? {
        invalidate()
        guard let remaining = Self.remainingLifetime(issued.expiry, wallNow: serverDate ?? fetchStarted.wallSeconds) else {
            return nil
        }
        let reuse = min(remaining, Self.maxLifetime) - refreshBefore
        guard reuse > .zero else { return nil }
        token = issued.value
        refreshAt = fetchStarted.mono + reuse
        return reuse
    }

    /// Forget the token (the upstream refused it, or the configuration changed).
    public mutating func invalidate() {
        token = nil
        refreshAt = nil
    }

    /// How long the token lives from `wallNow`, nil when unknown.
    static func remainingLifetime(_ expiry: IssuedToken.Expiry?, wallNow: Double) -> Duration? {
        let seconds: Double
        switch expiry {
        case nil: return nil
        case .at(let epoch): seconds = epoch - wallNow
        case .after(let s): seconds = s
        }
        guard seconds.isFinite, seconds > 0 else { return .zero }
        return .milliseconds(Int64(min(seconds, 1e9) * 1000))
    }
}
