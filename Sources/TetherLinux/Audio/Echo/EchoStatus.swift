import TetherCore

/// `status.audio.echo`: the mode that runs, and while cancelling, what the canceller sees: its
/// echo return loss enhancement, the echo delay it found beyond what the devices report, and
/// whether it has converged.
struct EchoStatus: Sendable, Equatable {
    var mode: EchoMode
    var erleDB: Double = 0
    var delayMs: Int?
    var converged = false

    init(mode: EchoMode) {
        self.mode = mode
    }

    var json: JSONObject {
        var object: JSONObject = ["mode": .string(mode.rawValue)]
        if mode == .cancel {
            object["erle_db"] = .number((erleDB * 10).rounded() / 10)
            object["delay_ms"] = delayMs.map { JSONValue($0) } ?? .null
            object["converged"] = .bool(converged)
        }
        return object
    }
}
