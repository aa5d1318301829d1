/// A point on the monotonic clock, in nanoseconds from an arbitrary origin. Decision logic
/// takes it as an argument instead of reading a clock, so tests drive time by hand.
public struct MonoTime: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var nanoseconds: Int64

    public init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }

    public static let zero = MonoTime(nanoseconds: 0)

    public static func milliseconds(_ ms: Int64) -> MonoTime { MonoTime(nanoseconds: ms * 1_000_000) }

    public static func < (a: MonoTime, b: MonoTime) -> Bool { a.nanoseconds < b.nanoseconds }

    public static func + (a: MonoTime, d: Duration) -> MonoTime { MonoTime(nanoseconds: a.nanoseconds &+ d.nanoseconds) }

    public static func - (a: MonoTime, d: Duration) -> MonoTime { MonoTime(nanoseconds: a.nanoseconds &- d.nanoseconds) }

    public static func - (a: MonoTime, b: MonoTime) -> Duration { .nanoseconds(a.nanoseconds &- b.nanoseconds) }

    public var description: String { "\(Double(nanoseconds) / 1e6)ms" }
}
