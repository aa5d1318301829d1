import Glibc

/// One line per noteworthy happening on stderr (stdout carries only the `listening on` line).
/// stderr is unbuffered, so lines are out as soon as they are written.
enum Log {
    nonisolated(unsafe) static var verbose = false
    nonisolated(unsafe) static var quiet = false

    static func info(_ message: @autoclosure () -> String) {
        guard !quiet else { return }
        write("\(WallClock.iso8601Now()) tether-mock-upstream: \(message())\n")
    }

    static func debug(_ message: @autoclosure () -> String) {
        guard verbose else { return }
        write("\(WallClock.iso8601Now()) tether-mock-upstream: \(message())\n")
    }

    static func error(_ message: String) {
        write("\(WallClock.iso8601Now()) tether-mock-upstream: error: \(message)\n")
    }

    private static func write(_ line: String) {
        writeAll(2, line)
    }

    /// Writes all of `text` to `fd` with write(2): no stdio buffer to flush or forget.
    static func writeAll(_ fd: Int32, _ text: String) {
        var text = text
        text.withUTF8 { buffer in
            var offset = 0
            while offset < buffer.count {
                let n = Glibc.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    return
                }
                offset += n
            }
        }
    }
}
