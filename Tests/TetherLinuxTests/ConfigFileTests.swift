import Glibc
import Testing
import TetherCore
@testable import TetherLinux

/// `ConfigFile` reads at most 1 MiB and leaves the rest (UTF-8, YAML, schema) to the loader.
@Suite struct ConfigFileTests {
    /// The path of a new file under /tmp holding `bytes`; the caller unlinks it.
    static func write(_ bytes: [UInt8]) throws -> String {
        var template = Array("/tmp/tether-config-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        try #require(fd >= 0)
        defer { close(fd) }
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, min($0.count, 1 << 20)) }
            try #require(n > 0)
            offset += n
        }
        return String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    @Test func aTenMegabyteFileIsRefusedBeforeParsing() throws {
        // Valid YAML all the way (comments), so only the size can refuse it.
        let path = try Self.write(Array(repeating: UInt8(ascii: "#"), count: 10_000_000))
        defer { unlink(path) }
        let start = ContinuousClock.now
        #expect {
            try ConfigFile.load(path: path, explicit: true)
        } throws: { error in
            (error as? ConfigError)?.description == "\(path): the configuration is larger than 1 MiB"
        }
        #expect(ContinuousClock.now - start < .seconds(5))
    }

    @Test func justUnderTheLimitIsRead() throws {
        let path = try Self.write(Array(repeating: UInt8(ascii: "#"), count: ConfigFile.maxBytes - 1) + [UInt8(ascii: "\n")])
        defer { unlink(path) }
        #expect(try ConfigFile.load(path: path, explicit: true) == TetherConfig())
    }

    @Test func bytesThatAreNotUTF8AreRefusedWithTheirLine() throws {
        let path = try Self.write(Array("log:\n  level: ".utf8) + [0xFF] + Array("\n".utf8))
        defer { unlink(path) }
        let name = String(path.split(separator: "/").last!)
        #expect {
            try ConfigFile.load(path: path, explicit: true)
        } throws: { error in
            guard let error = error as? ConfigError else { return false }
            return error.source == name && error.line == 2 && error.message.hasPrefix("invalid YAML: ")
        }
    }

    @Test func aMissingDefaultFileIsAllDefaults() throws {
        #expect(try ConfigFile.load(path: "/nonexistent/tether.yaml", explicit: false) == TetherConfig())
        #expect(throws: ConfigError.self) { try ConfigFile.load(path: "/nonexistent/tether.yaml", explicit: true) }
    }
}
