/// The conversation as text, kept across upstream sessions (rule 13). Pure and clock-injected:
/// the session feeds it what the brain reports (items in conversation order, transcripts,
/// audio lengths, barge-ins, tool calls and answers) and seeds every new session with
/// `turns()`.
///
/// Order is the brain's: an item gets its place when the brain adds it (`itemAdded`), and its
/// text when the transcript arrives, which for the person's words may be after the robot has
/// begun to answer. Bounded by `maxItems` and `maxChars`, oldest turns dropped first and
/// counted; a conversation idle for longer than `maxAge` starts afresh under a new id.
public struct ConversationLedger: Sendable {
    public struct Limits: Sendable, Equatable {
        /// Whether turns are kept at all (the id is kept either way).
        public var carry: Bool
        public var maxItems: Int
        public var maxChars: Int
        public var maxAge: Duration
        public init(carry: Bool = true, maxItems: Int = 24, maxChars: Int = 8000, maxAge: Duration = .seconds(900)) {
            self.carry = carry
            self.maxItems = maxItems
            self.maxChars = maxChars
            self.maxAge = maxAge
        }
    }

    private enum Kind: Sendable, Equatable {
        case user
        case assistant
        case tool(callID: String, name: String, arguments: String)
    }

    private struct Entry: Sendable {
        var itemID: String?
        var kind: Kind
        /// nil until the transcript (or the tool's answer) arrives.
        var text: String?
        /// Assistant audio received for this item.
        var audioMs = 0
        /// Set when barge-in cut the item: how much of it was heard.
        var playedMs: Int?

        var turn: ConversationTurn? {
            guard let text else { return nil }
            switch kind {
            case .user:
                return text.isEmpty ? nil : .user(text)
            case .assistant:
                guard let playedMs else { return text.isEmpty ? nil : .assistant(text, interrupted: false) }
                let heard = ConversationLedger.heardPart(of: text, playedMs: playedMs, audioMs: audioMs)
                return heard.isEmpty ? nil : .assistant(heard, interrupted: true)
            case .tool(let callID, let name, let arguments):
                return .tool(callID: callID, name: name, arguments: arguments, output: text)
            }
        }
    }

    public private(set) var id: String
    public private(set) var limits: Limits
    /// Turns dropped to stay within the bounds, over the whole conversation.
    public private(set) var droppedItems = 0
    private var entries: [Entry] = []
    private var lastActivity: MonoTime?

    public init(id: String, limits: Limits) {
        self.id = id
        self.limits = limits
    }

    public mutating func update(limits: Limits) {
        self.limits = limits
        if !limits.carry { entries.removeAll() }
        enforceBounds()
    }

    // MARK: What the brain reports

    /// The brain added a message to its conversation: its place in the order.
    public mutating func itemAdded(_ itemID: String, role: ConversationRole, now: MonoTime) {
        noteActivity(now)
        guard limits.carry, index(of: itemID) == nil else { return }
        entries.append(Entry(itemID: itemID, kind: role == .user ? .user : .assistant))
        enforceBounds()
    }

    /// The person's words of `itemID`, from the input transcription.
    public mutating func userTranscript(_ itemID: String?, _ text: String, now: MonoTime) {
        setText(text, of: itemID, kind: .user, now: now)
    }

    /// The robot's words of `itemID`, from the output audio transcript (or a text response).
    public mutating func assistantTranscript(_ itemID: String?, _ text: String, now: MonoTime) {
        setText(text, of: itemID, kind: .assistant, now: now)
    }

    /// Reply audio of `itemID` arrived: the length the played share is measured against.
    public mutating func assistantAudio(_ itemID: String?, milliseconds: Int, now: MonoTime) {
        noteActivity(now)
        guard limits.carry, let itemID else { return }
        let i = index(of: itemID) ?? appendPlaceholder(itemID, .assistant)
        entries[i].audioMs += milliseconds
    }

    /// Barge-in cut `itemID` after `playedMs` were heard: only that share is carried.
    public mutating func assistantInterrupted(_ itemID: String?, playedMs: Int, now: MonoTime) {
        noteActivity(now)
        guard limits.carry, let itemID, let i = index(of: itemID) else { return }
        entries[i].playedMs = max(0, playedMs)
        enforceBounds()
    }

    /// The brain called a tool; carried once a robot process (or the timeout) answers it.
    public mutating func toolCalled(_ callID: String, name: String, arguments: String, now: MonoTime) {
        noteActivity(now)
        guard limits.carry, toolIndex(callID) == nil else { return }
        entries.append(Entry(itemID: nil, kind: .tool(callID: callID, name: name, arguments: arguments)))
        enforceBounds()
    }

    public mutating func toolAnswered(_ callID: String, output: String, now: MonoTime) {
        noteActivity(now)
        guard limits.carry, let i = toolIndex(callID) else { return }
        entries[i].text = output
        enforceBounds()
    }

    /// Something happened in the conversation (speech, reply audio): it is not idle.
    public mutating func noteActivity(_ now: MonoTime) {
        lastActivity = max(lastActivity ?? now, now)
    }

    // MARK: Starting afresh

    /// The conversation was idle for longer than `maxAge`: it starts afresh as `freshID`.
    /// True when it did.
    public mutating func expireIfIdle(now: MonoTime, freshID: @autoclosure () -> String) -> Bool {
        guard let last = lastActivity, now - last > limits.maxAge else { return false }
        reset(id: freshID())
        return true
    }

    /// Forget everything (`forget`, or an expired conversation): a new conversation `id`.
    public mutating func reset(id: String) {
        self.id = id
        entries.removeAll()
        lastActivity = nil
        droppedItems = 0
    }

    // MARK: What is carried

    /// The complete turns, oldest first: what the next session is seeded with.
    public func turns() -> [ConversationTurn] {
        var out = entries.compactMap(\.turn)
        // A single turn longer than the whole budget keeps its beginning.
        if out.count == 1, out[0].chars > limits.maxChars { out[0] = Self.clipped(out[0], to: limits.maxChars) }
        return out
    }

    public var itemCount: Int { entries.reduce(0) { $0 + ($1.turn == nil ? 0 : 1) } }

    public var charCount: Int { turns().reduce(0) { $0 + $1.chars } }

    // MARK: Bounds

    private mutating func enforceBounds() {
        // Placeholders whose text never came (a failed transcription) must not pile up.
        let placeholderCap = limits.maxItems * 2 + 16
        while entries.count > placeholderCap { dropOldest() }
        while true {
            let complete = entries.compactMap(\.turn)
            let chars = complete.reduce(0) { $0 + $1.chars }
            guard complete.count > limits.maxItems || (chars > limits.maxChars && complete.count > 1) else { return }
            dropOldest()
        }
    }

    private mutating func dropOldest() {
        let removed = entries.removeFirst()
        if removed.turn != nil { droppedItems += 1 }
    }

    // MARK: Helpers

    private mutating func setText(_ text: String, of itemID: String?, kind: Kind, now: MonoTime) {
        noteActivity(now)
        guard limits.carry else { return }
        let i = itemID.flatMap { index(of: $0) } ?? appendPlaceholder(itemID, kind)
        entries[i].text = text
        enforceBounds()
    }

    private mutating func appendPlaceholder(_ itemID: String?, _ kind: Kind) -> Int {
        entries.append(Entry(itemID: itemID, kind: kind))
        return entries.count - 1
    }

    private func index(of itemID: String) -> Int? {
        entries.lastIndex { $0.itemID == itemID }
    }

    private func toolIndex(_ callID: String) -> Int? {
        entries.lastIndex { if case .tool(let id, _, _) = $0.kind { return id == callID } else { return false } }
    }

    /// The share of `text` that `playedMs` of `audioMs` carried, cut back to a word boundary:
    /// the brain must not believe the person heard what the speaker never played.
    static func heardPart(of text: String, playedMs: Int, audioMs: Int) -> String {
        guard audioMs > 0, playedMs > 0 else { return "" }
        guard playedMs < audioMs else { return text }
        let keep = Int(Double(text.count) * Double(playedMs) / Double(audioMs))
        guard keep > 0 else { return "" }
        let end = text.index(text.startIndex, offsetBy: keep)
        var heard = text[..<end]
        // Cut inside a word: keep only the words that were heard whole.
        if end < text.endIndex, !text[end].isWhitespace {
            guard let space = heard.lastIndex(where: \.isWhitespace) else { return "" }
            heard = heard[..<space]
        }
        return String(heard.trimmingTrailingWhitespace())
    }

    static func clipped(_ turn: ConversationTurn, to chars: Int) -> ConversationTurn {
        switch turn {
        case .user(let text): return .user(String(text.prefix(chars)))
        case .assistant(let text, let interrupted): return .assistant(String(text.prefix(chars)), interrupted: interrupted)
        case .tool: return turn
        }
    }
}

extension Substring {
    fileprivate func trimmingTrailingWhitespace() -> Substring {
        var s = self
        while let last = s.last, last.isWhitespace { s = s.dropLast() }
        return s
    }
}
