/// A token handed out by the fleet's token endpoint, with what the endpoint said about its
/// lifetime.
public struct IssuedToken: Sendable, Equatable {
    public enum Expiry: Sendable, Equatable {
        /// Seconds since the epoch, in the server's time (`expires_at`).
        case at(epochSeconds: Double)
        /// Seconds from issue (an OAuth-style `expires_in`).
        case after(seconds: Double)
    }

    public var value: Secret
    /// nil: the endpoint gave no lifetime, so the token is used once and fetched again.
    public var expiry: Expiry?

    public init(value: Secret, expiry: Expiry?) {
        self.value = value
        self.expiry = expiry
    }
}
