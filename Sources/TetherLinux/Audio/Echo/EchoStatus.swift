import TetherCore

/// `status.audio.echo`: the mode that runs, and while cancelling, what the canceller sees: its
/// echo return loss enhancement, the echo delay it found beyond what the devices report, and
/// whether it has converged. When `cancel` is configured but its canceller cannot start, the
/// gate runs and `cancel_unavailable` says why.
struct EchoStatus: Sendable, Equatable {
    var mode: EchoMode
    var erleDB: Double = 0
    var delayMs: Int?
    var converged = false
    var cancelUnavailable: String?

    init(mode: EchoMode, cancelUnavailable: String? = nil) {
        self.mode = mode
        self.cancelUnavailable = cancelUnavailable
    }

    var json: JSONObject {
        var object: JSONObject = ["mode": .string(mode.rawValue)]
        if mode == .cancel {
            object["erle_db"] = .number((erleDB * 10).rounded() / 10)
            object["delay_ms"] = delayMs.map { JSONValue($0) } ?? .null
            object["converged"] = .bool(converged)
        }
        if let cancelUnavailable { object["cancel_unavailable"] = .string(cancelUnavailable) }
        return object
    }
}
