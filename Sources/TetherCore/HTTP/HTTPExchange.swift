/// One HTTP request/response exchange as the libcurl client performs it. Plain values, so the
/// decisions about what an answer means (see `TokenEndpoint`) are made and tested without I/O.
public struct HTTPRequest: Sendable {
    public enum Method: String, Sendable, Equatable { case get = "GET", post = "POST" }

    public var url: String
    public var method: Method
    /// Sent as given. Values may be credentials: nothing here is ever logged.
    public var headers: [HTTPHeader]
    /// The request body (POST); nil sends none.
    public var body: [UInt8]?
    /// PEM trust roots to accept in addition to the system store (`upstream.ca_file`).
    public var extraTrustPEM: [UInt8]?
    /// TCP + TLS must be done within this.
    public var connectTimeout: Duration
    /// The whole exchange must be done within this, so a silent server never hangs us.
    public var timeout: Duration
    /// A response body larger than this aborts the transfer.
    public var maxResponseBytes: Int

    public static let defaultMaxResponseBytes = 64 * 1024

    public init(url: String, method: Method = .get, headers: [HTTPHeader] = [], body: [UInt8]? = nil,
                extraTrustPEM: [UInt8]? = nil, connectTimeout: Duration = .seconds(5), timeout: Duration = .seconds(10),
                maxResponseBytes: Int = HTTPRequest.defaultMaxResponseBytes) {
        self.url = url
        self.method = method
        self.headers = headers
        self.body = body
        self.extraTrustPEM = extraTrustPEM
        self.connectTimeout = connectTimeout
        self.timeout = timeout
        self.maxResponseBytes = maxResponseBytes
    }
}

public struct HTTPResponse: Sendable, Equatable {
    public var status: Int
    /// The final response's headers, in order.
    public var headers: [HTTPHeader]
    public var body: [UInt8]

    public init(status: Int, headers: [HTTPHeader] = [], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// The first header of that name (names compare case-insensitively).
    public func header(_ name: String) -> String? {
        let wanted = name.lowercased()
        return headers.first { $0.name.lowercased() == wanted }?.value
    }
}

/// Why an exchange produced no response. `message` is fit for `status` and the journal: it
/// comes from libcurl's error text and never holds a header value or a body.
public struct HTTPTransferError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// The connect or total timeout passed.
        case timedOut
        /// The response body passed `maxResponseBytes`.
        case responseTooLarge
        /// TLS failed: an untrusted or mismatched certificate, a handshake error.
        case tls
        /// The caller gave up (task cancelled).
        case cancelled
        /// Anything else: refused, unreachable, resolve failure, a bad URL.
        case other
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }

    /// "64 KiB", "1 MiB", "1500 bytes": how limits are named in messages.
    public static func sizeText(_ bytes: Int) -> String {
        if bytes >= 1 << 20, bytes % (1 << 20) == 0 { return "\(bytes >> 20) MiB" }
        if bytes >= 1 << 10, bytes % (1 << 10) == 0 { return "\(bytes >> 10) KiB" }
        return "\(bytes) bytes"
    }
}
