import Logging
import Synchronization
import TetherCore

/// The microphone: a dedicated thread that blocks in ALSA reads one period at a time, downmixes
/// to mono, applies mute (muted: nothing is handed on) and the echo gate (gated: silence of the
/// same length, the timeline stays continuous), meters the level and hands each period to the
/// sink on the same thread (the sink must be quick: it queues for the uplink). With the echo
/// canceller on, each other period waits for the next and the two are cancelled and handed on
/// together, as the uplink sends them.
///
/// A device that is missing, vanishes or misbehaves is closed, reported in `status` and
/// reopened with backoff; the thread beats its heartbeat on every period and while it waits,
/// and never while it is stuck inside ALSA.
final class AudioCapture: Sendable {
    private struct Control: AudioThreadState {
        var stopping = false
        var config: AudioDeviceConfig
        var generation = 0
        var run = 0
        var deviceConfig: AudioDeviceConfig { config }
    }

    private typealias Outcome = AudioDeviceThread.Outcome

    private let worker: AudioDeviceThread
    private let context: AudioContext
    private let sink: @Sendable (CapturedFrame) -> Void
    private let control: Monitor<Control>

    var status: AudioDeviceStatus { worker.status }

    init(config: AudioDeviceConfig, context: AudioContext, sink: @escaping @Sendable (CapturedFrame) -> Void) {
        self.context = context
        self.sink = sink
        self.control = Monitor(Control(config: config))
        self.worker = AudioDeviceThread(direction: .capture, device: config.device, context: context)
    }

    var config: AudioDeviceConfig { control.withLock { $0.config } }

    func start() {
        worker.start(state: control) { [self] pcm, generation, run, beat in
            stream(pcm, generation: generation, run: run, heartbeat: beat)
        }
    }

    /// Ask the thread to end; `join` waits for it.
    func requestStop() { worker.requestStop(state: control) }

    @discardableResult
    func join(timeout: Duration) async -> Bool { await worker.join(timeout: timeout) }

    /// Why the thread ended on its own (`AudioDeviceThread.ended`).
    func ended() async -> String? { await worker.ended() }

    /// New device settings: reopen only if they differ.
    func reconfigure(_ config: AudioDeviceConfig) {
        let changed = control.withLock { c -> Bool in
            guard c.config != config else { return false }
            c.config = config
            c.generation += 1
            return true
        }
        if changed { control.notifyAll() }
    }

    // MARK: - Thread

    private func stream(_ pcm: AlsaPCM, generation: Int, run: Int, heartbeat: Heartbeat) -> Outcome {
        let period = pcm.periodFrames
        let channels = pcm.channels
        let periodDuration = PCM16.duration(frames: period, rate: pcm.rate)
        // Per-period time math in plain nanoseconds: Duration arithmetic is 128-bit.
        let periodNanos = periodDuration.nanoseconds
        // Buffers live as long as the device: nothing is allocated per sample.
        let raw = UnsafeMutableBufferPointer<Int16>.allocate(capacity: period * channels)
        raw.initialize(repeating: 0)
        let mono = channels == 1 ? raw : UnsafeMutableBufferPointer<Int16>.allocate(capacity: period)
        if channels != 1 { mono.initialize(repeating: 0) }
        defer {
            if channels != 1 { mono.deallocate() }
            raw.deallocate()
        }
        var check = RealTimeCheck(rate: pcm.rate, periodFrames: period, bufferFrames: pcm.bufferFrames)
        // The echo canceller of this device's life (cancel mode), remade when its settings change.
        var echoStage: EchoCancelStage?
        var echoSerial = -1
        // In cancel mode a period may wait for the next and both go through the canceller
        // together (`EchoCancelPolicy.periodsPerRun`): the uplink sends them together anyway.
        let pairs = EchoCancelPolicy.periodsPerRun(period: periodDuration, uplinkBatch: context.uplinkBatch) == 2
        let waiting = UnsafeMutableBufferPointer<Int16>.allocate(capacity: period)
        waiting.initialize(repeating: 0)
        defer { waiting.deallocate() }
        var waitingRead: (at: MonoTime, captureDelay: Int?)?
        let beatSpacing = context.beatSpacing.nanoseconds
        var lastBeat = MonoTime.zero

        /// The period in `samples`, read at `readAt`: echo, mute, gate, level, then the sink.
        func deliver(_ samples: UnsafeMutableBufferPointer<Int16>, readAt: MonoTime, captureDelay: Int?) {
            // Before mute: a muted microphone still keeps the canceller's echo path learnt.
            echoStage?.process(samples, readAt: readAt, captureDelay: captureDelay)
            if context.muted.load(ordering: .relaxed) {
                context.levels.mic(nil, at: readAt)
                return
            }
            let start = MonoTime(nanoseconds: readAt.nanoseconds - periodNanos)
            let gated = context.gate.withLock { $0.apply(to: samples, start: start, duration: periodDuration) }
            context.levels.mic(UnsafeBufferPointer(samples), at: readAt)
            sink(CapturedFrame(pcm: PCM16.bytes(UnsafeBufferPointer(samples)), capturedAt: start, duration: periodDuration, gated: gated))
        }
        /// A period left waiting goes on before anything else does (or the thread ends).
        func deliverWaiting() {
            guard let read = waitingRead else { return }
            waitingRead = nil
            deliver(waiting, readAt: read.at, captureDelay: read.captureDelay)
        }
        // However the stream ends (stop, new settings, a fault), nothing read is left behind.
        defer { deliverWaiting() }
        _ = pcm.start()

        while true {
            if let exit = control.withLock({ $0.exit(run: run, generation: generation) }) {
                return exit
            }
            let result = pcm.readPeriod(into: UnsafeMutableRawPointer(raw.baseAddress!))
            let now = MonoClock.now()
            // Progress: a period came in. (Stuck in the read above, we do not get here.)
            if now.nanoseconds - lastBeat.nanoseconds >= beatSpacing {
                heartbeat.beat()
                lastBeat = now
            }
            switch result {
            case .fault(let error):
                return .fault(error)
            case .recovered:
                status.update {
                    $0.xruns = pcm.xruns + pcm.suspends
                    $0.suspends = pcm.suspends
                }
                context.events.publish(.audioXrun(.capture))
                check.reset()
            case .ok:
                break
            }
            if check.record(frames: period, at: now) {
                return .fault(AlsaDeviceError(kind: .fault, code: 0, message:
                    "capture device '\(pcm.device)' delivers audio faster than real time: its input ended or the plugin chain is broken"))
            }
            if channels != 1 {
                ChannelMix.downmix(UnsafeBufferPointer(raw), channels: channels, into: mono)
            }
            let serial = context.echoSerial.load(ordering: .relaxed)
            if serial != echoSerial {
                deliverWaiting()
                echoSerial = serial
                echoStage = makeEchoStage(pcm)
            }
            let captureDelay = echoStage == nil ? nil : pcm.delay()
            if pairs && echoStage != nil && waitingRead == nil {
                _ = waiting.update(fromContentsOf: mono)
                waitingRead = (now, captureDelay)
                continue
            }
            deliverWaiting()
            deliver(mono, readAt: now, captureDelay: captureDelay)
            if MonoClock.now().nanoseconds - now.nanoseconds > periodNanos {
                // The sink held the thread for a whole period: the device may overrun next.
                status.update { $0.overruns += 1 }
            }
        }
    }

    /// The canceller for the open device when `cancel` runs (nil otherwise, and when it cannot
    /// start: then the gate runs).
    private func makeEchoStage(_ pcm: AlsaPCM) -> EchoCancelStage? {
        let settings = context.echoSettings.withLock { $0 }
        guard settings.echo == .cancel else { return nil }
        do {
            return try EchoCancelStage(context: context, rate: pcm.rate,
                                       periodFrames: pcm.periodFrames, config: settings)
        } catch {
            context.cancellerUnavailable(error.description)
            return nil
        }
    }
}
