import NIOCore
import Synchronization
import TetherCore

/// Where the uplink stage writes: the link that carries mic audio.
protocol UplinkSink {
    var isWritable: Bool { get }
    /// One audio message, not flushed yet.
    func sendAudio(_ pcm: [UInt8])
    func flush()
    /// A ping now, whose pong acknowledges everything written before it.
    func pingNow()
}

/// Mic audio between capture and the upstream (rule 5). The capture thread appends every
/// period to the `UplinkQueue` and, while live, wakes the session's loop once a batch is
/// queued; on the loop the session pumps the queue into the link that carries the uplink, as
/// `UplinkFlow` allows. Frames stay queued until a pong on that link acknowledges them;
/// when the carrier changes they are rewound and go out first on the next one.
public final class UplinkStage: Sendable {
    enum Mode: UInt8 { case discard, buffer, live }

    // Shared with the capture thread.
    private let queue: Mutex<UplinkQueue>
    private let mode = Atomic<UInt8>(Mode.buffer.rawValue)
    private let pumpScheduled = Atomic<Bool>(false)
    private let flowLimits: UplinkFlow.Limits
    private let loop: any EventLoop

    /// Confined to `loop`.
    private struct LoopSide {
        var flow: UplinkFlow
        /// The generation whose connection carried the frames not yet acknowledged.
        var carrier: UInt64?
        var batchReady: (() -> Void)?
        /// A rotation hands the uplink over: nothing more goes out on the carrier, and nothing
        /// yet on its successor, until the carrier has acknowledged what it was sent.
        var draining = false
    }
    private let onLoop: NIOLoopBoundBox<LoopSide>

    public init(limits: UplinkQueue.Limits, loop: any EventLoop, flow: UplinkFlow.Limits = .init()) {
        self.queue = Mutex(UplinkQueue(limits: limits))
        self.flowLimits = flow
        self.loop = loop
        self.onLoop = .makeBoxSendingValue(LoopSide(flow: UplinkFlow(limits: flow)), eventLoop: loop)
    }

    // MARK: Capture thread

    /// A mic period. Never blocks beyond a short lock.
    public func captured(_ frame: CapturedFrame) {
        let mode = Mode(rawValue: mode.load(ordering: .acquiring)) ?? .discard
        guard mode != .discard else { return }
        let queuedMs = queue.withLock { queue in
            queue.append(frame.pcm, capturedAt: frame.capturedAt, duration: frame.duration, sending: mode == .live)
            return queue.queuedMs
        }
        if mode == .live && flowLimits.batchReady(queuedMs: queuedMs) && !pumpScheduled.exchange(true, ordering: .acquiringAndReleasing) {
            loop.execute { self.batchIsReady() }
        }
    }

    // MARK: Any thread

    /// How much mic audio the loop is woken for and sends at once while live.
    public var batch: Duration { .milliseconds(flowLimits.batchMs) }

    public var queuedMs: Int64 { queue.withLock { $0.queuedMs } }

    /// `status.buffer`.
    var status: JSONObject {
        queue.withLock { q in
            ["queued_ms": .number(Double(q.queuedMs)), "dropped_ms": .number(Double(q.droppedMs)),
             "unacknowledged_frames": .number(Double(q.unacknowledgedFrames)), "frames": .number(Double(q.frameCount))]
        }
    }

    func update(limits: UplinkQueue.Limits) { queue.withLock { $0.update(limits: limits) } }

    // MARK: The session's loop

    /// Who pumps once capture has queued a batch: the session, which knows the carrier link.
    func whenBatchReady(_ pump: @escaping () -> Void) { onLoop.value.batchReady = pump }

    private func batchIsReady() {
        pumpScheduled.store(false, ordering: .releasing)
        onLoop.value.batchReady?()
    }

    var carrier: UInt64? { onLoop.value.carrier }

    /// The session settled in `state`; `generation` is its established connection. Live
    /// audio is sent, buffering states keep it for replay, the others forget it.
    func sessionSettled(in state: SessionState, connection generation: UInt64?) {
        if state == .live, let generation, onLoop.value.carrier != generation {
            // Frames another connection left unacknowledged go first on this one.
            queue.withLock { $0.rewind() }
            onLoop.value.carrier = generation
            onLoop.value.flow.connectionChanged()
        }
        let next: Mode = state == .live ? .live : (state.buffersAudio ? .buffer : .discard)
        let previous = Mode(rawValue: mode.exchange(next.rawValue, ordering: .acquiringAndReleasing))
        if next == .discard && previous != .discard {
            queue.withLock { $0.discardAll() }
        }
    }

    /// Forgets every queued frame without counting it lost (`forget`: not for the next session).
    func discardQueued() { queue.withLock { $0.discardAll() } }

    /// While draining, frames are queued but not sent (a rotation's hand-over).
    func setDraining(_ draining: Bool) { onLoop.value.draining = draining }

    /// Every frame written on the carrier has been acknowledged by a pong.
    var carrierAcknowledgedAll: Bool { queue.withLock { $0.unacknowledgedFrames == 0 } }

    /// The connection of `generation` is gone: what it did not acknowledge is sent again.
    func connectionEnded(_ generation: UInt64) {
        guard onLoop.value.carrier == generation else { return }
        queue.withLock { $0.rewind() }
        onLoop.value.carrier = nil
        onLoop.value.flow.connectionChanged()
    }

    /// The uplink position a ping sent now on `generation` vouches for.
    func mark(for generation: UInt64) -> UInt64 {
        onLoop.value.carrier == generation ? queue.withLock { $0.sentMark } : 0
    }

    /// A pong on `generation` proved the peer read up to `mark`. True when sending, held
    /// for the replay window, may resume.
    func acknowledged(upTo mark: UInt64, on generation: UInt64) -> Bool {
        guard onLoop.value.carrier == generation else { return false }
        queue.withLock { $0.acknowledge(upTo: mark) }
        return onLoop.value.flow.acknowledged()
    }

    /// Writes what `UplinkFlow` allows into the carrier link; returns the messages written.
    func pump(into sink: some UplinkSink) -> Int {
        pumpScheduled.store(false, ordering: .releasing)
        guard !onLoop.value.draining else { return 0 }
        var written = 0
        pumping: while true {
            let writable = sink.isWritable
            let (step, chunk) = queue.withLock { q -> (UplinkFlow.Step, [UInt8]?) in
                let step = onLoop.value.flow.next(q.backlog, writable: writable)
                guard case .send(let maxBytes) = step else { return (step, nil) }
                return (step, q.takeUnsent(maxBytes: maxBytes)?.bytes)
            }
            switch step {
            case .send:
                guard let chunk else { break pumping }
                sink.sendAudio(chunk)
                written += 1
            case .pingAndAwaitWindow:
                if written > 0 { sink.flush() }
                sink.pingNow()
                return written
            case .hold:
                break pumping
            }
        }
        if written > 0 { sink.flush() }
        return written
    }
}
