import Foundation
import Glibc
import Synchronization
import Testing
import TetherCore
@testable import TetherLinux

/// The libcurl wrapper against a real local server (plain HTTP here; TLS, trust roots and
/// proxies are covered by Tests/system/test_token.py against an HTTPS endpoint).
@Suite(.serialized) struct CurlHTTPClientTests {
    let client = CurlHTTPClient()

    private func elapsed(since start: MonoTime) -> Duration { MonoClock.now() - start }

    @Test func getReturnsStatusHeadersAndBody() async throws {
        let server = try LocalHTTPServer { _ in .respond(status: 200, headers: [("X-Answer", "42")], body: Array("hello".utf8)) }
        defer { server.stop() }
        let response = try await client.perform(HTTPRequest(url: server.url + "/a?b=c")).get()
        #expect(response.status == 200)
        #expect(response.body == Array("hello".utf8))
        #expect(response.header("x-answer") == "42")
        let seen = try #require(server.requests.first)
        #expect(seen.method == "GET" && seen.path == "/a?b=c")
        #expect(seen.header("Expect") == nil)
        #expect(seen.header("User-Agent")?.hasPrefix("tetherd/") == true)
    }

    @Test func postSendsHeadersAndTheExactBody() async throws {
        let server = try LocalHTTPServer { _ in .respond(status: 201, body: []) }
        defer { server.stop() }
        let body: [UInt8] = Array(#"{"a":1}"#.utf8) + [0, 255]  // binary-safe: no strlen
        let request = HTTPRequest(url: server.url + "/t", method: .post,
                                  headers: [HTTPHeader(name: "Authorization", value: "Bearer c"), HTTPHeader(name: "Content-Type", value: "application/json")],
                                  body: body)
        let response = try await client.perform(request).get()
        #expect(response.status == 201)
        let seen = try #require(server.requests.first)
        #expect(seen.method == "POST")
        #expect(seen.body == body)
        #expect(seen.header("Authorization") == "Bearer c")
        #expect(seen.header("Content-Type") == "application/json")
    }

    @Test func anEmptyPostSendsAZeroLength() async throws {
        let server = try LocalHTTPServer { _ in .respond(status: 200, body: []) }
        defer { server.stop() }
        _ = try await client.perform(HTTPRequest(url: server.url, method: .post)).get()
        #expect(server.requests.first?.header("Content-Length") == "0")
    }

    @Test func errorStatusesAreResponsesNotErrors() async throws {
        let server = try LocalHTTPServer { _ in .respond(status: 503, body: Array("busy".utf8)) }
        defer { server.stop() }
        #expect(try await client.perform(HTTPRequest(url: server.url)).get().status == 503)
    }

    @Test func redirectsAreNotFollowed() async throws {
        let server = try LocalHTTPServer { _ in .respond(status: 302, headers: [("Location", "http://127.0.0.1:9/elsewhere")], body: []) }
        defer { server.stop() }
        #expect(try await client.perform(HTTPRequest(url: server.url)).get().status == 302)
        #expect(server.requests.count == 1)
    }

    @Test(arguments: [true, false])
    func bodiesPastTheLimitAbortTheTransfer(announced: Bool) async throws {
        let server = try LocalHTTPServer { _ in .respond(status: 200, body: [UInt8](repeating: 65, count: 200_000), length: announced) }
        defer { server.stop() }
        let result = await client.perform(HTTPRequest(url: server.url))
        #expect(result == .failure(HTTPTransferError(.responseTooLarge, "response larger than 64 KiB")))
        // Exactly at the limit is fine.
        let exact = try LocalHTTPServer { _ in .respond(status: 200, body: [UInt8](repeating: 66, count: 65536), length: announced) }
        defer { exact.stop() }
        #expect(try await client.perform(HTTPRequest(url: exact.url)).get().body.count == 65536)
    }

    @Test func aSilentServerTimesOut() async throws {
        let server = try LocalHTTPServer { _ in .silent }
        defer { server.stop() }
        let start = MonoClock.now()
        let result = await client.perform(HTTPRequest(url: server.url, timeout: .milliseconds(400)))
        #expect(result == .failure(HTTPTransferError(.timedOut, "timed out")))
        #expect(elapsed(since: start) < .milliseconds(1500))
        #expect(elapsed(since: start) >= .milliseconds(350))
    }

    @Test func aRefusedConnectionSaysSo() async throws {
        // A port that was just free: bind, read the number, close.
        let server = try LocalHTTPServer { _ in .silent }
        let url = server.url
        server.stop()
        let result = await client.perform(HTTPRequest(url: url, connectTimeout: .milliseconds(500)))
        guard case .failure(let error) = result else {
            Issue.record("expected a failure, got \(result)")
            return
        }
        #expect(error.kind == .other)
        #expect(error.message.contains("onnect"), "\(error.message)")
    }

    @Test(arguments: ["file:///etc/passwd", "gopher://127.0.0.1/", "not a url"])
    func onlyHTTPAndHTTPSAreSpoken(url: String) async {
        guard case .failure(let error) = await client.perform(HTTPRequest(url: url)) else {
            Issue.record("\(url) was fetched")
            return
        }
        #expect(error.kind == .other)
    }

    @Test func cancellingTheCallerAbortsTheTransfer() async throws {
        let server = try LocalHTTPServer { _ in .silent }
        defer { server.stop() }
        let client = self.client
        let url = server.url
        let start = MonoClock.now()
        let task = Task { await client.perform(HTTPRequest(url: url, timeout: .seconds(30))) }
        try await Task.sleep(for: .milliseconds(200))
        task.cancel()
        #expect(await task.value == .failure(HTTPTransferError(.cancelled, "cancelled")))
        #expect(elapsed(since: start) < .seconds(3))
    }

    /// Blocking transfers run on threads of their own: with more hung requests than the
    /// concurrency pool has threads, other tasks still run at once.
    @Test func hungTransfersDoNotStarveTheConcurrencyPool() async throws {
        let server = try LocalHTTPServer { _ in .silent }
        defer { server.stop() }
        let client = self.client
        let url = server.url
        let hung = (0..<6).map { _ in Task { await client.perform(HTTPRequest(url: url, timeout: .milliseconds(1500))) } }
        try await Task.sleep(for: .milliseconds(300))
        #expect(server.requests.count == 6)
        let start = MonoClock.now()
        let answer = await Task.detached { 41 + 1 }.value
        #expect(answer == 42)
        #expect(elapsed(since: start) < .milliseconds(200))
        for task in hung { #expect(await task.value == .failure(HTTPTransferError(.timedOut, "timed out"))) }
    }

    @Test func extraTrustRootsAreAppendedToTheSystemBundle() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tether-trust-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let system = directory.appendingPathComponent("system.pem").path
        try "-----BEGIN CERTIFICATE-----\nSYSTEM\n-----END CERTIFICATE-----".write(toFile: system, atomically: true, encoding: .utf8)
        let extra = Array("-----BEGIN CERTIFICATE-----\nEXTRA\n-----END CERTIFICATE-----\n".utf8)
        let combined = String(decoding: TrustBundle.combined(systemBundle: system, extra: extra), as: UTF8.self)
        #expect(combined == "-----BEGIN CERTIFICATE-----\nSYSTEM\n-----END CERTIFICATE-----\n" + String(decoding: extra, as: UTF8.self))
        // No readable system bundle: the extra roots alone.
        #expect(TrustBundle.combined(systemBundle: directory.appendingPathComponent("absent").path, extra: extra) == extra)
        #expect(CurlGlobal.defaultCABundle?.isEmpty == false)
    }
}
