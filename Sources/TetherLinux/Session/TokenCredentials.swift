import Glibc
import Logging
import Synchronization
import TetherCore

/// Credentials from a fleet token endpoint (`upstream.token`): before each connection attempt
/// the session asks for a token; a cached one is returned while it is fresh (`TokenCache`),
/// else one is fetched with the device credential and reused until `refresh_before` ahead of
/// its expiry. Calls that arrive while a fetch is in flight wait for that fetch instead of
/// starting another. A failed fetch is a failed attempt: its `ConnectionFailure` says what
/// went wrong (`token endpoint: HTTP 401 (check the device credential)`) and never carries
/// the token or the credential.
public final class TokenCredentials: UpstreamCredentials {
    /// Reads both clocks; injected so tests can move time.
    public typealias Clock = @Sendable () -> TokenCache.Reading

    public let config: TokenConfig
    let credential: Secret?
    let extraTrustPEM: [UInt8]?
    private let client: CurlHTTPClient
    private let clock: Clock
    private let state: Mutex<State>

    private struct State {
        var cache: TokenCache
        var inFlight: Task<Result<Secret?, ConnectionFailure>, Never>?
        var fetches = 0
    }

    public init(config: TokenConfig, credential: Secret?, extraTrustPEM: [UInt8]?,
                client: CurlHTTPClient = CurlHTTPClient(), clock: @escaping Clock = TokenCredentials.systemClock) {
        self.config = config
        self.credential = credential
        self.extraTrustPEM = extraTrustPEM
        self.client = client
        self.clock = clock
        self.state = Mutex(State(cache: TokenCache(refreshBefore: config.refreshBefore)))
    }

    public static let systemClock: Clock = {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return TokenCache.Reading(wallSeconds: Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9, mono: MonoClock.now())
    }

    /// How many fetches were started (for status and tests).
    public var fetches: Int { state.withLock { $0.fetches } }

    public var immediate: Secret?? {
        let now = clock().mono
        return state.withLock { $0.cache.token(now: now) }.map { .some($0) }
    }

    public func authorization() async -> Result<Secret?, ConnectionFailure> {
        let now = clock().mono
        enum Next { case cached(Secret), wait(Task<Result<Secret?, ConnectionFailure>, Never>) }
        let next: Next = state.withLock { s in
            if let token = s.cache.token(now: now) { return .cached(token) }
            if let running = s.inFlight { return .wait(running) }
            // The fetch is shared by everyone who asks while it runs, so it belongs to no one
            // caller's task; it ends within `token.timeout`.
            let fetch = Task { await self.fetch() }
            s.inFlight = fetch
            s.fetches += 1
            return .wait(fetch)
        }
        switch next {
        case .cached(let token): return .success(token)
        case .wait(let fetch): return await fetch.value
        }
    }

    public func upstreamRefused() {
        state.withLock { $0.cache.invalidate() }
    }

    /// True when `other` would fetch the same way, so its cached token may be kept across a reload.
    public func sameSource(as other: TokenCredentials) -> Bool {
        config == other.config && credential == other.credential && extraTrustPEM == other.extraTrustPEM
    }

    /// Takes over `other`'s cached token (a reload that changed nothing about the endpoint
    /// must not cost a fetch).
    public func adoptCache(from other: TokenCredentials) {
        let cache = other.state.withLock { $0.cache }
        state.withLock { $0.cache = cache }
    }

    private func fetch() async -> Result<Secret?, ConnectionFailure> {
        let started = clock()
        let request = TokenRequest.make(config, credential: credential, extraTrustPEM: extraTrustPEM)
        let result = await client.perform(request)
        let outcome = TokenEndpoint.outcome(result, field: config.field, expiresField: config.expiresField)
        let serverDate = (try? result.get())?.header("Date").flatMap(HTTPDate.parse)
        let answer: Result<Secret?, ConnectionFailure>
        let reuse: Duration?
        (answer, reuse) = state.withLock { s in
            s.inFlight = nil
            switch outcome {
            case .success(let issued):
                return (.success(issued.value), s.cache.store(issued, fetchStarted: started, serverDate: serverDate))
            case .failure(var failure):
                failure.detail = TokenRequest.redact(failure.detail, config: config, credential: credential)
                return (.failure(failure), nil)
            }
        }
        if case .success = answer {
            // Made here, not in init: the configuration (and so this object) is loaded before
            // logging is set up. Failures are logged by the session, which sees them all.
            let logger = Logger(label: "token")
            logger.debug("upstream token fetched; \(reuse.map { "reused for \(DurationText.format($0))" } ?? "used once")")
        }
        return answer
    }
}
