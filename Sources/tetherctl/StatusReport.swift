import TetherCore

/// The human-readable `tetherctl status`: what a robot builder checks first.
enum StatusReport {
    static func render(_ status: JSONValue) -> String {
        func text(_ v: JSONValue?) -> String {
            switch v {
            case .string(let s)?: return s
            case .number(let n)?: return n.rounded() == n ? String(Int64(n)) : String(n)
            case .bool(let b)?: return b ? "yes" : "no"
            case .null?, nil: return "-"
            default: return JSONWriter.string(v!)
            }
        }
        var lines: [String] = []
        lines.append("state:      \(text(status["state"]))")
        let session = status["session"]
        lines.append("session:    \(text(session?["id"])) (generation \(text(session?["generation"])), reconnects \(text(session?["reconnects"])))")
        lines.append("upstream:   \(text(session?["url"])) [\(text(session?["protocol"]))]")
        if let rtt = session?["rtt_ms"] { lines.append("rtt:        \(text(rtt)) ms") }
        if let connected = session?["connected_at"], !connected.isNull { lines.append("connected:  \(text(connected))") }
        if let error = session?["last_error"], !error.isNull { lines.append("last error: \(text(error))") }
        let network = status["network"]
        lines.append("network:    online \(text(network?["online"])), via \(text(network?["default_interface"]))")
        let audio = status["audio"]
        lines.append("capture:    \(text(audio?["capture"]?["state"])) on \(text(audio?["capture"]?["device"])), xruns \(text(audio?["capture"]?["xruns"]))")
        lines.append("playback:   \(text(audio?["playback"]?["state"])) on \(text(audio?["playback"]?["device"])), underruns \(text(audio?["playback"]?["underruns"]))")
        lines.append("mic:        \(audio?["muted"]?.boolValue == true ? "muted" : "open"), volume \(text(audio?["volume"]))")
        if let echo = audio?["echo"] {
            // What an installer tunes echo_delay by: the canceller's delay and how much echo it removes.
            var line = "echo:       \(text(echo["mode"]))"
            if echo["mode"]?.stringValue == "cancel" {
                line += ", ERLE \(text(echo["erle_db"])) dB, delay \(text(echo["delay_ms"])) ms"
                line += echo["converged"]?.boolValue == true ? ", converged" : ", converging"
            }
            if let reason = echo["cancel_unavailable"], !reason.isNull { line += " (cancel cannot start: \(text(reason)))" }
            lines.append(line)
        }
        if let conversation = status["conversation"] {
            var line = "conversation: \(text(conversation["id"])), \(text(conversation["items"])) turns carried"
            if conversation["transcribing"]?.boolValue == false { line += " (the person's turns are not transcribed)" }
            if let next = conversation["next_rotation_s"], !next.isNull { line += ", next rotation in \(text(next)) s" }
            lines.append(line)
        }
        let buffer = status["buffer"]
        lines.append("buffer:     \(text(buffer?["queued_ms"])) ms queued, \(text(buffer?["dropped_ms"])) ms dropped")
        lines.append("uptime:     \(text(status["uptime_s"])) s, version \(text(status["version"]))")
        return lines.joined(separator: "\n")
    }

    /// One event as a terminal line: `01:02:03.456 session.state from=live to=degraded`.
    static func renderEvent(_ event: JSONValue) -> String {
        let ts = event["ts"]?.stringValue ?? ""
        let time = ts.count >= 23 ? String(ts.dropFirst(11).prefix(12)) : ts
        var line = "\(time) \(event["event"]?.stringValue ?? "?")"
        if case .object(let data)? = event["data"] {
            for (key, value) in data {
                if case .string(let s) = value { line += " \(key)=\(s)" } else { line += " \(key)=\(JSONWriter.string(value))" }
            }
        }
        return line
    }
}
