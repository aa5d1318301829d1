import Foundation

/// Holds the monitor thread inside its callback on demand, so a test can pile up kernel
/// notifications while nobody reads the socket.
final class CallbackGate: @unchecked Sendable {
    private let condition = NSCondition()
    private var armed = false
    private var holding = false

    /// The next callback will wait in `pass()` until `release()`.
    func arm() {
        condition.lock()
        armed = true
        condition.unlock()
    }

    /// Called from the callback.
    func pass() {
        condition.lock()
        defer { condition.unlock() }
        guard armed else { return }
        holding = true
        condition.broadcast()
        while armed { condition.wait() }
        holding = false
    }

    /// Waits until a callback is held; false on timeout.
    func waitUntilHolding(timeout: TimeInterval = 10) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        condition.lock()
        defer { condition.unlock() }
        while !holding {
            if !condition.wait(until: deadline) { return holding }
        }
        return true
    }

    func release() {
        condition.lock()
        armed = false
        condition.broadcast()
        condition.unlock()
    }
}
