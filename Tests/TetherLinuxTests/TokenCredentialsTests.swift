import Synchronization
import Testing
import TetherCore
@testable import TetherLinux

/// `TokenCredentials` over real libcurl and a local endpoint, on an injected clock.
@Suite(.serialized) struct TokenCredentialsTests {
    /// A clock the test moves: wall seconds and the monotonic time advance together.
    final class ManualClock: Sendable {
        let offset = Mutex<Duration>(.zero)
        func advance(_ d: Duration) { offset.withLock { $0 += d } }
        var read: TokenCredentials.Clock {
            { [self] in
                let o = self.offset.withLock { $0 }
                return TokenCache.Reading(wallSeconds: 1_800_000_000 + Double(o.components.seconds), mono: MonoTime(nanoseconds: o.nanoseconds))
            }
        }
    }

    private func credentials(_ server: LocalHTTPServer, clock: ManualClock, refreshBefore: Duration = .seconds(60),
                             edit: (inout TokenConfig) -> Void = { _ in }) -> TokenCredentials {
        var config = TokenConfig(url: server.url + "/token")
        config.refreshBefore = refreshBefore
        config.timeout = .seconds(2)
        edit(&config)
        return TokenCredentials(config: config, credential: Secret("devcred-xyz"), extraTrustPEM: nil, clock: clock.read)
    }

    /// Answers `{"value":"tok-N","expires_at":...}`, N counting requests from 1.
    private static func issuing(lifetime: Double?, delay: Duration = .zero) throws -> LocalHTTPServer {
        let counter = Atomic<Int>(0)
        return try LocalHTTPServer { _ in
            let n = counter.wrappingAdd(1, ordering: .relaxed).newValue
            let expiry = lifetime.map { #","expires_at":\#(1_800_000_000 + $0)"# } ?? ""
            let body = Array(#"{"value":"tok-\#(n)"\#(expiry)}"#.utf8)
            return delay > .zero ? .delayed(delay, status: 200, body: body) : .respond(status: 200, body: body)
        }
    }

    @Test func fetchesOnceAndReusesUntilNearExpiry() async throws {
        let server = try Self.issuing(lifetime: 600)
        defer { server.stop() }
        let clock = ManualClock()
        let creds = credentials(server, clock: clock)
        #expect(creds.immediate == nil)
        #expect(try await creds.authorization().get()?.exposedValue == "tok-1")
        #expect(server.requests.first?.header("Authorization") == "Bearer devcred-xyz")
        #expect(server.requests.first?.method == "POST")
        clock.advance(.seconds(500))
        #expect(try await creds.authorization().get()?.exposedValue == "tok-1")
        #expect(creds.immediate??.exposedValue == "tok-1")
        clock.advance(.seconds(40))  // 540 s: within refresh_before of the 600 s expiry
        #expect(creds.immediate == nil)
        #expect(try await creds.authorization().get()?.exposedValue == "tok-2")
        #expect(server.requests.count == 2 && creds.fetches == 2)
    }

    @Test func singleUseTokensAreFetchedEveryTime() async throws {
        let server = try Self.issuing(lifetime: nil)
        defer { server.stop() }
        let creds = credentials(server, clock: ManualClock())
        #expect(try await creds.authorization().get()?.exposedValue == "tok-1")
        #expect(try await creds.authorization().get()?.exposedValue == "tok-2")
        #expect(creds.immediate == nil)
    }

    @Test func concurrentCallersShareOneFetch() async throws {
        let server = try Self.issuing(lifetime: 600, delay: .milliseconds(300))
        defer { server.stop() }
        let creds = credentials(server, clock: ManualClock())
        let tokens = await withTaskGroup(of: String?.self) { group in
            for _ in 0..<5 { group.addTask { try? await creds.authorization().get()?.exposedValue } }
            return await group.reduce(into: [String?]()) { $0.append($1) }
        }
        #expect(tokens == Array(repeating: "tok-1", count: 5))
        #expect(server.requests.count == 1)
    }

    @Test func aRefusedTokenIsNotOfferedAgain() async throws {
        let server = try Self.issuing(lifetime: 600)
        defer { server.stop() }
        let creds = credentials(server, clock: ManualClock())
        #expect(try await creds.authorization().get()?.exposedValue == "tok-1")
        creds.upstreamRefused()
        #expect(try await creds.authorization().get()?.exposedValue == "tok-2")
    }

    @Test func failuresAreConnectionFailuresWithoutSecrets() async throws {
        let server = try LocalHTTPServer { _ in .respond(status: 401, body: Array("bad devcred-xyz".utf8)) }
        defer { server.stop() }
        let creds = credentials(server, clock: ManualClock())
        #expect(await creds.authorization() == .failure(ConnectionFailure(.refused, "token endpoint: HTTP 401 (check the device credential)")))
        #expect(creds.immediate == nil)
        // A failure caches nothing: the next call asks again.
        _ = await creds.authorization()
        #expect(server.requests.count == 2)
    }

    @Test func aReloadWithTheSameEndpointKeepsTheCache() async throws {
        let server = try Self.issuing(lifetime: 600)
        defer { server.stop() }
        let clock = ManualClock()
        let old = credentials(server, clock: clock)
        _ = await old.authorization()
        let same = credentials(server, clock: clock)
        #expect(same.sameSource(as: old))
        same.adoptCache(from: old)
        #expect(same.immediate??.exposedValue == "tok-1")
        let other = credentials(server, clock: clock) { $0.field = "token" }
        #expect(!other.sameSource(as: old))
    }
}
