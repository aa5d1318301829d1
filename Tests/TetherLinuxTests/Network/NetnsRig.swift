import Foundation
import Glibc
import Synchronization
@testable import TetherLinux

/// A scratch network namespace with real kernel networking: veth pairs, addresses and
/// routes made with `ip -n NS ...`, and a netlink socket opened inside it. Deleting the
/// namespace destroys everything in it.
final class NetnsRig: Sendable {
    struct CommandFailed: Error, CustomStringConvertible {
        var description: String
    }

    let name: String

    static let prefix = "tether-nt-"

    /// The name carries our PID, so that namespaces left by a killed test run (a cleanup
    /// that never ran) can be told from those of a run still going, and reaped.
    init() throws {
        NetnsRig.reapOrphans()
        var rng = SystemRandomNumberGenerator()
        name = NetnsRig.prefix + "\(getpid())-" + String(rng.next() & 0xFFFF_FFFF, radix: 16)
        try NetnsRig.run(["netns", "add", name])
    }

    /// Deletes `tether-nt-PID-*` namespaces whose PID is no longer a live process.
    static func reapOrphans() {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: "/run/netns") else { return }
        for name in names where name.hasPrefix(prefix) {
            let fields = name.dropFirst(prefix.count).split(separator: "-")
            guard fields.count == 2, let pid = Int32(fields[0]), pid != getpid() else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH { _ = try? run(["netns", "del", name]) }
        }
    }

    /// `ip -n NAME args...`; throws with ip's stderr when it fails.
    func ip(_ args: String...) throws {
        try NetnsRig.run(["-n", name] + args)
    }

    /// Many changes from one `ip -batch` process: a burst faster than one `ip` per change.
    func batch(_ commands: [String]) throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("\(name).batch").path
        try (commands.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        try NetnsRig.run(["-n", name, "-batch", path])
    }

    /// Idempotent; failures are ignored (the namespace may already be gone).
    func destroy() {
        _ = try? NetnsRig.run(["netns", "del", name])
    }

    static func run(_ args: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"]
            .first { FileManager.default.isExecutableFile(atPath: $0) } ?? "/usr/sbin/ip")
        process.arguments = args
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        guard process.terminationStatus == 0 else {
            throw CommandFailed(description: "ip \(args.joined(separator: " ")) failed: \(text)")
        }
    }

    /// Opens a netlink socket that lives in this namespace: a throwaway thread enters the
    /// namespace with setns(2) (which affects only the calling thread) and opens it there;
    /// the socket stays in the namespace for good, whichever thread uses it later.
    func openNetlinkSocket(receiveBufferBytes: Int = NetlinkSocket.defaultReceiveBufferBytes) throws -> NetlinkSocket {
        let path = "/run/netns/" + name
        let result = Mutex<Result<NetlinkSocket, CommandFailed>?>(nil)
        let thread = try DedicatedThread.start(name: "netns-open") {
            result.withLock { $0 = NetnsRig.openInNamespace(path, receiveBufferBytes: receiveBufferBytes) }
        }
        thread.join()
        guard let outcome = result.withLock({ $0 }) else { throw CommandFailed(description: "no result") }
        return try outcome.get()
    }

    private static func openInNamespace(_ path: String, receiveBufferBytes: Int) -> Result<NetlinkSocket, CommandFailed> {
        // Glibc's Swift module hides setns (a _GNU_SOURCE function); look it up instead.
        typealias Setns = @convention(c) (Int32, Int32) -> Int32
        guard let symbol = dlsym(dlopen(nil, RTLD_NOW), "setns") else {
            return .failure(CommandFailed(description: "setns not found"))
        }
        let setns = unsafeBitCast(symbol, to: Setns.self)
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return .failure(CommandFailed(description: "open \(path): errno \(errno)")) }
        defer { close(fd) }
        let CLONE_NEWNET: Int32 = 0x4000_0000
        guard setns(fd, CLONE_NEWNET) == 0 else {
            return .failure(CommandFailed(description: "setns: errno \(errno)"))
        }
        do {
            return .success(try NetlinkSocket(receiveBufferBytes: receiveBufferBytes))
        } catch {
            return .failure(CommandFailed(description: "\(error)"))
        }
    }
}
