import NIOSSL
import TetherCore

/// Builds the TLS client context for `wss://` upstreams once per configuration: the system
/// trust store plus `upstream.ca_file` for self-hosted brains. A bad CA file is a
/// configuration error, reported at start-up rather than at the first connection.
public enum TLSContextFactory {
    public static func make(_ upstream: UpstreamConfig, source: String) throws(ConfigError) -> NIOSSLContext? {
        guard upstream.url.secure else { return nil }
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        if let caFile = upstream.caFile {
            do {
                let certificates = try NIOSSLCertificate.fromPEMFile(caFile)
                guard !certificates.isEmpty else {
                    throw ConfigError(source: source, key: "upstream.ca_file", message: "\(caFile) holds no PEM certificate")
                }
                configuration.additionalTrustRoots = [.certificates(certificates)]
            } catch let error as ConfigError {
                throw error
            } catch {
                throw ConfigError(source: source, key: "upstream.ca_file", message: "cannot load \(caFile): \(error)")
            }
        }
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw ConfigError(source: source, key: "upstream.ca_file", message: "cannot build the TLS context: \(error)")
        }
    }
}
