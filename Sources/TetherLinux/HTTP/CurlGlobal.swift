import CCurl

/// libcurl's process-wide initialisation, done exactly once. `curl_global_init` is not safe
/// to race with itself or with the first `curl_easy_init` on every libcurl build, and a Swift
/// `static let` is initialised once, thread-safely, on first use: the whole reason for this type.
/// There is deliberately no `curl_global_cleanup`: tetherd uses libcurl until it exits.
enum CurlGlobal {
    /// nil when libcurl initialised, else why it did not.
    static let failure: String? = {
        let code = tether_curl_global_init_default()
        return code == CURLE_OK ? nil : "libcurl failed to initialise: \(String(cString: curl_easy_strerror(code)))"
    }()

    /// The trust bundle libcurl was built to use when nothing overrides it
    /// (`/etc/ssl/certs/ca-certificates.crt` on Debian), as libcurl itself reports it.
    static let defaultCABundle: String? = {
        guard failure == nil, let handle = curl_easy_init() else { return nil }
        defer { curl_easy_cleanup(handle) }
        var path: UnsafeMutablePointer<CChar>?
        guard tether_curl_getinfo_string(handle, CURLINFO_CAINFO, &path) == CURLE_OK, let path else { return nil }
        return String(cString: path)
    }()
}
