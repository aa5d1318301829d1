import TetherCore

/// `status.audio.echo`: the mode that runs (the configured one, or `gate` after a fallback,
/// with why), and while cancelling, what the canceller sees: its echo return loss enhancement,
/// the echo delay it found beyond what the devices report, and whether it has converged.
struct EchoStatus: Sendable, Equatable {
    var configured: EchoMode
    var mode: EchoMode
    var fallback: String?
    var erleDB: Double = 0
    var delayMs: Int?
    var converged = false

    init(configured: EchoMode, mode: EchoMode, fallback: String? = nil) {
        self.configured = configured
        self.mode = mode
        self.fallback = fallback
    }

    var json: JSONObject {
        var object: JSONObject = ["mode": .string(mode.rawValue)]
        if configured != mode { object["configured"] = .string(configured.rawValue) }
        if let fallback { object["fallback"] = .string(fallback) }
        if mode == .cancel {
            object["erle_db"] = .number((erleDB * 10).rounded() / 10)
            object["delay_ms"] = delayMs.map { JSONValue($0) } ?? .null
            object["converged"] = .bool(converged)
        }
        return object
    }
}
