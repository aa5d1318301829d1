import CCurl

/// libcurl's process-wide initialisation, done exactly once: loading the library (it is opened
/// on first use, not linked; see `tether_curl.h`) and `curl_global_init`, which is not safe to
/// race with itself or with the first `curl_easy_init` on every libcurl build. A Swift
/// `static let` is initialised once, thread-safely, on first use: the whole reason for this type.
/// There is deliberately no `curl_global_cleanup`: tetherd uses libcurl until it exits.
enum CurlGlobal {
    /// nil when libcurl initialised, else why it did not.
    static let failure: String? = {
        guard tether_curl_global_init_default() != CURLE_OK else { return nil }
        return tether_curl_load_error().map { String(cString: $0) } ?? "libcurl failed to initialise"
    }()

    /// The trust bundle libcurl was built to use when nothing overrides it
    /// (`/etc/ssl/certs/ca-certificates.crt` on Debian), as libcurl itself reports it.
    static let defaultCABundle: String? = {
        guard failure == nil, let handle = tether_curl_easy_init() else { return nil }
        defer { tether_curl_easy_cleanup(handle) }
        var path: UnsafeMutablePointer<CChar>?
        guard tether_curl_getinfo_string(handle, CURLINFO_CAINFO, &path) == CURLE_OK, let path else { return nil }
        return String(cString: path)
    }()
}
