/// When the speaker plays what: the sample at ring position `position` left the device at
/// `time`. Taken from `snd_pcm_delay` right after a write (the frames still queued in front
/// of the speaker), so it moves with the device's real pace, not with our writes.
public struct PlayoutAnchor: Sendable, Equatable {
    public var time: MonoTime
    public var position: Int64

    public init(time: MonoTime, position: Int64) {
        self.time = time
        self.position = position
    }
}

/// The echo canceller's reference: exactly what the playback thread handed the speaker
/// (after volume), mono at the capture rate, numbered by position since the playback device
/// opened. The last `capacity` samples are kept; the playback thread appends each period it
/// writes (silence included: in `cancel` mode the device never stops, so positions advance
/// with the device clock) and the capture thread reads back the stretch the microphone heard.
///
/// Pure storage with no clock: the storage is allocated once, appends and reads copy without
/// allocating, so both real-time threads may use it under a short lock.
public struct EchoReferenceRing: Sendable {
    public let capacity: Int
    private var samples: [Int16]
    /// The position after the last appended sample.
    public private(set) var end: Int64 = 0
    /// The position after the last sample that was not silence: everything from here to `end`
    /// is digital silence, and a microphone that can only have heard that hears no echo.
    public private(set) var soundEnd: Int64 = 0
    public private(set) var anchor: PlayoutAnchor?
    /// Bumped by `reset` (the playback device reopened): positions start again from 0.
    public private(set) var generation = 0

    public init(capacity: Int) {
        self.capacity = max(1, capacity)
        samples = [Int16](repeating: 0, count: self.capacity)
    }

    /// The playback device reopened: a new timeline.
    public mutating func reset() {
        end = 0
        soundEnd = 0
        anchor = nil
        generation += 1
    }

    public mutating func append(_ chunk: UnsafeBufferPointer<Int16>) {
        var lastSound = -1
        samples.withUnsafeMutableBufferPointer { store in
            var index = Int(end % Int64(capacity))
            for (i, sample) in chunk.enumerated() {
                store[index] = sample
                if sample != 0 { lastSound = i }
                index += 1
                if index == capacity { index = 0 }
            }
        }
        if lastSound >= 0 { soundEnd = end + Int64(lastSound) + 1 }
        end += Int64(chunk.count)
    }

    /// Right after an append: `queuedFrames` (at the ring's rate) are still in front of the
    /// speaker, so the sample at `end - queuedFrames` is the one playing at `time`.
    public mutating func anchor(at time: MonoTime, queuedFrames: Int) {
        anchor = PlayoutAnchor(time: time, position: end - Int64(max(0, queuedFrames)))
    }

    /// The last `frames` appended were taken back from the device (barge-in rewound them):
    /// they never played, so they are no echo to cancel.
    public mutating func unplay(_ frames: Int) {
        let n = Int64(max(0, min(frames, capacity)))
        guard n > 0 else { return }
        samples.withUnsafeMutableBufferPointer { store in
            var position = end - n
            while position < end {
                store[Int(position % Int64(capacity))] = 0
                position += 1
            }
        }
        soundEnd = min(soundEnd, end - n)
    }

    /// Copy the samples from `position` on into `out`; positions not written yet, or already
    /// overwritten, read as silence.
    public func read(from position: Int64, into out: UnsafeMutableBufferPointer<Int16>) {
        var i = 0
        forEachRun(from: position, count: out.count) { run, stored in
            if let stored {
                for s in stored { out[i] = s; i += 1 }
            } else {
                for _ in 0..<run { out[i] = 0; i += 1 }
            }
        }
    }

    /// The stretch of `count` positions from `position` as runs in storage order: each a
    /// contiguous slice of the store, or (nil) a run of silence outside what is kept. No
    /// division per sample: these run on the audio threads over tens of thousands of samples.
    private func forEachRun(from position: Int64, count: Int, _ body: (Int, UnsafeBufferPointer<Int16>?) -> Void) {
        let oldest = max(0, end - Int64(capacity))
        samples.withUnsafeBufferPointer { store in
            var p = position
            let stop = position + Int64(count)
            while p < stop {
                if p < oldest || p >= end {
                    let next = p < oldest ? min(oldest, stop) : stop
                    body(Int(next - p), nil)
                    p = next
                    continue
                }
                let index = Int(p % Int64(capacity))
                let run = Int(min(stop, end) - p)
                let n = min(run, capacity - index)
                body(n, UnsafeBufferPointer(rebasing: store[index..<(index + n)]))
                p += Int64(n)
            }
        }
    }

    /// Whether every sample from `position` on is silence (or not written yet). Positions start
    /// at 0, so a `soundEnd` of 0 means nothing but silence was ever played.
    public func isSilent(from position: Int64) -> Bool { soundEnd <= max(0, position) }

    /// Mean square of each block of `blockFrames` samples from `position` on (the delay
    /// estimator's envelope of the reference), into `out`.
    public func blockPowers(from position: Int64, blockFrames: Int, into out: UnsafeMutableBufferPointer<Float>) {
        var block = 0
        var filled = 0
        var sum: Int64 = 0
        let scale = 1 / Float(blockFrames)
        forEachRun(from: position, count: out.count * blockFrames) { run, stored in
            var k = 0
            while k < run {
                let n = min(run - k, blockFrames - filled)
                if let stored { sum += PCM16.sumOfSquares(UnsafeBufferPointer(rebasing: stored[k..<(k + n)])) }
                k += n
                filled += n
                if filled == blockFrames {
                    out[block] = Float(sum) * scale
                    block += 1
                    filled = 0
                    sum = 0
                }
            }
        }
    }
}
