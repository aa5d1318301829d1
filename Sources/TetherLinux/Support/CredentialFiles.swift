import Glibc
import Logging
import TetherCore

/// Reads secrets from files: the upstream API key (systemd's `$CREDENTIALS_DIRECTORY/api-key`
/// from `LoadCredential=`, else `upstream.api_key_file`) and the token endpoint's device
/// credential. Errors name the file and the key, never the content.
public enum CredentialFiles {
    public static let maxSecretBytes = 16 * 1024

    public struct Loaded: Sendable {
        public var apiKey: Secret?
        public var apiKeySource: String?
        public var warnings: [String] = []
    }

    public static func loadAPIKey(_ upstream: UpstreamConfig, environment: [String: String], source: String) throws(ConfigError) -> Loaded {
        var loaded = Loaded()
        if let directory = environment["CREDENTIALS_DIRECTORY"], !directory.isEmpty {
            let path = directory + "/api-key"
            if access(path, F_OK) == 0 {
                loaded.apiKey = try read(path, key: "CREDENTIALS_DIRECTORY/api-key", source: source, warnings: &loaded.warnings)
                loaded.apiKeySource = "credential api-key"
                return loaded
            }
        }
        let needsKey = upstream.protocolKind == .openaiRealtime && upstream.token == nil
        guard let path = upstream.apiKeyFile else {
            if needsKey {
                throw ConfigError(source: source, key: "upstream.api_key_file",
                                  message: "openai-realtime needs an API key: set api_key_file, load the api-key credential, or configure upstream.token")
            }
            return loaded
        }
        if !upstream.apiKeyFileIsExplicit && !needsKey && access(path, F_OK) != 0 {
            // The default path is only a suggestion: a self-hosted brain may need no key.
            return loaded
        }
        loaded.apiKey = try read(path, key: "upstream.api_key_file", source: source, warnings: &loaded.warnings)
        loaded.apiKeySource = path
        return loaded
    }

    public static func read(_ path: String, key: String, source: String, warnings: inout [String]) throws(ConfigError) -> Secret {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw ConfigError(source: source, key: key, message: "cannot read \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var st = stat()
        if fstat(fd, &st) == 0 {
            guard (st.st_mode & S_IFMT) == S_IFREG else {
                throw ConfigError(source: source, key: key, message: "\(path) is not a regular file")
            }
            if st.st_mode & 0o077 != 0 {
                warnings.append("\(path) is readable by group or others (mode \(String(st.st_mode & 0o777, radix: 8))); chmod 600 it")
            }
        }
        var bytes = [UInt8](repeating: 0, count: maxSecretBytes + 1)
        var total = 0
        while total < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + total, $0.count - total) }
            if n < 0 {
                if errno == EINTR { continue }
                throw ConfigError(source: source, key: key, message: "cannot read \(path): \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            total += n
        }
        guard total <= maxSecretBytes else {
            throw ConfigError(source: source, key: key, message: "\(path) is larger than \(maxSecretBytes) bytes")
        }
        guard let text = String(validating: bytes[..<total], as: UTF8.self) else {
            throw ConfigError(source: source, key: key, message: "\(path) is not UTF-8 text")
        }
        let value = text.trimmingWhitespace
        guard !value.isEmpty else { throw ConfigError(source: source, key: key, message: "\(path) is empty") }
        guard !value.unicodeScalars.contains(where: { $0 == "\n" || $0 == "\r" }) else {
            throw ConfigError(source: source, key: key, message: "\(path) holds more than one line")
        }
        return Secret(value)
    }
}

extension String {
    /// Without leading and trailing whitespace and newlines (a key file usually ends in "\n",
    /// and "\r\n" is one Character, so this works on scalars).
    var trimmingWhitespace: String {
        var scalars = Substring(self).unicodeScalars
        while let f = scalars.first, f.properties.isWhitespace { scalars = scalars.dropFirst() }
        while let l = scalars.last, l.properties.isWhitespace { scalars = scalars.dropLast() }
        return String(scalars)
    }
}
