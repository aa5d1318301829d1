/// What one answer of the token endpoint means for the connection attempt waiting on it: a
/// token, or a `ConnectionFailure` whose detail goes to `status.session.last_error`.
///
/// Details name the HTTP status and a short reason, never the token, the device credential
/// or the response body (an endpoint may echo what it was sent). 401 and 403 say the device
/// credential is wrong and 429 says we are too eager: those are `.refused`, so the session
/// retries no faster than `backoff.max` instead of hammering the endpoint.
public enum TokenEndpoint {
    public static let prefix = "token endpoint: "

    public static func outcome(_ result: Result<HTTPResponse, HTTPTransferError>, field: String,
                               expiresField: String) -> Result<IssuedToken, ConnectionFailure> {
        switch result {
        case .failure(let error):
            return .failure(transferFailure(error))
        case .success(let response):
            guard (200...299).contains(response.status) else { return .failure(statusFailure(response.status)) }
            switch TokenResponse.parse(body: response.body, field: field, expiresField: expiresField) {
            case .success(let token):
                return .success(token)
            case .failure(.notJSON):
                return .failure(ConnectionFailure(.transport, prefix + "response is not JSON"))
            case .failure(.missingField(let name)):
                return .failure(ConnectionFailure(.transport, prefix + "no \"\(name)\" in the response"))
            case .failure(.unusableField(let name)):
                return .failure(ConnectionFailure(.transport, prefix + "\"\(name)\" in the response is not a usable token"))
            }
        }
    }

    public static func statusFailure(_ status: Int) -> ConnectionFailure {
        switch status {
        case 401, 403:
            return ConnectionFailure(.refused, prefix + "HTTP \(status) (check the device credential)")
        case 429:
            return ConnectionFailure(.refused, prefix + "HTTP 429 (rate limited)")
        default:
            return ConnectionFailure(.transport, prefix + "HTTP \(status)")
        }
    }

    public static func transferFailure(_ error: HTTPTransferError) -> ConnectionFailure {
        ConnectionFailure(.transport, prefix + error.message)
    }
}
