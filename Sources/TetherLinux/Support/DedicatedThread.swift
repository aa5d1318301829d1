import Glibc
import Synchronization
import TetherCore

/// An OS thread of its own, for work that blocks in C calls (ALSA reads and writes): blocking
/// a thread of the Swift concurrency pool would starve every task behind it.
final class DedicatedThread: Sendable {
    private let finished = Monitor(false)
    private let joined = Atomic<Bool>(false)
    // Written once in `start` before anyone else can see the object.
    private nonisolated(unsafe) var handle = pthread_t()

    private final class Launch {
        let name: String
        let body: @Sendable () -> Void
        let finished: Monitor<Bool>
        init(name: String, body: @escaping @Sendable () -> Void, finished: Monitor<Bool>) {
            self.name = name
            self.body = body
            self.finished = finished
        }
    }

    private init() {}

    /// Starts `body` on a new thread named `name` (at most 15 bytes show in `top -H`).
    /// Returns nil when the system refuses another thread.
    static func start(name: String, _ body: @escaping @Sendable () -> Void) -> DedicatedThread? {
        let thread = DedicatedThread()
        let launch = Unmanaged.passRetained(Launch(name: name, body: body, finished: thread.finished))
        let rc = pthread_create(&thread.handle, nil, { raw in
            let launch = Unmanaged<Launch>.fromOpaque(raw!).takeRetainedValue()
            nameCurrentThread(launch.name)
            launch.body()
            launch.finished.withLock { $0 = true }
            launch.finished.notifyAll()
            return nil
        }, launch.toOpaque())
        guard rc == 0 else {
            launch.release()
            return nil
        }
        return thread
    }

    /// Waits up to `timeout` for the thread to end. A thread still stuck (in a blocking device
    /// call) is detached instead: it ends on its own when the call returns.
    @discardableResult
    func join(timeout: Duration) -> Bool {
        guard !joined.exchange(true, ordering: .relaxed) else { return finished.withLock { $0 } }
        let done = finished.wait(until: MonoClock.now() + timeout) { $0 ? true : nil } ?? false
        if done {
            pthread_join(handle, nil)
        } else {
            pthread_detach(handle)
        }
        return done
    }
}

/// Name the calling thread (what `top -H` and `ps -L` show). pthread_setname_np is hidden
/// behind _GNU_SOURCE in the Glibc module, so write the kernel's comm file directly.
private func nameCurrentThread(_ name: String) {
    let fd = open("/proc/thread-self/comm", O_WRONLY | O_CLOEXEC)
    guard fd >= 0 else { return }
    let bytes = Array(name.utf8.prefix(15))
    _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    close(fd)
}
