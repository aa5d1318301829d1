import DequeModule

/// What the playback device holds: the periods written to it that may not have been heard
/// yet. It turns "handed to the device" into "heard": an item is done when its last audio has
/// left the device buffer, and barge-in subtracts the audio it rewound out of the buffer from
/// what the item is reported to have played.
///
/// Positions count frames written since the device started. A device buffer of `bufferFrames`
/// means that once that many frames were written after some audio, that audio has played.
/// Pure: the playback thread feeds it what it wrote and what it rewound.
public struct PlayoutLedger: Sendable {
    public enum Event: Sendable, Equatable {
        /// The first audio of an item went to the device.
        case started(itemID: String?)
        /// The item's last audio has played out.
        case done(itemID: String?)
    }

    private struct Record {
        var itemID: String?
        var hasItem: Bool
        var frames: Int
        var audioFrames: Int
    }

    private struct Active {
        var itemID: String?
        /// Position just after the item's last audio frame, once that was written.
        var end: Int64?
    }

    public private(set) var bufferFrames: Int
    public private(set) var written: Int64 = 0
    private var lastAudioEnd: Int64 = .min / 2
    private var records: Deque<Record> = []
    private var recordedFrames = 0
    private var active: Deque<Active> = []

    public init(bufferFrames: Int) {
        self.bufferFrames = max(1, bufferFrames)
    }

    /// `period` (from the jitter buffer) was written as `frames` frames.
    public mutating func record(_ period: JitterBuffer.Period, frames: Int) -> [Event] {
        var events: [Event] = []
        if period.startsItem {
            active.append(Active(itemID: period.itemID))
            events.append(.started(itemID: period.itemID))
        }
        let audio = min(period.audioFrames, frames)
        records.append(Record(itemID: period.itemID, hasItem: period.hasItem, frames: frames, audioFrames: audio))
        recordedFrames += frames
        // Keep just enough history to cover a full buffer (what a rewind can take back).
        while let first = records.first, recordedFrames - first.frames >= bufferFrames {
            recordedFrames -= first.frames
            records.removeFirst()
        }
        if audio > 0 { lastAudioEnd = written + Int64(audio) }
        written += Int64(frames)
        if period.endsItem, period.hasItem {
            if let index = active.firstIndex(where: { $0.itemID == period.itemID && $0.end == nil }) {
                active[index].end = lastAudioEnd
            }
        }
        while let first = active.first, let end = first.end, end + Int64(bufferFrames) <= written {
            active.removeFirst()
            events.append(.done(itemID: first.itemID))
        }
        return events
    }

    /// The newest `frames` frames were rewound out of the device: returns the audio frames
    /// that took back, per item, newest first.
    public mutating func rewind(_ frames: Int) -> [(itemID: String?, audioFrames: Int)] {
        var remaining = max(0, frames)
        var removed: [(itemID: String?, audioFrames: Int)] = []
        while remaining > 0, var last = records.popLast() {
            let take = min(remaining, last.frames)
            // Audio sits at the start of a period: taking frames off the end reaches it last.
            let audioTaken = max(0, last.audioFrames - (last.frames - take))
            last.frames -= take
            last.audioFrames -= audioTaken
            recordedFrames -= take
            written -= Int64(take)
            remaining -= take
            if audioTaken > 0, last.hasItem {
                if let i = removed.firstIndex(where: { $0.itemID == last.itemID }) {
                    removed[i].audioFrames += audioTaken
                } else {
                    removed.append((last.itemID, audioTaken))
                }
            }
            if last.frames > 0 { records.append(last) }
        }
        lastAudioEnd = min(lastAudioEnd, written)
        for i in active.indices {
            if let end = active[i].end, end > written { active[i].end = written }
        }
        return removed
    }

    /// Everything written after the last audio fills the buffer: nothing audible is left.
    public var isDrained: Bool { written - lastAudioEnd >= Int64(bufferFrames) }

    /// Items whose audio went to the device and that are not done yet, oldest first.
    public var activeItems: [String?] { active.map(\.itemID) }

    /// The device stopped (dropped or closed): start over. Returns the items that were still
    /// active, oldest first; what happened to them is the caller's to say.
    public mutating func reset(bufferFrames: Int? = nil) -> [String?] {
        let still = activeItems
        if let bufferFrames { self.bufferFrames = max(1, bufferFrames) }
        written = 0
        lastAudioEnd = .min / 2
        records.removeAll()
        recordedFrames = 0
        active.removeAll()
        return still
    }
}
