/// The client side of the RFC 6455 opening handshake, as pure functions: the request we send
/// and the judgement of the response head. The transport does the I/O; this decides.
public enum WebSocketHandshake {
    static let guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
    /// A response head larger than this is not a WebSocket upgrade we will wait for.
    public static let maxResponseHeadBytes = 16 * 1024

    /// The request head. `nonce` is 16 random bytes (the caller owns randomness). Header
    /// values carrying secrets are passed in already; nothing here logs them.
    public static func request(url: UpstreamURL, nonce: [UInt8], headers: [HTTPHeader]) -> (text: String, key: String) {
        let key = Base64.encode(nonce)
        let hostHeader: String
        let defaultPort = url.secure ? 443 : 80
        let hostName = url.host.contains(":") ? "[\(url.host)]" : url.host
        hostHeader = url.port == defaultPort ? hostName : "\(hostName):\(url.port)"
        var text = "GET \(url.target) HTTP/1.1\r\n"
        text += "Host: \(hostHeader)\r\n"
        text += "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        text += "Sec-WebSocket-Key: \(key)\r\nSec-WebSocket-Version: 13\r\n"
        text += "User-Agent: tetherd/\(TetherVersion.current)\r\n"
        for header in headers { text += "\(header.name): \(header.value)\r\n" }
        text += "\r\n"
        return (text, key)
    }

    public static func expectedAccept(forKey key: String) -> String {
        Base64.encode(SHA1.hash(Array((key + guid).utf8)))
    }

    public enum Outcome: Equatable, Sendable {
        /// More bytes are needed before the head is complete.
        case incomplete
        /// Upgraded; the head was `headLength` bytes, anything after it is WebSocket data.
        case upgraded(headLength: Int)
        /// The server answered with something other than a valid 101.
        case refused(status: Int, reason: String)
        /// Not HTTP, or a 101 that fails the key check.
        case invalid(String)
    }

    public static func evaluate(response bytes: [UInt8], key: String) -> Outcome {
        guard let end = headEnd(bytes) else {
            return bytes.count > maxResponseHeadBytes ? .invalid("response head larger than 16 KiB") : .incomplete
        }
        guard let head = String(validating: bytes[..<end], as: UTF8.self) else { return .invalid("response head is not text") }
        var lines = head.split(separator: "\r\n", omittingEmptySubsequences: false)
        guard !lines.isEmpty else { return .invalid("empty response") }
        let statusLine = lines.removeFirst()
        let parts = statusLine.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: true)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]) else {
            return .invalid("not an HTTP response")
        }
        let reason = parts.count > 2 ? String(parts[2]) : ""
        guard status == 101 else { return .refused(status: status, reason: reason) }
        var fields: [String: String] = [:]
        for line in lines where !line.isEmpty {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = line[..<colon].lowercased()
            let value = line[line.index(after: colon)...].trimmingSpaces
            fields[name] = value
        }
        guard fields["upgrade"]?.lowercased() == "websocket" else { return .invalid("101 without Upgrade: websocket") }
        guard fields["connection"]?.lowercased().split(separator: ",").contains(where: { $0.trimmingSpaces == "upgrade" }) == true else {
            return .invalid("101 without Connection: Upgrade")
        }
        guard fields["sec-websocket-accept"] == expectedAccept(forKey: key) else {
            return .invalid("Sec-WebSocket-Accept does not match the key")
        }
        return .upgraded(headLength: end + 4)
    }

    /// Index of the "\r\n\r\n" that ends the head, if present.
    static func headEnd(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else { return nil }
        for i in 0...(bytes.count - 4) where bytes[i] == 13 && bytes[i + 1] == 10 && bytes[i + 2] == 13 && bytes[i + 3] == 10 {
            return i
        }
        return nil
    }
}

extension Substring {
    var trimmingSpaces: String { String(self).trimmingSpaces }
}

public enum TetherVersion {
    public static let current = "0.1.0"
}
