import Glibc
import Synchronization

/// An OS thread of its own, for work that blocks in C calls (ALSA reads and writes, poll on
/// netlink, a libcurl transfer): blocking a thread of the Swift concurrency pool (two of them
/// on a 2-core robot) or an event loop would starve everything behind it.
///
/// Every thread is either joined (`finish(within:)`, which lets a thread stuck in a device go
/// instead of hanging the caller, or `join`) or `detach`ed, exactly once.
final class DedicatedThread: Sendable {
    /// Set by the thread as its body returns.
    private let exited = OnceSignal<Void>()
    private let settled = Atomic<Bool>(false)
    // Written once in `start`, by pthread_create, before anyone else can see the object.
    private nonisolated(unsafe) var handle = pthread_t()

    private final class Launch {
        let name: String
        let body: @Sendable () -> Void
        let exited: OnceSignal<Void>
        init(name: String, body: @escaping @Sendable () -> Void, exited: OnceSignal<Void>) {
            self.name = name
            self.body = body
            self.exited = exited
        }
    }

    private init() {}

    /// Starts `body` on a new thread named `name` (what `top -H`, `ps -L` and core dumps show;
    /// the kernel keeps 15 bytes). Throws when the system refuses another thread.
    static func start(name: String, _ body: @escaping @Sendable () -> Void) throws(ThreadStartError) -> DedicatedThread {
        let thread = DedicatedThread()
        let launch = Unmanaged.passRetained(Launch(name: name, body: body, exited: thread.exited))
        let rc = pthread_create(&thread.handle, nil, { raw in
            let launch = Unmanaged<Launch>.fromOpaque(raw!).takeRetainedValue()
            nameCurrentThread(launch.name)
            launch.body()
            launch.exited.signal(())
            return nil
        }, launch.toOpaque())
        guard rc == 0 else {
            launch.release()
            throw ThreadStartError(errno: rc)
        }
        return thread
    }

    /// Blocks until the thread ends, for a synchronous caller that knows the thread is short
    /// (a test rig's helper thread). A second call, or one after `finish`, returns at once.
    func join() {
        guard !settled.exchange(true, ordering: .acquiringAndReleasing) else { return }
        pthread_join(handle, nil)
    }

    /// Waits up to `timeout` for the thread to end, awaiting its own signal that its body has
    /// returned instead of blocking a thread of the concurrency pool; the join that follows
    /// only reaps a thread already on its way out. A thread still stuck (in a blocking device
    /// call) is detached instead: it ends on its own when the call returns.
    @discardableResult
    func finish(within timeout: Duration) async -> Bool {
        settle(ended: await exited.wait(timeout: timeout) != nil)
    }

    /// Reaps an ended thread or detaches a stuck one, once whichever caller comes first.
    private func settle(ended: Bool) -> Bool {
        guard !settled.exchange(true, ordering: .acquiringAndReleasing) else { return ended }
        if ended {
            pthread_join(handle, nil)
        } else {
            pthread_detach(handle)
        }
        return ended
    }

    /// Nobody will join: the thread's resources go back to the system when it ends.
    func detach() {
        guard !settled.exchange(true, ordering: .acquiringAndReleasing) else { return }
        pthread_detach(handle)
    }
}

struct ThreadStartError: Error, CustomStringConvertible {
    var errno: Int32
    var description: String { "pthread_create failed: \(String(cString: strerror(errno)))" }
}

/// Name the calling thread. pthread_setname_np is hidden behind _GNU_SOURCE in the Glibc
/// module and prctl is variadic, so write the kernel's comm file directly.
private func nameCurrentThread(_ name: String) {
    let fd = open("/proc/thread-self/comm", O_WRONLY | O_CLOEXEC)
    guard fd >= 0 else { return }
    defer { close(fd) }
    let bytes = Array(name.utf8.prefix(15))
    _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
}
