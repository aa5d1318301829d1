/// Builds the request for `upstream.token`: the device credential as
/// `Authorization: Bearer <credential>` unless `token.headers` names its own Authorization,
/// the configured headers and body, and the timeouts. Pure, so what goes on the wire is tested
/// without a server.
public enum TokenRequest {
    public static func make(_ config: TokenConfig, credential: Secret?, extraTrustPEM: [UInt8]?) -> HTTPRequest {
        let named = Set(config.headers.map { $0.name.lowercased() })
        var headers: [HTTPHeader] = []
        if let credential, !named.contains("authorization") {
            headers.append(HTTPHeader(name: "Authorization", value: "Bearer \(credential.exposedValue)"))
        }
        if !named.contains("accept") { headers.append(HTTPHeader(name: "Accept", value: "application/json")) }
        var body: [UInt8]?
        if config.method == .post {
            body = Array((config.body ?? "").utf8)
            // A JSON body (what OpenAI's client_secrets wants, and what a YAML mapping becomes)
            // is labelled as such; anything else keeps libcurl's form default unless configured.
            if let text = config.body, !named.contains("content-type"), (try? JSONParser.parse(text)) != nil {
                headers.append(HTTPHeader(name: "Content-Type", value: "application/json"))
            }
        }
        headers.append(contentsOf: config.headers)
        return HTTPRequest(url: config.url, method: config.method == .post ? .post : .get, headers: headers, body: body,
                           extraTrustPEM: extraTrustPEM, connectTimeout: config.connectTimeout, timeout: config.timeout)
    }

    /// Removes the credential (and any configured Authorization value) from a message before
    /// it reaches `status` or the journal. Messages are libcurl's and should never hold them;
    /// this makes sure of it.
    public static func redact(_ message: String, config: TokenConfig, credential: Secret?) -> String {
        var secrets = config.headers.filter { $0.name.lowercased() == "authorization" }.map(\.value)
        if let credential { secrets.append(credential.exposedValue) }
        var text = message
        for secret in secrets where secret.utf8.count >= 4 {
            text = text.replacingAll(secret, with: "<redacted>")
        }
        return text
    }
}
