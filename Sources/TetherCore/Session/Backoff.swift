/// Exponential backoff with jitter between reconnect attempts: `initial * multiplier^n`,
/// capped at `max`, each delay spread by ±`jitter`. Reset after a connection goes live.
/// The random source is injected so that tests see exact delays.
public struct Backoff: Sendable {
    public let config: BackoffConfig
    public private(set) var attempt = 0

    public init(config: BackoffConfig) { self.config = config }

    /// The delay before the next attempt; advances the attempt count.
    /// `unit` is a random number in 0..<1.
    public mutating func nextDelay(unit: Double) -> Duration {
        let base = Double(config.initial.nanoseconds) * pow(config.multiplier, Double(min(attempt, 64)))
        let capped = min(base, Double(config.max.nanoseconds))
        attempt += 1
        let spread = capped * config.jitter * (unit * 2 - 1)
        let jittered = max(0, min(capped + spread, Double(config.max.nanoseconds)))
        return .nanoseconds(Int64(jittered))
    }

    public mutating func reset() { attempt = 0 }
}

func pow(_ base: Double, _ exponent: Double) -> Double {
    var result = 1.0
    var n = Int(exponent)
    var b = base
    while n > 0 {
        if n & 1 == 1 { result *= b }
        b *= b
        n >>= 1
        if result > 1e30 { return result }
    }
    return result
}
