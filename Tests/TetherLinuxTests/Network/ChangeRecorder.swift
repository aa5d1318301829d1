import Foundation
import TetherCore

/// Collects what the monitor reports and lets a test wait for a particular report with a
/// deadline (a condition variable, not a sleep).
final class ChangeRecorder: @unchecked Sendable {
    struct Change {
        var view: NetworkView
        var delta: NetworkDelta
    }

    private let condition = NSCondition()
    private var changes: [Change] = []

    func record(_ view: NetworkView, _ delta: NetworkDelta) {
        condition.lock()
        changes.append(Change(view: view, delta: delta))
        condition.broadcast()
        condition.unlock()
    }

    var count: Int {
        condition.lock()
        defer { condition.unlock() }
        return changes.count
    }

    var all: [Change] {
        condition.lock()
        defer { condition.unlock() }
        return changes
    }

    /// The first change at or after index `from` that satisfies `predicate`, waiting up to
    /// `timeout` for it; nil on timeout.
    func wait(from: Int, timeout: TimeInterval = 10, _ predicate: (Change) -> Bool) -> Change? {
        let deadline = Date().addingTimeInterval(timeout)
        condition.lock()
        defer { condition.unlock() }
        while true {
            if from < changes.count, let match = changes[from...].first(where: predicate) { return match }
            if !condition.wait(until: deadline) { return changes.count > from ? changes[from...].first(where: predicate) : nil }
        }
    }

    /// Polls `probe` until it is true or `timeout` passes: for state the monitor exposes
    /// but does not report through the callback.
    static func eventually(timeout: TimeInterval = 10, _ probe: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if probe() { return true }
            usleep(5_000)
        }
        return probe()
    }
}
