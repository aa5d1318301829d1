import Foundation
import Glibc
import Synchronization

/// A tiny plain-HTTP/1.0 server on 127.0.0.1 for testing the libcurl client against real
/// sockets: every connection is served on its own thread by `reply`, which the test controls.
final class LocalHTTPServer: Sendable {
    struct Request: Sendable {
        var method: String
        var path: String
        var headers: [(String, String)]
        var body: [UInt8]

        func header(_ name: String) -> String? {
            headers.first { $0.0.lowercased() == name.lowercased() }?.1
        }
    }

    enum Reply: Sendable {
        /// Status, headers and body; `length: false` leaves Content-Length out (the body ends at close).
        case respond(status: Int, headers: [(String, String)] = [], body: [UInt8], length: Bool = true)
        /// Read the request, never answer, keep the connection open until the server stops.
        case silent
        /// Answer after a pause (to hold a fetch in flight).
        case delayed(Duration, status: Int, body: [UInt8])
    }

    let port: Int
    private let listener: Int32
    private let reply: @Sendable (Request) -> Reply
    private let state = Mutex<(requests: [Request], open: [Int32], stopped: Bool)>(([], [], false))

    init(reply: @escaping @Sendable (Request) -> Reply) throws {
        self.reply = reply
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                bind(fd, sa, length) == 0 && listen(fd, 16) == 0 && getsockname(fd, sa, &length) == 0
            }
        }
        guard fd >= 0, bound else { throw POSIXError(.EADDRNOTAVAIL) }
        listener = fd
        port = Int(UInt16(bigEndian: address.sin_port))
        let server = self
        Thread.detachNewThread { server.acceptLoop() }
    }

    var requests: [Request] { state.withLock { $0.requests } }

    var url: String { "http://127.0.0.1:\(port)" }

    /// Ends everything: the listener and every connection still held (a silent one).
    func stop() {
        state.withLock { s in
            s.stopped = true
            // Under the lock: `finish` closes descriptors under it too, so none is reused here.
            for fd in s.open { shutdown(fd, Int32(SHUT_RDWR)) }
        }
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }

    private func acceptLoop() {
        while true {
            let fd = accept(listener, nil, nil)
            guard fd >= 0 else { return }
            let keep = state.withLock { s -> Bool in
                if !s.stopped { s.open.append(fd) }
                return !s.stopped
            }
            guard keep else {
                close(fd)
                return
            }
            Thread.detachNewThread { self.serve(fd) }
        }
    }

    private func serve(_ fd: Int32) {
        guard let request = readRequest(fd) else { return finish(fd) }
        state.withLock { $0.requests.append(request) }
        switch reply(request) {
        case .silent:
            // Hold the connection until `stop()` shuts it down.
            var byte: UInt8 = 0
            while recv(fd, &byte, 1, 0) > 0 {}
        case .respond(let status, let headers, let body, let length):
            write(fd, status: status, headers: headers, body: body, length: length)
        case .delayed(let pause, let status, let body):
            Thread.sleep(forTimeInterval: Double(pause.components.seconds) + Double(pause.components.attoseconds) / 1e18)
            write(fd, status: status, headers: [], body: body, length: true)
        }
        finish(fd)
    }

    private func finish(_ fd: Int32) {
        state.withLock { s in
            s.open.removeAll { $0 == fd }
            shutdown(fd, Int32(SHUT_RDWR))
            close(fd)
        }
    }

    private func write(_ fd: Int32, status: Int, headers: [(String, String)], body: [UInt8], length: Bool) {
        var head = "HTTP/1.0 \(status) X\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        if length { head += "Content-Length: \(body.count)\r\n" }
        head += "\r\n"
        var bytes = Array(head.utf8) + body
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeMutableBytes { send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            offset += n
        }
    }

    private func readRequest(_ fd: Int32) -> Request? {
        var data: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        func more() -> Bool {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { return false }
            data.append(contentsOf: chunk[..<n])
            return true
        }
        let separator: [UInt8] = Array("\r\n\r\n".utf8)
        var headEnd: Int?
        while headEnd == nil {
            guard more() else { return nil }
            headEnd = data.indices.dropLast(3).first { Array(data[$0..<$0 + 4]) == separator }
        }
        let head = String(decoding: data[..<headEnd!], as: UTF8.self).components(separatedBy: "\r\n")
        let requestLine = head[0].split(separator: " ")
        var headers: [(String, String)] = []
        for line in head.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers.append((String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
        }
        let length = Int(headers.first { $0.0.lowercased() == "content-length" }?.1 ?? "0") ?? 0
        var body = Array(data[(headEnd! + 4)...])
        while body.count < length {
            let before = data.count
            guard more() else { break }
            body.append(contentsOf: data[before...])
        }
        return Request(method: String(requestLine.first ?? ""), path: String(requestLine.dropFirst().first ?? ""),
                       headers: headers, body: body)
    }
}
