import Synchronization

/// A value set once, from any thread (a dedicated thread as it ends, a channel's close
/// callback, the event bus's thread reaching a flush), that async code awaits without holding a thread: the concurrency pool has two
/// threads on a 2-core robot, and a blocking join there stalls every task behind it.
///
/// The first `signal` wins; later ones are ignored. Waiters resume as soon as it is set, or with
/// nil when their task is cancelled or their bound passes first.
final class OnceSignal<Value: Sendable>: Sendable {
    private struct State {
        var value: Value?
        var waiters: [UInt64: CheckedContinuation<Value?, Never>] = [:]
        var nextID: UInt64 = 0
    }

    private let state = Mutex(State())

    init() {}

    /// Sets the value and resumes every waiter. Returns false when it was set already.
    @discardableResult
    func signal(_ value: Value) -> Bool {
        let waiters = state.withLock { s -> [CheckedContinuation<Value?, Never>]? in
            guard s.value == nil else { return nil }
            s.value = value
            defer { s.waiters.removeAll() }
            return Array(s.waiters.values)
        }
        guard let waiters else { return false }
        for waiter in waiters { waiter.resume(returning: value) }
        return true
    }

    /// The value, once signalled.
    var value: Value? { state.withLock { $0.value } }

    /// Waits until signalled; nil when the task is cancelled first.
    func wait() async -> Value? {
        let id = state.withLock { s in
            defer { s.nextID += 1 }
            return s.nextID
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Value?, Never>) in
                // Cancellation is flagged before its handler runs, and the handler takes the same
                // lock: either it finds this waiter, or this check sees the flag.
                let now: Value?? = state.withLock { s in
                    if let value = s.value { return .some(value) }
                    if Task.isCancelled { return .some(nil) }
                    s.waiters[id] = continuation
                    return nil
                }
                if let now { continuation.resume(returning: now) }
            }
        } onCancel: {
            state.withLock { $0.waiters.removeValue(forKey: id) }?.resume(returning: nil)
        }
    }

    /// Waits at most `timeout` (or until the task is cancelled); nil if it was not signalled by then.
    func wait(timeout: Duration) async -> Value? {
        if let value { return value }
        return await withTaskGroup(of: Value?.self) { group in
            group.addTask { await self.wait() }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first ?? self.value
        }
    }
}
