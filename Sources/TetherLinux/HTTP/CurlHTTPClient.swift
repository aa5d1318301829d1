import Synchronization
import TetherCore

/// A small HTTP client on libcurl, for the rare request tetherd makes besides its WebSocket:
/// fetching an upstream token before a connection attempt.
///
/// Each request gets its own easy handle and its own short-lived thread, so the blocking
/// transfer never occupies a thread of the Swift concurrency pool or an event loop; the
/// caller's task is resumed when the transfer ends. Every request is bounded: connect and
/// total timeouts, a response body of at most `maxResponseBytes` (64 KiB by default).
/// Cancelling the calling task aborts the transfer within about a second.
///
/// Trust: the system store (libcurl's default bundle), plus `extraTrustPEM` when given
/// (see `TrustBundle`). Proxies: `HTTPS_PROXY`/`NO_PROXY` from the environment, as libcurl
/// reads them by default. Errors are libcurl's own words (`SSL certificate problem: ...`,
/// `timed out`, `response larger than 64 KiB`); they never contain a header value or a body.
///
/// No state beyond libcurl's one-time global initialisation: the client can be shared freely.
public struct CurlHTTPClient: Sendable {
    public init() {}

    public func perform(_ request: HTTPRequest) async -> Result<HTTPResponse, HTTPTransferError> {
        let transfer = CurlTransfer(request)
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Result<HTTPResponse, HTTPTransferError>, Never>) in
                // Transfers are rare (one per connection attempt at most): a short-lived
                // detached thread each needs no pool, no queue and no shutdown.
                do {
                    try DedicatedThread.start(name: "tether-http") { continuation.resume(returning: transfer.run()) }.detach()
                } catch {
                    continuation.resume(returning: .failure(HTTPTransferError(.other, "no thread for the HTTP transfer: \(error)")))
                }
            }
        } onCancel: {
            transfer.cancel()
        }
    }
}
