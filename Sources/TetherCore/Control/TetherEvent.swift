/// Something that happened, as robot processes see it on the control socket, as the journal
/// records it, and as tests wait for it. Names and payloads are the public surface of DESIGN.md.
public struct TetherEvent: Sendable, Equatable {
    public var kind: TetherEventKind
    /// Wall-clock time in milliseconds since the Unix epoch, for the `ts` field.
    public var unixMillis: Int64

    public init(_ kind: TetherEventKind, unixMillis: Int64) {
        self.kind = kind
        self.unixMillis = unixMillis
    }

    public var name: String { kind.name }
    public var topic: EventTopic { kind.topic }
    public var data: JSONObject { kind.data }

    /// The control socket line: `{"event":...,"ts":...,"data":{...}}`.
    public var line: String {
        JSONWriter.string(.object(["event": .string(name), "ts": .string(Timestamp.iso8601(unixMillis: unixMillis)), "data": .object(data)]))
    }
}

/// What a control-socket client subscribes to. `error` events reach every subscriber.
public enum EventTopic: String, Sendable, CaseIterable, Hashable {
    case session, network, audio, speech, tool, error
}

public enum Timestamp {
    /// `2026-11-22T01:02:03.456Z` from milliseconds since the epoch (proleptic Gregorian, UTC).
    public static func iso8601(unixMillis: Int64) -> String {
        let millis = Int(((unixMillis % 1000) + 1000) % 1000)
        let totalSeconds = (unixMillis - Int64(millis)) / 1000
        var days = Int(totalSeconds / 86400)
        var secondsOfDay = Int(totalSeconds % 86400)
        if secondsOfDay < 0 { secondsOfDay += 86400; days -= 1 }
        // Howard Hinnant's civil_from_days.
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        func pad(_ n: Int, _ width: Int) -> String {
            let s = String(n)
            return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
        }
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(secondsOfDay / 3600, 2)):\(pad(secondsOfDay / 60 % 60, 2)):\(pad(secondsOfDay % 60, 2)).\(pad(millis, 3))Z"
    }
}
