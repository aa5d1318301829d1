import NIOCore

/// Sends a response's audio in fixed chunks, faster than real time, on the event loop.
///
/// Chunk `k` is due at `start + k * interval` (deadline-based, so timer jitter does not add up).
/// A stall pauses it; resuming restarts the pacing from the chunk it stopped at. With no
/// interval (`--response-speed 0`) everything goes out at once.
final class AudioStreamer {
    let audio: ResponseAudio
    let chunkBytes: Int
    let interval: TimeAmount?
    private let loop: EventLoop
    private let onChunk: ([UInt8]) -> Void
    private let onFinish: () -> Void

    private(set) var sentBytes = 0
    private(set) var finished = false
    private(set) var paused = false
    private var chunksSinceBase = 0
    private var base = NIODeadline.now()
    private var scheduled: Scheduled<Void>?

    init(
        audio: ResponseAudio, chunkBytes: Int, interval: TimeAmount?, loop: EventLoop,
        onChunk: @escaping ([UInt8]) -> Void, onFinish: @escaping () -> Void
    ) {
        self.audio = audio
        self.chunkBytes = max(2, chunkBytes & ~1)
        self.interval = interval
        self.loop = loop
        self.onChunk = onChunk
        self.onFinish = onFinish
    }

    func start(paused startPaused: Bool = false) {
        base = .now()
        chunksSinceBase = 0
        if startPaused { paused = true } else { tick() }
    }

    func pause() {
        guard !finished, !paused else { return }
        paused = true
        scheduled?.cancel()
        scheduled = nil
    }

    func resume() {
        guard !finished, paused else { return }
        paused = false
        base = .now()
        chunksSinceBase = 0
        tick()
    }

    /// Stops without calling `onFinish`.
    func cancel() {
        finished = true
        scheduled?.cancel()
        scheduled = nil
    }

    private func tick() {
        scheduled = nil
        guard !finished, !paused else { return }
        guard let interval else {
            while sentBytes < audio.byteCount && !finished && !paused { sendNext() }
            finishIfDone()
            return
        }
        sendNext()
        if finishIfDone() { return }
        chunksSinceBase += 1
        let due = base + TimeAmount.nanoseconds(interval.nanoseconds * Int64(chunksSinceBase))
        scheduled = loop.assumeIsolated().scheduleTask(deadline: due) { [weak self] in self?.tick() }
    }

    private func sendNext() {
        let chunk = audio.chunk(offset: sentBytes, count: chunkBytes)
        sentBytes += chunk.count
        if !chunk.isEmpty { onChunk(chunk) }
    }

    @discardableResult
    private func finishIfDone() -> Bool {
        guard sentBytes >= audio.byteCount, !finished else { return finished }
        finished = true
        onFinish()
        return true
    }
}
