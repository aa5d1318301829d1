import TetherCore

/// What a test of conversation continuity compares: the transcripts the mock sent (what tetherd
/// keeps in its ledger), and what tetherd sent back to seed a new session (the items it created,
/// the pcm-stream hello naming the conversation). All in `GET /mock/status`, the last
/// `MockStats.longListCap` of each.
extension MockState {
    /// A client `conversation.item.create`, with how much audio the connection had sent before
    /// it: seeding must come before the first audio byte. Also `conn-<n>.items.jsonl` when
    /// recording. `audio` strings in the item become their decoded length, as in `events.jsonl`
    /// (seeded items are text; an audio item would bloat the status answer).
    func itemCreated(on connection: WebSocketConnection, event: JSONObject) {
        let record: JSONObject = [
            "connection": .number(Double(connection.number)),
            "item": Recorder.replacingAudio(event["item"] ?? .null),
            "previous_item_id": event["previous_item_id"] ?? .null,
            "audio_bytes_before": .number(Double(connection.receivedPCMBytes)),
            "ms_since_open": .number(Double(connection.ageMs)),
        ]
        stats.remember(.object(record), in: \.itemsCreated, cap: MockStats.longListCap)
        recorder?.createdItem(connection.number, line: record)
    }

    /// A pcm-stream `hello` as the client sent it (it names the conversation to continue).
    func helloReceived(on connection: Int, hello: JSONValue) {
        stats.remember(["connection": .number(Double(connection)), "hello": hello], in: \.hellos,
                       cap: MockStats.longListCap)
    }

    /// A transcript the mock sent: a user turn's (`conversation.item.input_audio_transcription.completed`)
    /// or an assistant turn's (`response.output_audio_transcript.done`). `cancelled`: the
    /// response was cut short and the text covers only the audio sent; `done_sent` false: the
    /// connection ended mid-response, so the client saw only the deltas (`text` is what they
    /// held).
    func transcriptSent(on connection: Int, role: String, itemID: String, responseID: String? = nil, text: String,
                        audioMs: Int, cancelled: Bool = false, doneSent: Bool = true)
    {
        let record: JSONObject = [
            "connection": .number(Double(connection)), "role": .string(role), "item_id": .string(itemID),
            "response_id": JSONValue(responseID), "text": .string(text), "cancelled": .bool(cancelled),
            "done_sent": .bool(doneSent), "audio_ms": .number(Double(audioMs)),
        ]
        stats.remember(.object(record), in: \.transcripts, cap: MockStats.longListCap)
    }
}
