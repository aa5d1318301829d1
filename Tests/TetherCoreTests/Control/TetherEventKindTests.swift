import Testing
@testable import TetherCore

/// The wire form of every event, written out as the control socket sent it before events were
/// typed (taken from the `publish("…", [...])` call sites and the README's table; the
/// conversation events as DESIGN.md names them): the enum must reproduce each line byte for
/// byte, including key order, and put it in the same topic.
@Suite struct TetherEventKindTests {
    static let view = NetworkView(online: true, defaultInterface: "wlan0", kind: .wifi, addresses: ["192.0.2.7", "2001:db8::7"],
                                  primaryAddress: "192.0.2.7")

    struct Row: Sendable, CustomTestStringConvertible {
        var kind: TetherEventKind
        var topic: EventTopic
        var data: String
        var testDescription: String { kind.name }
    }

    static let rows: [Row] = [
        Row(kind: .sessionState(from: .live, to: .degraded, reason: "network.offline"), topic: .session,
            data: #"{"from":"live","to":"degraded","reason":"network.offline"}"#),
        Row(kind: .sessionLive(sessionID: "sess_1", generation: 3, afterMs: 412), topic: .session,
            data: #"{"id":"sess_1","generation":3,"after_ms":412}"#),
        Row(kind: .sessionLive(sessionID: nil, generation: 1, afterMs: 0), topic: .session,
            data: #"{"id":null,"generation":1,"after_ms":0}"#),
        Row(kind: .linkBlip(durationMs: 1520), topic: .session, data: #"{"duration_ms":1520}"#),
        Row(kind: .sessionLost(reason: "grace expired"), topic: .session, data: #"{"reason":"grace expired"}"#),
        Row(kind: .networkOnline(view), topic: .network,
            data: #"{"default_interface":"wlan0","kind":"wifi","addresses":["192.0.2.7","2001:db8::7"]}"#),
        Row(kind: .networkOffline, topic: .network, data: "{}"),
        Row(kind: .networkChange(view), topic: .network,
            data: #"{"default_interface":"wlan0","kind":"wifi","addresses":["192.0.2.7","2001:db8::7"]}"#),
        Row(kind: .speechStarted, topic: .speech, data: "{}"),
        Row(kind: .speechStopped, topic: .speech, data: "{}"),
        Row(kind: .responseAudioStarted(itemID: "item_1"), topic: .audio, data: #"{"item_id":"item_1"}"#),
        Row(kind: .responseAudioStarted(itemID: nil), topic: .audio, data: #"{"item_id":null}"#),
        Row(kind: .responseAudioDone(itemID: "item_1"), topic: .audio, data: #"{"item_id":"item_1"}"#),
        Row(kind: .responseAudioDone(itemID: "item_1", interruptedAfterMs: 340), topic: .audio,
            data: #"{"item_id":"item_1","interrupted":true,"played_ms":340}"#),
        Row(kind: .audioLevel(micDBFS: -42.5, outDBFS: -120), topic: .audio, data: #"{"mic_dbfs":-42.5,"out_dbfs":-120}"#),
        Row(kind: .audioXrun(.capture), topic: .audio, data: #"{"direction":"capture"}"#),
        Row(kind: .audioXrun(.playback), topic: .audio, data: #"{"direction":"playback"}"#),
        Row(kind: .toolCall(callID: "call_1", name: "wave", arguments: #"{"hand":"left"}"#), topic: .tool,
            data: #"{"call_id":"call_1","name":"wave","arguments":"{\"hand\":\"left\"}"}"#),
        Row(kind: .error(code: .toolTimeout, message: "call_1: no robot process answered within 10s"), topic: .error,
            data: #"{"code":"tool_timeout","message":"call_1: no robot process answered within 10s"}"#),
        Row(kind: .error(code: .upstreamError, message: "bad"), topic: .error, data: #"{"code":"upstream_error","message":"bad"}"#),
        Row(kind: .error(code: .configError, message: "x"), topic: .error, data: #"{"code":"config_error","message":"x"}"#),
        Row(kind: .conversationRotated(from: "sess_1", to: "sess_2", carriedItems: 6, waitedMs: 740, reason: .quiet), topic: .session,
            data: #"{"from":"sess_1","to":"sess_2","carried_items":6,"waited_ms":740,"forced":false,"reason":"quiet"}"#),
        Row(kind: .conversationRotated(from: "sess_2", to: "sess_3", carriedItems: 0, waitedMs: 0, reason: .serverCap), topic: .session,
            data: #"{"from":"sess_2","to":"sess_3","carried_items":0,"waited_ms":0,"forced":true,"reason":"server_cap"}"#),
        Row(kind: .conversationReset(reason: "forget"), topic: .session, data: #"{"reason":"forget"}"#),
    ]

    @Test(arguments: rows) func wireFormIsUnchanged(_ row: Row) {
        let event = TetherEvent(row.kind, unixMillis: 1_795_309_323_456)
        #expect(event.topic == row.topic)
        #expect(event.line == #"{"event":""# + row.kind.name + #"","ts":"2026-11-22T01:02:03.456Z","data":"# + row.data + "}")
    }

    @Test func namesAreThePublicOnes() {
        let names = Set(Self.rows.map(\.kind.name))
        #expect(names == [
            "session.state", "session.live", "link.blip", "session.lost",
            "network.online", "network.offline", "network.change",
            "speech.started", "speech.stopped",
            "response.audio.started", "response.audio.done", "audio.level", "audio.xrun",
            "tool.call", "error", "conversation.rotated", "conversation.reset",
        ])
    }
}
