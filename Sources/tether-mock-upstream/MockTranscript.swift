/// The mock's stand-in for speech recognition: one made-up word per 100 ms of audio.
///
/// Words are `<prefix>w1 <prefix>w2 ...` with a prefix unique in the process (`u<k>` for the
/// k-th user transcript, `r<n>` for the n-th assistant audio response), so a test can tell
/// every turn apart and find it again in what tetherd seeds into a later session, and can
/// predict the length from the audio alone.
struct MockTranscript {
    static let msPerWord = 100

    let prefix: String
    /// Words of the whole audio: at least one, so even a short turn leaves a trace.
    let totalWords: Int

    init(prefix: String, audioMs: Int) {
        self.prefix = prefix
        totalWords = max(1, audioMs / Self.msPerWord)
    }

    /// Words covering the first `ms` of the audio: none before any audio went out, then at least
    /// one, and never more than the whole. What a cancelled response's transcript keeps, like
    /// the real server, which transcribes only what it generated.
    func wordCount(spokenMs ms: Int) -> Int {
        guard ms > 0 else { return 0 }
        return min(totalWords, max(1, ms / Self.msPerWord))
    }

    /// Words `from..<to` as text; with `leadingSpace`, a delta that appends to earlier ones
    /// (deltas concatenate to the transcript, as the real server's do).
    func text(from: Int = 0, to: Int, leadingSpace: Bool = false) -> String {
        guard to > from else { return "" }
        let words = (from..<to).map { "\(prefix)w\($0 + 1)" }.joined(separator: " ")
        return leadingSpace && from > 0 ? " " + words : words
    }

    var fullText: String { text(to: totalWords) }
}
