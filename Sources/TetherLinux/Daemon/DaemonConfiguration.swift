import Glibc
import NIOSSL
import TetherCore

/// Everything read from disk for one configuration: the YAML, the credentials, the TLS context.
/// Built whole or not at all, so a reload either switches completely or keeps the old one.
public struct DaemonConfiguration: Sendable {
    public var config: TetherConfig
    public var apiKey: Secret?
    public var apiKeySource: String?
    public var warnings: [String]
    public var tls: NIOSSLContext?
    /// What the session presents upstream: a token endpoint when `upstream.token` is set,
    /// else the static key (or nothing). Made once per load, so a token cache lives as long
    /// as the configuration that made it.
    public var credentials: any UpstreamCredentials

    public static func load(path: String, explicit: Bool, environment: [String: String]) throws(ConfigError) -> DaemonConfiguration {
        let config = try ConfigFile.load(path: path, explicit: explicit)
        let source = path.split(separator: "/").last.map(String.init) ?? path
        let tls = try TLSContextFactory.make(config.upstream, source: source)
        if let token = config.upstream.token {
            var warnings: [String] = []
            if config.upstream.apiKeyFileIsExplicit {
                warnings.append("upstream.api_key_file is ignored: upstream.token is set")
            }
            let credentials = try tokenCredentials(token, caFile: config.upstream.caFile, environment: environment, source: source,
                                                   warnings: &warnings)
            return DaemonConfiguration(config: config, apiKey: nil, apiKeySource: nil, warnings: warnings, tls: tls,
                                       credentials: credentials)
        }
        // The key file is read at every load, so a reload picks up a rotated key for the next
        // connection (the live one keeps going: see `SessionSettings.upstreamDiffers`).
        let loaded = try CredentialFiles.loadAPIKey(config.upstream, environment: environment, source: source)
        return DaemonConfiguration(config: config, apiKey: loaded.apiKey, apiKeySource: loaded.apiKeySource,
                                   warnings: loaded.warnings, tls: tls, credentials: StaticCredentials(key: loaded.apiKey))
    }

    public func sessionSettings() -> SessionSettings {
        SessionSettings(config: config, tls: tls, credentials: credentials)
    }

    /// After a reload: keep the previous token cache when the endpoint, the credential and the
    /// trust roots are unchanged, so a reload costs no token fetch.
    public func carryTokenCache(from previous: DaemonConfiguration) {
        if let next = credentials as? TokenCredentials, let old = previous.credentials as? TokenCredentials, next.sameSource(as: old) {
            next.adoptCache(from: old)
        }
    }

    /// Reads what the token endpoint needs at load time, so a missing credential or a bad CA
    /// file stops tetherd at start (exit 78) or refuses a reload, instead of failing every
    /// connection attempt later.
    /// The device credential comes from systemd's `$CREDENTIALS_DIRECTORY/device-credential`
    /// (`LoadCredential=device-credential:...`, readable by the `tether` user without opening
    /// up the file itself) when present, else from `upstream.token.credential_file`.
    private static func tokenCredentials(_ token: TokenConfig, caFile: String?, environment: [String: String], source: String,
                                         warnings: inout [String]) throws(ConfigError) -> TokenCredentials {
        var credential: Secret?
        if let directory = environment["CREDENTIALS_DIRECTORY"], !directory.isEmpty, access(directory + "/device-credential", F_OK) == 0 {
            credential = try CredentialFiles.read(directory + "/device-credential", key: "CREDENTIALS_DIRECTORY/device-credential",
                                                  source: source, warnings: &warnings)
        } else if let path = token.credentialFile {
            credential = try CredentialFiles.read(path, key: "upstream.token.credential_file", source: source, warnings: &warnings)
        }
        var extraTrust: [UInt8]?
        if let caFile {
            guard let pem = TrustBundle.readFile(caFile, limit: TrustBundle.maxBundleBytes) else {
                throw ConfigError(source: source, key: "upstream.ca_file", message: "cannot read \(caFile)")
            }
            guard (try? NIOSSLCertificate.fromPEMBytes(pem))?.isEmpty == false else {
                throw ConfigError(source: source, key: "upstream.ca_file", message: "\(caFile) holds no PEM certificate")
            }
            extraTrust = pem
        }
        return TokenCredentials(config: token, credential: credential, extraTrustPEM: extraTrust)
    }
}
