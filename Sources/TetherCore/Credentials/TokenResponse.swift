/// Takes the token and its expiry out of a token endpoint's JSON answer. OpenAI's
/// `POST /v1/realtime/client_secrets` answers `{"value":"ek_...","expires_at":1712345678,"session":{...}}`,
/// other endpoints nest it (`client_secret.value`), so fields are dotted paths.
public enum TokenResponse {
    public enum Problem: Error, Sendable, Equatable {
        case notJSON
        /// The path named by `field` is absent or null.
        case missingField(String)
        /// The field is there but is not a string we can put in an `Authorization` header.
        case unusableField(String)
    }

    /// Longest token accepted: header lines longer than this are refused by most servers anyway.
    public static let maxTokenBytes = 8192

    /// Below this an expiry is read as a duration (`expires_in: 3600`), above it as an epoch
    /// time: 10^9 s is September 2001, and no token lives 31 years.
    static let epochThreshold = 1e9

    public static func parse(body: [UInt8], field: String, expiresField: String) -> Result<IssuedToken, Problem> {
        guard let json = try? JSONParser.parse(bytes: body) else { return .failure(.notJSON) }
        guard let raw = lookup(json, path: field), !raw.isNull else { return .failure(.missingField(field)) }
        guard let text = raw.stringValue, isUsableToken(text) else { return .failure(.unusableField(field)) }
        return .success(IssuedToken(value: Secret(text), expiry: lookup(json, path: expiresField).flatMap(expiry)))
    }

    /// Follows a dotted path: `value`, `client_secret.value`, `data.0.token` (numbers index arrays).
    public static func lookup(_ value: JSONValue, path: String) -> JSONValue? {
        var current = value
        for segment in path.split(separator: ".", omittingEmptySubsequences: false) {
            let key = String(segment)
            if let object = current.objectValue {
                guard let next = object[key] else { return nil }
                current = next
            } else if let array = current.arrayValue, let index = Int(key), array.indices.contains(index) {
                current = array[index]
            } else {
                return nil
            }
        }
        return current
    }

    /// The token goes into a header line: visible ASCII only, so a hostile or broken endpoint
    /// can never inject a CR/LF (another header) or bytes a server would choke on.
    static func isUsableToken(_ text: String) -> Bool {
        let bytes = text.utf8
        return !bytes.isEmpty && bytes.count <= maxTokenBytes && bytes.allSatisfy { (0x21...0x7E).contains($0) }
    }

    /// A number or a numeric string; absent, zero, negative or anything else means "no expiry
    /// given" (single use), which is always safe.
    static func expiry(_ value: JSONValue) -> IssuedToken.Expiry? {
        let seconds: Double?
        if let n = value.doubleValue {
            seconds = n
        } else if let s = value.stringValue {
            seconds = Double(s)
        } else {
            seconds = nil
        }
        guard let seconds, seconds.isFinite, seconds > 0 else { return nil }
        return seconds >= epochThreshold ? .at(epochSeconds: seconds) : .after(seconds: seconds)
    }
}
