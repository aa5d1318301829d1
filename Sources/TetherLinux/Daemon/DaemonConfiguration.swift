import NIOSSL
import TetherCore

/// Everything read from disk for one configuration: the YAML, the API key, the TLS context.
/// Built whole or not at all, so a reload either switches completely or keeps the old one.
public struct DaemonConfiguration: Sendable {
    public var config: TetherConfig
    public var apiKey: Secret?
    public var apiKeySource: String?
    public var warnings: [String]
    public var tls: NIOSSLContext?

    public static func load(path: String, explicit: Bool, environment: [String: String]) throws(ConfigError) -> DaemonConfiguration {
        let config = try ConfigFile.load(path: path, explicit: explicit)
        let source = path.split(separator: "/").last.map(String.init) ?? path
        let credentials = try CredentialFiles.loadAPIKey(config.upstream, environment: environment, source: source)
        let tls = try TLSContextFactory.make(config.upstream, source: source)
        return DaemonConfiguration(config: config, apiKey: credentials.apiKey, apiKeySource: credentials.apiKeySource,
                                   warnings: credentials.warnings, tls: tls)
    }

    public func sessionSettings() -> SessionSettings {
        SessionSettings(config: config, tls: tls, credentials: StaticCredentials(key: apiKey))
    }
}
