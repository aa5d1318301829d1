import Testing
@testable import TetherCore

@Suite struct ControlRequestTests {
    func decode(_ text: String) -> Result<ControlRequest, ControlFailure> { ControlRequest.decode(line: Array(text.utf8)) }

    @Test func decodesCommands() throws {
        #expect(try decode(#"{"id":1,"cmd":"status"}"#).get() == ControlRequest(id: 1, command: .status))
        #expect(try decode(#"{"id":"a","cmd":"volume","level":40}"#).get().command == .volume(40))
        #expect(try decode(#"{"cmd":"subscribe","topics":["session","tool"]}"#).get().command == .subscribe(topics: [.session, .tool]))
        #expect(try decode(#"{"cmd":"subscribe"}"#).get().command == .subscribe(topics: Set(EventTopic.allCases)))
        #expect(try decode(#"{"cmd":"tool-result","call_id":"c1","output":{"ok":true}}"#).get().command
            == .toolResult(callID: "c1", output: #"{"ok":true}"#))
        #expect(try decode(#"{"cmd":"say","text":"hello"}"#).get().command == .say("hello"))
        #expect(try decode(#"{"cmd":"debug-fault","component":"network-monitor"}"#).get().command
            == .debugFault(component: "network-monitor"))
    }

    @Test(arguments: [
        (#"{"id":2,"cmd":"volume","level":140}"#, ControlError.Code.invalidArgument, JSONValue.number(2)),
        (#"{"id":3,"cmd":"volume","level":"x"}"#, .invalidArgument, .number(3)),
        (#"{"id":4,"cmd":"dance"}"#, .unknownCommand, .number(4)),
        (#"{"id":5}"#, .invalidRequest, .number(5)),
        (#"[1,2]"#, .invalidRequest, .null),
        (#"{"id":6,"cmd":"subscribe","topics":["weather"]}"#, .invalidArgument, .number(6)),
        (#"{"id":7,"cmd":"say","text":""}"#, .invalidArgument, .number(7)),
        (#"{nope"#, .invalidJSON, .null),
        (#"{"id":8,"cmd":"debug-fault"}"#, .invalidArgument, .number(8)),
    ])
    func refusesWithTheRightCode(line: String, code: ControlError.Code, id: JSONValue) throws {
        guard case .failure(let failure) = decode(line) else {
            Issue.record("accepted \(line)")
            return
        }
        #expect(failure.error.code == code)
        #expect(failure.id == id)
        let response = ControlResponse.failure(id: failure.id, failure.error)
        #expect(try JSONParser.parse(response)["ok"] == false)
    }

    @Test func eventsCarryTopicAndTimestamp() throws {
        let event = TetherEvent(.linkBlip(durationMs: 1520), unixMillis: 1_795_309_323_456)
        #expect(event.topic == .session)
        let line = try JSONParser.parse(event.line)
        #expect(line["event"] == "link.blip")
        #expect(line["ts"] == "2026-11-22T01:02:03.456Z")
        #expect(line["data"]?["duration_ms"] == 1520)
        #expect(TetherEvent(.responseAudioStarted(itemID: nil), unixMillis: 0).topic == .audio)
        #expect(TetherEvent(.toolCall(callID: "c", name: "n", arguments: "{}"), unixMillis: 0).topic == .tool)
        #expect(Timestamp.iso8601(unixMillis: 0) == "1970-01-01T00:00:00.000Z")
        #expect(Timestamp.iso8601(unixMillis: 951_782_400_000) == "2000-02-29T00:00:00.000Z")
    }

    @Test func statusLineReadsLikeSystemctl() {
        #expect(StatusLine(state: .live, protocolName: "openai-realtime", rttMs: 41, bufferedMs: 0).text
            == "live · openai-realtime · rtt 41 ms · buffered 0 ms")
        #expect(StatusLine(state: .offline, protocolName: "pcm-stream", bufferedMs: 1200, networkOnline: false, lastError: "network offline").text
            == "offline · pcm-stream · buffered 1200 ms · network offline · network offline")
    }
}
