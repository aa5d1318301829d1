import Glibc
import TetherCore

/// State behind a mutex, with a condition variable on the monotonic clock so that threads can
/// sleep until something changes or a deadline passes (a wall-clock jump must not stretch an
/// audio thread's wait). For the dedicated audio threads: Swift's `Mutex` has no condition.
// @unchecked: `state` is guarded by a pthread mutex, which the compiler cannot see.
final class Monitor<State>: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let cond: UnsafeMutablePointer<pthread_cond_t>
    // Only touched with `mutex` held.
    private var state: State

    init(_ state: State) {
        self.state = state
        mutex = .allocate(capacity: 1)
        cond = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        var attr = pthread_condattr_t()
        pthread_condattr_init(&attr)
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC)
        pthread_cond_init(cond, &attr)
        pthread_condattr_destroy(&attr)
    }

    deinit {
        pthread_cond_destroy(cond)
        pthread_mutex_destroy(mutex)
        cond.deallocate()
        mutex.deallocate()
    }

    func withLock<R>(_ body: (inout State) throws -> R) rethrows -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&state)
    }

    /// Runs `body` under the lock until it returns a value, sleeping between tries until the
    /// state is changed and `notifyAll()` called, or `deadline` passes (then nil).
    func wait<R>(until deadline: MonoTime, _ body: (inout State) -> R?) -> R? {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while true {
            if let result = body(&state) { return result }
            let now = MonoClock.now()
            if now >= deadline { return nil }
            var ts = timespec(tv_sec: Int(deadline.nanoseconds / 1_000_000_000),
                              tv_nsec: Int(deadline.nanoseconds % 1_000_000_000))
            _ = pthread_cond_timedwait(cond, mutex, &ts)
        }
    }

    /// Wake every waiter to re-check the state.
    func notifyAll() {
        pthread_cond_broadcast(cond)
    }
}
