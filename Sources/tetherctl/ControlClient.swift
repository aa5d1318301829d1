import Glibc
import TetherCore

/// A blocking client for the control socket: connect, send one JSON line, read lines back.
/// tetherctl is short-lived and single-threaded, so plain sockets are the simplest honest tool.
struct ControlClient {
    struct Unreachable: Error, CustomStringConvertible {
        var description: String
    }

    private let fd: Int32
    private var pending: [UInt8] = []
    let path: String

    init(path: String, timeoutSeconds: Int = 10) throws {
        self.path = path
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Unreachable(description: "cannot create a socket: \(String(cString: strerror(errno)))") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            Glibc.close(fd)
            throw Unreachable(description: "socket path too long: \(path)")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard result == 0 else {
            let code = errno
            Glibc.close(fd)
            let hint: String
            switch code {
            case ENOENT, ECONNREFUSED: hint = "is tetherd running? (systemctl status tether)"
            case EACCES, EPERM: hint = "are you root or in the control group (control.group, default \"tether\")?"
            default: hint = "check control.socket in /etc/tether/tether.yaml"
            }
            throw Unreachable(description: "cannot reach tetherd at \(path): \(String(cString: strerror(code))); \(hint)")
        }
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        if timeoutSeconds > 0 {
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        }
        self.fd = fd
    }

    func close() { Glibc.close(fd) }

    func send(_ object: JSONObject) throws {
        var bytes = Array(JSONWriter.string(.object(object)).utf8)
        bytes.append(UInt8(ascii: "\n"))
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if n < 0 {
                if errno == EINTR { continue }
                throw Unreachable(description: "tetherd closed the connection: \(String(cString: strerror(errno)))")
            }
            offset += n
        }
    }

    /// The next line, or nil when the daemon closed the connection.
    mutating func readLine() throws -> [UInt8]? {
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            if let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                let line = Array(pending[..<newline])
                pending.removeFirst(newline + 1)
                return line
            }
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK { throw Unreachable(description: "tetherd did not answer in time") }
                throw Unreachable(description: "reading from tetherd failed: \(String(cString: strerror(errno)))")
            }
            if n == 0 { return pending.isEmpty ? nil : { defer { pending = [] }; return pending }() }
            pending.append(contentsOf: chunk[..<n])
        }
    }

    /// Sends a request and waits for the response with the same id (events are skipped).
    mutating func request(_ object: JSONObject) throws -> JSONValue {
        var request = object
        request["id"] = 1
        do {
            try send(request)
        } catch {
            // A daemon that refuses us (not allowed, too many clients) says why and hangs up,
            // possibly before our request is written: read its one line before giving up.
            if let line = try? readLine(), let value = try? JSONParser.parse(bytes: line) { return value }
            throw error
        }
        while let line = try readLine() {
            guard let value = try? JSONParser.parse(bytes: line) else { continue }
            if value["event"] != nil { continue }
            return value
        }
        throw Unreachable(description: "tetherd closed the connection without answering")
    }
}
