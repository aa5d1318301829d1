import Testing
@testable import TetherCore

/// The pure half of fleet tokens: what an endpoint's answer means, how long a token is kept,
/// what the request carries. No sockets, no clocks: time is handed in.
@Suite struct TokenResponseTests {
    private func parse(_ json: String, field: String = "value", expires: String = "expires_at") -> Result<IssuedToken, TokenResponse.Problem> {
        TokenResponse.parse(body: Array(json.utf8), field: field, expiresField: expires)
    }

    @Test func readsOpenAIClientSecretsAnswer() throws {
        let token = try parse(#"{"value":"ek_abc123","expires_at":1712345678,"session":{"type":"realtime"}}"#).get()
        #expect(token.value.exposedValue == "ek_abc123")
        #expect(token.expiry == .at(epochSeconds: 1_712_345_678))
    }

    @Test func followsDottedPathsIntoObjectsAndArrays() throws {
        let nested = try parse(#"{"client_secret":{"value":"ek_n","expires_at":"1712345678"}}"#,
                               field: "client_secret.value", expires: "client_secret.expires_at").get()
        #expect(nested.value.exposedValue == "ek_n")
        #expect(nested.expiry == .at(epochSeconds: 1_712_345_678))
        let indexed = try parse(#"{"data":[{"token":"t0"},{"token":"t1"}]}"#, field: "data.1.token").get()
        #expect(indexed.value.exposedValue == "t1")
        #expect(indexed.expiry == nil)
    }

    @Test func smallExpiriesAreDurations() throws {
        #expect(try parse(#"{"value":"t","expires_in":3600}"#, expires: "expires_in").get().expiry == .after(seconds: 3600))
    }

    @Test(arguments: [#"{"value":"t"}"#, #"{"value":"t","expires_at":null}"#, #"{"value":"t","expires_at":-5}"#,
                      #"{"value":"t","expires_at":{"x":1}}"#, #"{"value":"t","expires_at":"soon"}"#])
    func absentOrOddExpiryMeansSingleUse(json: String) throws {
        #expect(try parse(json).get().expiry == nil)
    }

    @Test func missingFieldsAndNonJSONAreProblems() {
        #expect(parse(#"{"token":"t"}"#) == .failure(.missingField("value")))
        #expect(parse(#"{"value":null}"#) == .failure(.missingField("value")))
        #expect(parse(#"{"a":{"b":1}}"#, field: "a.b.c") == .failure(.missingField("a.b.c")))
        #expect(parse(#"["value"]"#) == .failure(.missingField("value")))
        #expect(parse("<html>bad gateway</html>") == .failure(.notJSON))
        #expect(parse("") == .failure(.notJSON))
    }

    /// The token becomes a header line: CR/LF (header injection), other controls, non-ASCII,
    /// empty and absurdly long values are refused.
    @Test(arguments: [#"{"value":"ek\r\nX-Evil: 1"}"#, #"{"value":"ek\u0000"}"#, #"{"value":"ék"}"#, #"{"value":""}"#,
                      #"{"value":"a b"}"#, #"{"value":42}"#, #"{"value":["x"]}"#])
    func unusableTokensAreRefused(json: String) {
        #expect(parse(json) == .failure(.unusableField("value")))
    }

    @Test func overlongTokensAreRefused() {
        let long = String(repeating: "a", count: TokenResponse.maxTokenBytes + 1)
        #expect(parse(#"{"value":"\#(long)"}"#) == .failure(.unusableField("value")))
    }
}

@Suite struct TokenEndpointTests {
    private func answer(_ status: Int, _ body: String) -> Result<HTTPResponse, HTTPTransferError> {
        .success(HTTPResponse(status: status, body: Array(body.utf8)))
    }

    private func outcome(_ result: Result<HTTPResponse, HTTPTransferError>) -> Result<IssuedToken, ConnectionFailure> {
        TokenEndpoint.outcome(result, field: "value", expiresField: "expires_at")
    }

    @Test func successGivesTheToken() throws {
        #expect(try outcome(answer(200, #"{"value":"ek_1","expires_at":2000000000}"#)).get().value.exposedValue == "ek_1")
        #expect(try outcome(answer(201, #"{"value":"ek_2"}"#)).get().expiry == nil)
    }

    @Test(arguments: [
        (401, ConnectionFailure(.refused, "token endpoint: HTTP 401 (check the device credential)")),
        (403, ConnectionFailure(.refused, "token endpoint: HTTP 403 (check the device credential)")),
        (429, ConnectionFailure(.refused, "token endpoint: HTTP 429 (rate limited)")),
        (500, ConnectionFailure(.transport, "token endpoint: HTTP 500")),
        (404, ConnectionFailure(.transport, "token endpoint: HTTP 404")),
        (302, ConnectionFailure(.transport, "token endpoint: HTTP 302")),
    ])
    func httpErrorsAreClassified(status: Int, expected: ConnectionFailure) {
        // The body may echo what we sent: it never reaches the message.
        #expect(outcome(answer(status, #"{"error":"bad credential devcred-123"}"#)) == .failure(expected))
    }

    @Test func transferErrorsKeepTheirWords() {
        #expect(outcome(.failure(HTTPTransferError(.timedOut, "timed out"))) == .failure(ConnectionFailure(.transport, "token endpoint: timed out")))
        #expect(outcome(.failure(HTTPTransferError(.responseTooLarge, "response larger than 64 KiB")))
            == .failure(ConnectionFailure(.transport, "token endpoint: response larger than 64 KiB")))
        let tls = "SSL certificate problem: unable to get local issuer certificate"
        #expect(outcome(.failure(HTTPTransferError(.tls, tls))) == .failure(ConnectionFailure(.transport, "token endpoint: " + tls)))
    }

    @Test func badAnswersSayWhatIsWrong() {
        #expect(outcome(answer(200, #"{"token":"x"}"#)) == .failure(ConnectionFailure(.transport, #"token endpoint: no "value" in the response"#)))
        #expect(outcome(answer(200, "ok")) == .failure(ConnectionFailure(.transport, "token endpoint: response is not JSON")))
        #expect(outcome(answer(200, #"{"value":"a\nb"}"#))
            == .failure(ConnectionFailure(.transport, #"token endpoint: "value" in the response is not a usable token"#)))
    }

    @Test func sizeTextNamesLimits() {
        #expect(HTTPTransferError.sizeText(65536) == "64 KiB")
        #expect(HTTPTransferError.sizeText(1 << 20) == "1 MiB")
        #expect(HTTPTransferError.sizeText(1500) == "1500 bytes")
    }
}

@Suite struct TokenCacheTests {
    /// 2024-04-05T19:34:38Z, and a monotonic clock that started at boot.
    let wall = 1_712_345_678.0
    let boot = MonoTime(nanoseconds: 5_000_000_000)

    private func reading(wallOffset: Double = 0, mono: Duration = .zero) -> TokenCache.Reading {
        TokenCache.Reading(wallSeconds: wall + wallOffset, mono: boot + mono)
    }

    @Test func keepsATokenUntilRefreshBeforeItsExpiry() {
        var cache = TokenCache(refreshBefore: .seconds(60))
        let reuse = cache.store(IssuedToken(value: Secret("ek"), expiry: .at(epochSeconds: wall + 600)), fetchStarted: reading(), serverDate: nil)
        #expect(reuse == .seconds(540))
        #expect(cache.token(now: boot)?.exposedValue == "ek")
        #expect(cache.token(now: boot + .seconds(539))?.exposedValue == "ek")
        #expect(cache.token(now: boot + .seconds(540)) == nil)
        #expect(cache.token(now: boot + .seconds(6000)) == nil)
    }

    /// A robot without an RTC: the local wall clock is two days behind at fetch time. The
    /// server's Date header measures the lifetime instead, so it is neither stretched nor shrunk.
    @Test func measuresLifetimeInServerTimeWhenTheLocalClockIsWrong() {
        var cache = TokenCache(refreshBefore: .seconds(60))
        let serverNow = wall
        let skewed = reading(wallOffset: -2 * 86400)
        let reuse = cache.store(IssuedToken(value: Secret("ek"), expiry: .at(epochSeconds: serverNow + 600)), fetchStarted: skewed,
                                serverDate: serverNow)
        #expect(reuse == .seconds(540))
        #expect(cache.token(now: boot + .seconds(541)) == nil)
        // And ahead by a day: without the Date header the token would look expired already.
        var ahead = TokenCache(refreshBefore: .seconds(60))
        #expect(ahead.store(IssuedToken(value: Secret("ek"), expiry: .at(epochSeconds: serverNow + 600)), fetchStarted: reading(wallOffset: 86400),
                            serverDate: serverNow) == .seconds(540))
    }

    /// Expiry is checked on the monotonic clock: an NTP step after the fetch changes nothing.
    @Test func wallClockStepsAfterTheFetchDoNotMatter() {
        var cache = TokenCache(refreshBefore: .seconds(10))
        cache.store(IssuedToken(value: Secret("ek"), expiry: .after(seconds: 100)), fetchStarted: reading(), serverDate: nil)
        #expect(cache.token(now: boot + .seconds(89))?.exposedValue == "ek")
        #expect(cache.token(now: boot + .seconds(90)) == nil)
    }

    @Test func singleUseWhenThereIsNoExpiryOrItIsTooClose() {
        var cache = TokenCache(refreshBefore: .seconds(60))
        #expect(cache.store(IssuedToken(value: Secret("a"), expiry: nil), fetchStarted: reading(), serverDate: nil) == nil)
        #expect(cache.token(now: boot) == nil)
        #expect(cache.store(IssuedToken(value: Secret("b"), expiry: .at(epochSeconds: wall + 60)), fetchStarted: reading(), serverDate: nil) == nil)
        #expect(cache.token(now: boot) == nil)
        #expect(cache.store(IssuedToken(value: Secret("c"), expiry: .at(epochSeconds: wall - 5)), fetchStarted: reading(), serverDate: nil) == nil)
        #expect(cache.token(now: boot) == nil)
    }

    @Test func aNewFetchReplacesAndInvalidateForgets() {
        var cache = TokenCache(refreshBefore: .zero)
        cache.store(IssuedToken(value: Secret("old"), expiry: .after(seconds: 100)), fetchStarted: reading(), serverDate: nil)
        cache.store(IssuedToken(value: Secret("single"), expiry: nil), fetchStarted: reading(), serverDate: nil)
        #expect(cache.token(now: boot) == nil, "a single-use answer must not leave the older token behind")
        cache.store(IssuedToken(value: Secret("new"), expiry: .after(seconds: 100)), fetchStarted: reading(), serverDate: nil)
        #expect(cache.token(now: boot)?.exposedValue == "new")
        cache.invalidate()
        #expect(cache.token(now: boot) == nil)
    }

    @Test func absurdExpiriesAreCapped() {
        var cache = TokenCache(refreshBefore: .zero)
        // A millisecond timestamp in the expiry field reads as year 56000.
        let reuse = cache.store(IssuedToken(value: Secret("ek"), expiry: .at(epochSeconds: wall * 1000)), fetchStarted: reading(), serverDate: nil)
        #expect(reuse == TokenCache.maxLifetime)
    }
}

@Suite struct TokenRequestTests {
    private func config(_ edit: (inout TokenConfig) -> Void = { _ in }) -> TokenConfig {
        var c = TokenConfig(url: "https://fleet.example/token")
        edit(&c)
        return c
    }

    @Test func sendsTheCredentialAsBearerWithAJSONBody() {
        let request = TokenRequest.make(config { $0.body = #"{"session":{"type":"realtime"}}"#; $0.headers = [HTTPHeader(name: "X-Robot", value: "r2")] },
                                        credential: Secret("devcred"), extraTrustPEM: nil)
        #expect(request.method == .post)
        #expect(request.url == "https://fleet.example/token")
        #expect(request.headers.map(\.name) == ["Authorization", "Accept", "Content-Type", "X-Robot"])
        #expect(request.headers[0].value == "Bearer devcred")
        #expect(request.headers[2].value == "application/json")
        #expect(request.body == Array(#"{"session":{"type":"realtime"}}"#.utf8))
        #expect(request.connectTimeout == .seconds(5) && request.timeout == .seconds(10))
        #expect(request.maxResponseBytes == 64 * 1024)
    }

    @Test func anExplicitAuthorizationHeaderWins() {
        let request = TokenRequest.make(config { $0.headers = [HTTPHeader(name: "authorization", value: "Basic Zm9v")] },
                                        credential: Secret("devcred"), extraTrustPEM: nil)
        #expect(request.headers.filter { $0.name.lowercased() == "authorization" }.map(\.value) == ["Basic Zm9v"])
    }

    @Test func getSendsNoBodyAndFormBodiesAreNotLabelledJSON() {
        let get = TokenRequest.make(config { $0.method = .get; $0.connectTimeout = .milliseconds(300) }, credential: nil, extraTrustPEM: [1])
        #expect(get.method == .get && get.body == nil && get.extraTrustPEM == [1])
        #expect(!get.headers.contains { $0.name == "Authorization" })
        #expect(get.connectTimeout == .milliseconds(300))
        let form = TokenRequest.make(config { $0.body = "grant_type=client_credentials" }, credential: nil, extraTrustPEM: nil)
        #expect(!form.headers.contains { $0.name == "Content-Type" })
        let empty = TokenRequest.make(config(), credential: nil, extraTrustPEM: nil)
        #expect(empty.body == [])
    }

    @Test func redactsCredentialsFromMessages() {
        let c = config { $0.headers = [HTTPHeader(name: "Authorization", value: "Basic c2VjcmV0")] }
        let text = TokenRequest.redact("failed for devcred-99 with Basic c2VjcmV0 at host", config: c, credential: Secret("devcred-99"))
        #expect(text == "failed for <redacted> with <redacted> at host")
    }
}

@Suite struct HTTPDateTests {
    @Test func parsesIMFFixdate() {
        #expect(HTTPDate.parse("Sun, 06 Nov 1994 08:49:37 GMT") == 784_111_777)
        #expect(HTTPDate.parse("Thu, 01 Jan 1970 00:00:00 GMT") == 0)
        #expect(HTTPDate.parse("Thu, 29 Feb 2024 23:59:59 GMT") == 1_709_251_199)
    }

    @Test(arguments: ["", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994", "Sun, 06 Nov 1994 08:49:37 UTC",
                      "Sun, 31 Feb 1994 08:49:37 GMT", "Sun, 06 Nov 1994 24:00:00 GMT", "Sun, 6 Nov 1994 08:49:37 GMT",
                      "Xyz, 06 Nov 1994 08:49:37 GMT", "Sun, 06 Nov 1994 08:49 GMT", "Sun, 06 Foo 1994 08:49:37 GMT"])
    func rejectsEverythingElse(text: String) {
        #expect(HTTPDate.parse(text) == nil)
    }
}
