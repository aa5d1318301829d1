import CCurl
import Synchronization
import TetherCore

/// One blocking HTTP exchange on a fresh libcurl easy handle. Runs on a `DedicatedThread` of its own;
/// `cancel()` may be called from any thread.
///
/// Settings that matter and why:
/// - `CURLOPT_NOSIGNAL`: libcurl must never touch signals in a multi-threaded daemon.
/// - connect and total timeouts: a server that accepts and never answers fails the exchange
///   after `timeout` instead of hanging the connection attempt waiting on it.
/// - proxies: nothing sets `CURLOPT_PROXY`, so libcurl takes `https_proxy`/`HTTPS_PROXY`,
///   `http_proxy`, `all_proxy` and `no_proxy`/`NO_PROXY` from the environment (systemd:
///   `Environment=` in a drop-in). Keep it that way.
/// - no redirects: a token endpoint answers directly; following a 3xx would hand the
///   credential's request to wherever the redirect points. A 3xx is reported as such.
/// - only http and https: the URL comes from configuration, but `file://` or `gopher://` has
///   no business here.
/// - the response body is bounded by a write callback (and `CURLOPT_MAXFILESIZE_LARGE` when the
///   server announces a length): past `maxResponseBytes` the transfer is aborted.
// @unchecked: the body is written only from libcurl's callbacks on the one thread running
// `curl_easy_perform`, a confinement the compiler cannot see through the C callbacks.
final class CurlTransfer: @unchecked Sendable {
    // Touched only by the transfer thread while `curl_easy_perform` runs, except `cancelled`.
    private var body: [UInt8] = []
    private var overflowed = false
    private let limit: Int
    private let cancelled = Atomic<Bool>(false)
    private let request: HTTPRequest

    init(_ request: HTTPRequest) {
        self.request = request
        self.limit = max(0, request.maxResponseBytes)
    }

    func cancel() { cancelled.store(true, ordering: .relaxed) }

    func run() -> Result<HTTPResponse, HTTPTransferError> {
        if let failure = CurlGlobal.failure { return .failure(HTTPTransferError(.other, failure)) }
        if cancelled.load(ordering: .relaxed) { return .failure(HTTPTransferError(.cancelled, "cancelled")) }
        guard let handle = tether_curl_easy_init() else { return .failure(HTTPTransferError(.other, "libcurl could not make a handle")) }
        defer { tether_curl_easy_cleanup(handle) }
        let errorText = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
        errorText.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        defer { errorText.deallocate() }
        var headerList: UnsafeMutablePointer<curl_slist>?
        defer { tether_curl_slist_free_all(headerList) }

        var setupFailed: CURLcode = CURLE_OK
        func check(_ code: CURLcode) { if setupFailed == CURLE_OK && code != CURLE_OK { setupFailed = code } }

        check(tether_curl_setopt_pointer(handle, CURLOPT_ERRORBUFFER, errorText))
        check(tether_curl_setopt_string(handle, CURLOPT_URL, request.url))
        check(tether_curl_setopt_long(handle, CURLOPT_NOSIGNAL, 1))
        check(tether_curl_setopt_string(handle, CURLOPT_PROTOCOLS_STR, "http,https"))
        check(tether_curl_setopt_long(handle, CURLOPT_FOLLOWLOCATION, 0))
        check(tether_curl_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS, Self.milliseconds(request.connectTimeout)))
        check(tether_curl_setopt_long(handle, CURLOPT_TIMEOUT_MS, Self.milliseconds(request.timeout)))
        check(tether_curl_setopt_long(handle, CURLOPT_SSL_VERIFYPEER, 1))
        check(tether_curl_setopt_long(handle, CURLOPT_SSL_VERIFYHOST, 2))
        check(tether_curl_setopt_string(handle, CURLOPT_USERAGENT, "tetherd/\(TetherVersion.current)"))
        check(tether_curl_setopt_offset(handle, CURLOPT_MAXFILESIZE_LARGE, curl_off_t(limit)))

        switch request.method {
        case .get:
            check(tether_curl_setopt_long(handle, CURLOPT_HTTPGET, 1))
        case .post:
            let body = request.body ?? []
            check(tether_curl_setopt_long(handle, CURLOPT_POST, 1))
            // The size first, so COPYPOSTFIELDS copies exactly these bytes (no strlen).
            check(tether_curl_setopt_offset(handle, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.count)))
            body.withUnsafeBufferPointer { buffer in
                let empty: StaticString = ""
                let pointer = buffer.baseAddress.map { UnsafeMutableRawPointer(mutating: $0) }
                    ?? UnsafeMutableRawPointer(mutating: UnsafeRawPointer(empty.utf8Start))
                check(tether_curl_setopt_pointer(handle, CURLOPT_COPYPOSTFIELDS, pointer))
            }
        }

        // `Expect:` with no value stops libcurl from adding `Expect: 100-continue` (an extra
        // round trip some servers never answer).
        for line in request.headers.map({ "\($0.name): \($0.value)" }) + ["Expect:"] {
            guard let appended = tether_curl_slist_append(headerList, line) else {
                return .failure(HTTPTransferError(.other, "out of memory building the request"))
            }
            headerList = appended
        }
        check(tether_curl_setopt_slist(handle, CURLOPT_HTTPHEADER, headerList))

        if let extra = request.extraTrustPEM {
            var pem = TrustBundle.combined(systemBundle: CurlGlobal.defaultCABundle, extra: extra)
            pem.withUnsafeMutableBytes { bytes in
                // CURL_BLOB_COPY: libcurl keeps its own copy, so the buffer may go after this call.
                var blob = curl_blob(data: bytes.baseAddress, len: bytes.count, flags: UInt32(CURL_BLOB_COPY))
                check(tether_curl_setopt_blob(handle, CURLOPT_CAINFO_BLOB, &blob))
            }
        }

        let context = Unmanaged.passUnretained(self).toOpaque()
        check(tether_curl_setopt_write_function(handle, CURLOPT_WRITEFUNCTION, { data, size, count, user in
            let transfer = Unmanaged<CurlTransfer>.fromOpaque(user!).takeUnretainedValue()
            return transfer.received(data, size * count)
        }))
        check(tether_curl_setopt_pointer(handle, CURLOPT_WRITEDATA, context))
        check(tether_curl_setopt_long(handle, CURLOPT_NOPROGRESS, 0))
        check(tether_curl_setopt_xferinfo_function(handle, CURLOPT_XFERINFOFUNCTION, { user, _, _, _, _ in
            // Called at least once a second while the transfer runs: non-zero aborts it.
            let transfer = Unmanaged<CurlTransfer>.fromOpaque(user!).takeUnretainedValue()
            return transfer.cancelled.load(ordering: .relaxed) ? 1 : 0
        }))
        check(tether_curl_setopt_pointer(handle, CURLOPT_XFERINFODATA, context))

        guard setupFailed == CURLE_OK else {
            return .failure(HTTPTransferError(.other, "libcurl refused an option: \(String(cString: tether_curl_easy_strerror(setupFailed)))"))
        }

        let code = withExtendedLifetime(self) { tether_curl_easy_perform(handle) }
        guard code == CURLE_OK else { return .failure(error(code, detail: String(cString: errorText))) }
        var status = 0
        _ = tether_curl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
        return .success(HTTPResponse(status: status, headers: Self.responseHeaders(handle), body: body))
    }

    /// The write callback: keep the bytes, or refuse them all once the limit would be passed
    /// (returning less than offered makes libcurl abort with CURLE_WRITE_ERROR).
    private func received(_ data: UnsafeMutablePointer<CChar>?, _ count: Int) -> Int {
        guard count > 0, let data else { return count }
        guard body.count + count <= limit else {
            overflowed = true
            return 0
        }
        body.append(contentsOf: UnsafeRawBufferPointer(start: data, count: count))
        return count
    }

    private func error(_ code: CURLcode, detail: String) -> HTTPTransferError {
        let text = detail.isEmpty ? String(cString: tether_curl_easy_strerror(code)) : detail
        switch code {
        case CURLE_OPERATION_TIMEDOUT:
            return HTTPTransferError(.timedOut, "timed out")
        case CURLE_WRITE_ERROR where overflowed, CURLE_FILESIZE_EXCEEDED:
            return HTTPTransferError(.responseTooLarge, "response larger than \(HTTPTransferError.sizeText(limit))")
        case CURLE_ABORTED_BY_CALLBACK where cancelled.load(ordering: .relaxed):
            return HTTPTransferError(.cancelled, "cancelled")
        case CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CONNECT_ERROR, CURLE_SSL_CACERT_BADFILE, CURLE_SSL_CERTPROBLEM,
            CURLE_SSL_ISSUER_ERROR, CURLE_SSL_PINNEDPUBKEYNOTMATCH, CURLE_SSL_INVALIDCERTSTATUS:
            return HTTPTransferError(.tls, text)
        default:
            return HTTPTransferError(.other, text)
        }
    }

    /// Headers of the final response (after any 1xx), as libcurl parsed them.
    private static func responseHeaders(_ handle: UnsafeMutableRawPointer) -> [HTTPHeader] {
        var headers: [HTTPHeader] = []
        var previous: UnsafeMutablePointer<curl_header>?
        while let header = tether_curl_easy_nextheader(handle, UInt32(CURLH_HEADER), -1, previous) {
            if let name = header.pointee.name, let value = header.pointee.value {
                headers.append(HTTPHeader(name: String(cString: name), value: String(cString: value)))
            }
            previous = header
        }
        return headers
    }

    private static func milliseconds(_ d: Duration) -> Int {
        max(1, Int(d.components.seconds) * 1000 + Int(d.components.attoseconds / 1_000_000_000_000_000))
    }
}
