import Testing
@testable import TetherCore

/// `upstream.token` in tether.yaml.
@Suite struct TokenConfigTests {
    @Test func everyKeyIsRead() throws {
        let config = try ConfigLoader.load(yaml: """
            upstream:
              token:
                url: https://fleet.example/v1/realtime/client_secrets
                method: post
                credential_file: /etc/tether/device-credential
                headers: { X-Robot: r2 }
                body: { session: { type: realtime, model: gpt-realtime } }
                field: client_secret.value
                expires_field: client_secret.expires_at
                refresh_before: 30s
                connect_timeout: 2s
                timeout: 4s
            """)
        let token = try #require(config.upstream.token)
        #expect(token.url == "https://fleet.example/v1/realtime/client_secrets")
        #expect(token.method == .post)
        #expect(token.credentialFile == "/etc/tether/device-credential")
        #expect(token.headers == [HTTPHeader(name: "X-Robot", value: "r2")])
        #expect(token.body == #"{"session":{"type":"realtime","model":"gpt-realtime"}}"#)
        #expect(token.field == "client_secret.value" && token.expiresField == "client_secret.expires_at")
        #expect(token.refreshBefore == .seconds(30) && token.connectTimeout == .seconds(2) && token.timeout == .seconds(4))
    }

    @Test func defaultsFollowOpenAIsClientSecrets() throws {
        let token = try #require(try ConfigLoader.load(yaml: "upstream: { token: { url: \"https://f.example/t\" } }").upstream.token)
        #expect(token.method == .post && token.field == "value" && token.expiresField == "expires_at")
        #expect(token.refreshBefore == .seconds(60) && token.connectTimeout == .seconds(5) && token.timeout == .seconds(10))
        #expect(token.credentialFile == nil && token.body == nil)
        #expect(try ConfigLoader.load(yaml: "upstream: { token: null }").upstream.token == nil)
    }

    @Test(arguments: [
        ("upstream: { token: { method: GET } }", "upstream.token.url"),
        ("upstream: { token: { url: ftp://x/t } }", "upstream.token.url"),
        ("upstream: { token: { url: \"https://x/t\", method: PUT } }", "upstream.token.method"),
        ("upstream: { token: { url: \"https://x/t\", method: GET, body: \"a=b\" } }", "upstream.token.body"),
        ("upstream: { token: { url: \"https://x/t\", field: \"\" } }", "upstream.token.field"),
        ("upstream: { token: { url: \"https://x/t\", expires_field: \"a..b\" } }", "upstream.token.expires_field"),
        ("upstream: { token: { url: \"https://x/t\", timeout: 0s } }", "upstream.token.timeout"),
        ("upstream: { token: { url: \"https://x/t\", credentials_file: /x } }", "upstream.token.credentials_file"),
    ])
    func mistakesNameTheKey(yaml: String, key: String) {
        #expect(throws: ConfigError.self) { try ConfigLoader.load(yaml: yaml) }
        do {
            _ = try ConfigLoader.load(yaml: yaml)
        } catch {
            #expect(error.key == key, "\(error)")
        }
    }
}
