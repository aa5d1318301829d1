import Glibc
import TetherCore

/// Reads the configuration file from disk and hands it to the pure loader.
public enum ConfigFile {
    public static let defaultPath = "/etc/tether/tether.yaml"
    public static let maxBytes = 1 << 20

    /// A missing file at the default path means "all defaults"; a path given on the command
    /// line must exist.
    public static func load(path: String, explicit: Bool) throws(ConfigError) -> TetherConfig {
        let name = path.split(separator: "/").last.map(String.init) ?? path
        guard let bytes = try readBytes(path, explicit: explicit) else { return TetherConfig() }
        return try ConfigLoader.load(bytes: bytes, source: name)
    }

    /// At most `maxBytes`: a larger file is refused before any of it is parsed, so a runaway
    /// generator or a wrong path (a log, an image) costs one bounded read. Whether the bytes are
    /// UTF-8 is the parser's to say, with the line.
    static func readBytes(_ path: String, explicit: Bool) throws(ConfigError) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == ENOENT && !explicit { return nil }
            throw ConfigError(source: path, key: nil, message: "cannot read the configuration: \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16384)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw ConfigError(source: path, key: nil, message: "cannot read the configuration: \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            bytes.append(contentsOf: chunk[..<n])
            guard bytes.count <= maxBytes else {
                throw ConfigError(source: path, key: nil, message: "the configuration is larger than 1 MiB")
            }
        }
        return bytes
    }
}
