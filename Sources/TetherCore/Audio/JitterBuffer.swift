import DequeModule

/// Response audio between the session, which receives it in bursts from the network, and the
/// playback thread, which must hand the device exactly one period at a time.
///
/// - Playback of an item starts only once `prebuffer` is queued, or once the item is complete
///   with less (a short reply must not wait for audio that will never come).
/// - If the audio of an item runs out before the item is complete (the network stalled), the
///   period is padded with silence, counted as an underrun, and the item prebuffers again.
///   The cut is faded out from the last sample and the resumed audio faded in over
///   `rampFrames`, so a gap never clicks. Audio that plays through is handed out bit-exact.
/// - Every frame of real audio handed out is counted per item: on barge-in the brain is told
///   exactly how much of the item was played, never more than it sent.
/// - A period holds audio of at most one item; items are separated by their own prebuffering.
///
/// Pure: no clock, no I/O. The playback thread owns the timing.
public struct JitterBuffer: Sendable {
    public struct Settings: Sendable, Equatable {
        public var framesPerPeriod: Int
        public var prebufferFrames: Int
        /// Length of the fade at the edges of an underrun gap.
        public var rampFrames: Int
        /// Audio queued beyond this is refused (and counted): a backlog this long means the
        /// device is gone or stuck, and memory must stay bounded.
        public var maxQueuedFrames: Int
        /// An item that stays starved this long (no audio, never completed: the upstream
        /// vanished mid-reply) is given up so that the device can stop.
        public var stallLimitFrames: Int

        public init(framesPerPeriod: Int, prebufferFrames: Int, rampFrames: Int, maxQueuedFrames: Int, stallLimitFrames: Int) {
            self.framesPerPeriod = max(1, framesPerPeriod)
            self.prebufferFrames = max(0, prebufferFrames)
            self.rampFrames = max(1, rampFrames)
            self.maxQueuedFrames = max(self.framesPerPeriod, maxQueuedFrames)
            self.stallLimitFrames = max(self.framesPerPeriod, stallLimitFrames)
        }

        /// The engine's defaults: 2 ms ramps, give up after 2 s of starvation, and a hard cap
        /// of `maxQueued`. The session stops reading the brain well before that
        /// (`DownlinkFlow` at `audio.playback.max_buffer`), so the cap only catches what one
        /// largest message can carry past it.
        public init(rate: Int, framesPerPeriod: Int, prebuffer: Duration, maxQueued: Duration = .seconds(120)) {
            self.init(framesPerPeriod: framesPerPeriod,
                      prebufferFrames: PCM16.frames(prebuffer, rate: rate),
                      rampFrames: max(1, rate / 500),
                      maxQueuedFrames: PCM16.frames(maxQueued, rate: rate),
                      stallLimitFrames: rate * 2)
        }
    }

    /// What one pulled period holds: `audioFrames` of the item's audio, then silence.
    public struct Period: Sendable, Equatable {
        /// The item the period belongs to (its audio, or the gap inside it). Meaningless when
        /// `hasItem` is false.
        public var itemID: String?
        public var hasItem: Bool
        public var audioFrames: Int
        /// The first audio of the item.
        public var startsItem: Bool
        /// The last audio of an item that is complete (or given up).
        public var endsItem: Bool
        /// The audio ran out mid-item in this period.
        public var underrun: Bool

        public init(itemID: String? = nil, hasItem: Bool = false, audioFrames: Int = 0, startsItem: Bool = false, endsItem: Bool = false, underrun: Bool = false) {
            self.itemID = itemID
            self.hasItem = hasItem
            self.audioFrames = audioFrames
            self.startsItem = startsItem
            self.endsItem = endsItem
            self.underrun = underrun
        }

        public static let silence = Period()
    }

    public enum Phase: Sendable, Equatable {
        /// Nothing to play.
        case idle
        /// Waiting for `prebuffer` (or completion) before the head item (re)starts.
        case buffering
        case playing
    }

    private struct Item {
        var id: String?
        var chunks: Deque<[Int16]> = []
        /// Samples of `chunks.first` already handed out.
        var headOffset = 0
        var queued = 0
        var complete = false
        var started = false
        var delivered = 0
    }

    public private(set) var settings: Settings
    public private(set) var phase: Phase = .idle
    /// Gaps inside items (network starvation), and the silence they inserted.
    public private(set) var underruns = 0
    public private(set) var insertedSilenceFrames = 0
    /// Audio refused because the queue was full.
    public private(set) var overflowFrames = 0
    /// Late audio of an item that barge-in already discarded.
    public private(set) var discardedFrames = 0

    private var items: Deque<Item> = []
    private var rampInPending = false
    private var lastSample: Int16 = 0
    private var stalledFrames = 0
    /// The item whose audio was handed out last: after its final period it may still be
    /// audible in the device buffer, so barge-in must still be able to name it.
    private var lastPulled: (id: String?, delivered: Int)?
    /// Delivered totals of recently finished items with ids, newest last.
    private var history: [(id: String, delivered: Int)] = []
    /// Items flushed by barge-in: more audio for them is in flight and must not be played.
    private var discarded: [String] = []
    /// A byte of an odd-length chunk, waiting for its partner in the next chunk of the item.
    private var pendingByte: (id: String?, byte: UInt8)?

    private static let historyLimit = 16
    private static let discardedLimit = 32

    public init(settings: Settings) {
        self.settings = settings
    }

    public mutating func update(settings: Settings) {
        self.settings = settings
    }

    // MARK: - Input (session side)

    /// Queue PCM16 little-endian mono audio of `itemID`. Audio of a new id completes the
    /// previous item: a reply's audio never interleaves with the next one.
    public mutating func enqueue(itemID: String?, pcm: some Collection<UInt8>) {
        if let id = itemID, discarded.contains(id) {
            discardedFrames += pcm.count / 2
            return
        }
        var bytes = Array(pcm)
        if let pending = pendingByte {
            pendingByte = nil
            if pending.id == itemID { bytes.insert(pending.byte, at: 0) }
        }
        if bytes.count % 2 == 1 { pendingByte = (itemID, bytes.removeLast()) }
        guard !bytes.isEmpty else { return }
        let samples = PCM16.samples(fromLittleEndian: bytes)
        let queued = queuedFrames
        guard queued + samples.count <= settings.maxQueuedFrames else {
            overflowFrames += samples.count
            return
        }
        if let last = items.indices.last, items[last].id == itemID {
            items[last].chunks.append(samples)
            items[last].queued += samples.count
        } else {
            if let last = items.indices.last { items[last].complete = true }
            var item = Item(id: itemID)
            item.chunks.append(samples)
            item.queued = samples.count
            items.append(item)
        }
        if phase == .idle { phase = .buffering }
    }

    /// No more audio will come for `itemID`.
    public mutating func finishItem(itemID: String?) {
        if pendingByte?.id == itemID { pendingByte = nil }
        if let index = items.lastIndex(where: { $0.id == itemID && !$0.complete }) {
            items[index].complete = true
        }
    }

    // MARK: - Output (playback thread)

    public var queuedFrames: Int { items.reduce(0) { $0 + $1.queued } }

    /// Nothing queued and no item in progress: the device can be stopped.
    public var isIdle: Bool { items.isEmpty }

    /// An item has started and is not finished (it may be starved right now): the device
    /// keeps running through the gap.
    public var isPlayingItem: Bool { items.first?.started == true }

    /// The next period would run dry mid-item: the item is playing and not complete, and less
    /// than a period of it is queued. While the device still holds plenty, the playback thread
    /// waits for more rather than pull (and play) a gap.
    public var wouldStarve: Bool {
        guard phase == .playing, let head = items.first, head.started, !head.complete else { return false }
        return head.queued < settings.framesPerPeriod
    }

    /// The head item may (re)start: enough is queued, or it is all there is.
    public var isReadyToPlay: Bool {
        guard let head = items.first else { return false }
        return head.complete || queuedFrames >= settings.prebufferFrames
    }

    /// Fill `out` (one period) and say what it holds. Always fills the whole buffer.
    public mutating func pull(into out: UnsafeMutableBufferPointer<Int16>) -> Period {
        let periodFrames = out.count
        if phase != .playing {
            if isReadyToPlay {
                phase = .playing
            } else {
                out.update(repeating: 0)
                return starvedPeriod(frames: periodFrames)
            }
        }
        guard !items.isEmpty else {
            phase = .idle
            out.update(repeating: 0)
            return .silence
        }

        var period = Period(itemID: items[0].id, hasItem: true)
        let count = copyAudio(into: out)
        period.audioFrames = count
        if count > 0 {
            if !items[0].started {
                items[0].started = true
                period.startsItem = true
            }
            if rampInPending {
                rampIn(out, frames: count)
                rampInPending = false
            }
            items[0].delivered += count
            lastSample = out[count - 1]
            stalledFrames = 0
        }
        lastPulled = (items[0].id, items[0].delivered)

        if items[0].queued == 0 && items[0].complete {
            fill(out, from: count, fadingFrom: nil)
            period.endsItem = true
            finishHead()
        } else if count < periodFrames {
            // Starved mid-item: fade the cut, count it, and prebuffer again.
            fill(out, from: count, fadingFrom: count > 0 ? out[count - 1] : lastSample)
            period.underrun = true
            underruns += 1
            insertedSilenceFrames += periodFrames - count
            stalledFrames = periodFrames - count
            rampInPending = true
            phase = .buffering
        }
        return period
    }

    /// Discard everything queued (barge-in). Returns the item being played, or about to be,
    /// and how many of its frames were handed out; nil when there is none.
    public mutating func flush() -> (itemID: String?, deliveredFrames: Int)? {
        // The head item if it has started (or nothing else was played); otherwise the item
        // played last, whose tail may still be in the device.
        var current: (itemID: String?, deliveredFrames: Int)?
        if let head = items.first, head.started || lastPulled == nil {
            current = (head.id, head.delivered)
        } else if let last = lastPulled {
            current = (last.id, last.delivered)
        }
        for item in items {
            if let id = item.id { markDiscarded(id) }
        }
        if let id = current?.itemID { markDiscarded(id) }
        if let head = items.first, head.started, let id = head.id { remember(id: id, delivered: head.delivered) }
        items.removeAll()
        phase = .idle
        rampInPending = false
        stalledFrames = 0
        pendingByte = nil
        lastPulled = nil
        return current
    }

    /// The device has played out everything handed to it: the last item is no longer
    /// audible, so a later barge-in has nothing of it to truncate.
    public mutating func deviceDrained() {
        if items.first?.started != true { lastPulled = nil }
    }

    /// Frames of `itemID` handed out so far (the head item, the last one played, or one of
    /// the recently finished ones).
    public func deliveredFrames(of itemID: String?) -> Int? {
        if let head = items.first, head.id == itemID, head.started { return head.delivered }
        if let last = lastPulled, last.id == itemID { return last.delivered }
        if let id = itemID, let entry = history.last(where: { $0.id == id }) { return entry.delivered }
        return nil
    }

    // MARK: - Private

    private mutating func copyAudio(into out: UnsafeMutableBufferPointer<Int16>) -> Int {
        var written = 0
        while written < out.count, let chunk = items[0].chunks.first {
            let offset = items[0].headOffset
            let n = min(out.count - written, chunk.count - offset)
            chunk.withUnsafeBufferPointer { src in
                (out.baseAddress! + written).update(from: src.baseAddress! + offset, count: n)
            }
            written += n
            items[0].queued -= n
            if offset + n == chunk.count {
                items[0].chunks.removeFirst()
                items[0].headOffset = 0
            } else {
                items[0].headOffset = offset + n
            }
        }
        return written
    }

    /// A period while (re)buffering: silence, counted as a gap when an item was interrupted.
    private mutating func starvedPeriod(frames: Int) -> Period {
        guard let head = items.first else { return .silence }
        guard head.started else { return Period(itemID: head.id, hasItem: true) }
        insertedSilenceFrames += frames
        stalledFrames += frames
        if stalledFrames >= settings.stallLimitFrames {
            // The rest of the item is not coming: give it up so the device can stop.
            items[0].complete = true
            items[0].chunks.removeAll()
            discardedFrames += items[0].queued
            items[0].queued = 0
            lastPulled = (head.id, head.delivered)
            finishHead()
            return Period(itemID: head.id, hasItem: true, endsItem: true)
        }
        return Period(itemID: head.id, hasItem: true)
    }

    private mutating func finishHead() {
        let head = items.removeFirst()
        if let id = head.id { remember(id: id, delivered: head.delivered) }
        rampInPending = false
        stalledFrames = 0
        // The next item prebuffers on its own; with nothing queued the device may stop.
        phase = items.isEmpty ? .idle : .buffering
    }

    private mutating func remember(id: String, delivered: Int) {
        history.removeAll { $0.id == id }
        history.append((id, delivered))
        if history.count > Self.historyLimit { history.removeFirst(history.count - Self.historyLimit) }
    }

    private mutating func markDiscarded(_ id: String) {
        guard !discarded.contains(id) else { return }
        discarded.append(id)
        if discarded.count > Self.discardedLimit { discarded.removeFirst(discarded.count - Self.discardedLimit) }
    }

    /// Silence from `start` to the end; with `fadingFrom`, the first `rampFrames` of it fall
    /// linearly from that sample to zero instead of stepping (a step is a click).
    private func fill(_ out: UnsafeMutableBufferPointer<Int16>, from start: Int, fadingFrom sample: Int16?) {
        guard start < out.count else { return }
        var index = start
        if let sample, sample != 0 {
            let ramp = settings.rampFrames
            let value = Int(sample)
            var step = 1
            while index < out.count && step < ramp {
                out[index] = Int16(value * (ramp - step) / ramp)
                index += 1
                step += 1
            }
        }
        while index < out.count {
            out[index] = 0
            index += 1
        }
    }

    /// Scale the first `rampFrames` of resumed audio up from near zero.
    private func rampIn(_ out: UnsafeMutableBufferPointer<Int16>, frames: Int) {
        let ramp = settings.rampFrames
        for i in 0..<min(ramp, frames) {
            out[i] = Int16(Int(out[i]) * (i + 1) / (ramp + 1))
        }
    }
}
