import Glibc

/// The CA certificates a request with an extra trust root is verified against.
///
/// libcurl's `CURLOPT_CAINFO` and `CURLOPT_CAINFO_BLOB` replace the default bundle instead of
/// adding to it, and whether the two combine differs between TLS backends. So an extra root
/// (`upstream.ca_file`, for a self-hosted token endpoint) is passed as one in-memory PEM
/// holding the system bundle followed by the extra certificates: the endpoint may use either
/// a public certificate or the private CA, exactly as the WebSocket side accepts both.
enum TrustBundle {
    /// The system bundle is ~200 KiB on Debian; anything past this is not a CA bundle.
    static let maxBundleBytes = 8 << 20

    static func combined(systemBundle path: String?, extra: [UInt8]) -> [UInt8] {
        var pem = path.flatMap { readFile($0, limit: maxBundleBytes) } ?? []
        if let last = pem.last, last != UInt8(ascii: "\n") { pem.append(UInt8(ascii: "\n")) }
        pem.append(contentsOf: extra)
        return pem
    }

    /// The whole file, or nil when it cannot be read or is larger than `limit`.
    static func readFile(_ path: String, limit: Int) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                return nil
            }
            if n == 0 { return bytes }
            bytes.append(contentsOf: chunk[..<n])
            if bytes.count > limit { return nil }
        }
    }
}
