import Glibc

/// Runs one blocking libcurl transfer on an OS thread of its own. `curl_easy_perform` blocks
/// for up to the request's total timeout; on a thread of the Swift concurrency pool (2 of them
/// on a 2-core robot) or on an event loop that would stall everything else. Transfers are rare
/// (one per connection attempt at most), so a short-lived detached thread per transfer costs
/// nothing and needs no pool, no queue and no shutdown: it ends when its transfer does.
enum TransferThread {
    private final class Launch: Sendable {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }

    /// False when the system refuses another thread (the caller reports it; nothing ran).
    static func start(_ body: @escaping @Sendable () -> Void) -> Bool {
        var thread = pthread_t()
        let launch = Unmanaged.passRetained(Launch(body))
        let rc = pthread_create(&thread, nil, { raw in
            let launch = Unmanaged<Launch>.fromOpaque(raw!).takeRetainedValue()
            nameThread("tether-http")
            launch.body()
            return nil
        }, launch.toOpaque())
        guard rc == 0 else {
            launch.release()
            return false
        }
        // Nobody joins: the thread's resources go back to the system when it ends.
        pthread_detach(thread)
        return true
    }
}

/// What `top -H` shows. pthread_setname_np is hidden behind _GNU_SOURCE in the Glibc module,
/// so write the kernel's comm file.
private func nameThread(_ name: String) {
    let fd = open("/proc/thread-self/comm", O_WRONLY | O_CLOEXEC)
    guard fd >= 0 else { return }
    let bytes = Array(name.utf8.prefix(15))
    _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    close(fd)
}
