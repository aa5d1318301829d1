import Logging
import Synchronization
import TetherCore

/// The speaker: a dedicated thread that pulls one period at a time from the jitter buffer,
/// applies the volume, meters it and blocks in the ALSA write. The device runs only while
/// there is something to say: once the last audio has played out it is stopped, and the next
/// reply prebuffers and starts it again cleanly.
///
/// Barge-in: the caller flushes the jitter buffer at once; the thread (the only one that
/// touches the device) rewinds what the device has not played yet and drops it within one
/// period, and reports how much of the item was really played.
final class AudioPlayback: Sendable {
    struct BargeRequest: Sendable {
        var serial: Int
        var itemID: String?
        var deliveredFrames: Int
    }

    struct BargeResult: Sendable {
        var serial: Int
        var itemID: String?
        var playedMs: Int
    }

    private struct State: AudioThreadState {
        var jitter: JitterBuffer
        var gain: SoftwareGain
        var config: PlaybackDeviceConfig
        var stopping = false
        var generation = 0
        var run = 0
        var deviceConfig: AudioDeviceConfig { config.device }
        /// The device holds (or is playing) audio: barge-in has to go through the thread.
        var deviceRunning = false
        /// The rate of the open device (ms conversions), the configured one until opened.
        var rate: Int
        var bargeSerial = 0
        var bargeRequest: BargeRequest?
        var bargeResult: BargeResult?
        /// Audio dropped because no device could play it.
        var droppedWhileDownFrames = 0
    }

    private typealias Outcome = AudioDeviceThread.Outcome

    private enum Step {
        case exit(Outcome)
        case bargeIn(BargeRequest)
        case write(JitterBuffer.Period, mayStop: Bool)
    }

    private let worker: AudioDeviceThread
    private let context: AudioContext
    private let state: Monitor<State>

    var status: AudioDeviceStatus { worker.status }

    init(config: PlaybackDeviceConfig, volume: Int, context: AudioContext) {
        self.context = context
        let device = config.device
        let settings = JitterBuffer.Settings(rate: device.rate, framesPerPeriod: device.framesPerPeriod, prebuffer: config.prebuffer,
                                             maxQueued: Self.hardCap(config))
        self.state = Monitor(State(jitter: JitterBuffer(settings: settings),
                                   gain: SoftwareGain(volume: volume, rampFrames: max(1, device.rate / 100)),
                                   config: config, rate: device.rate))
        self.worker = AudioDeviceThread(direction: .playback, device: device.device, context: context)
    }

    /// What the jitter buffer may hold at most: the flow-control limit plus room for what is
    /// already read when reading pauses (one largest upstream message: 4 MiB of PCM16 at 24 kHz
    /// mono is 87 s).
    static func hardCap(_ config: PlaybackDeviceConfig) -> Duration { config.maxBuffer + .seconds(120) }

    /// Reply audio queued and not yet played, for the session's downlink flow control.
    var queuedMs: Int { state.withLock { PCM16.milliseconds(frames: $0.jitter.queuedFrames, rate: $0.rate) } }

    /// Nothing queued and the device stopped: the speaker is silent.
    var isIdle: Bool { state.withLock { !$0.deviceRunning && $0.jitter.queuedFrames == 0 } }

    // MARK: - Session side

    func enqueue(itemID: String?, pcm: [UInt8]) {
        state.withLock { $0.jitter.enqueue(itemID: itemID, pcm: pcm) }
        state.notifyAll()
    }

    func finishItem(itemID: String?) {
        state.withLock { $0.jitter.finishItem(itemID: itemID) }
        state.notifyAll()
    }

    func setVolume(_ volume: Int) {
        state.withLock { $0.gain.setVolume(volume) }
    }

    var volume: Int { state.withLock { $0.gain.volume } }

    /// Discard everything queued, silence the device within one period, and say how much of
    /// the current item was played. Blocks the caller for at most about one period.
    func bargeIn(timeout: Duration) -> (itemID: String?, playedMs: Int)? {
        enum Plan {
            case nothing
            case answer(String?, Int)
            case wait(serial: Int, itemID: String?, fallbackMs: Int)
        }
        let plan = state.withLock { s -> Plan in
            guard let current = s.jitter.flush() else { return .nothing }
            let ms = PCM16.milliseconds(frames: current.deliveredFrames, rate: s.rate)
            guard s.deviceRunning else { return .answer(current.itemID, ms) }
            s.bargeSerial += 1
            s.bargeRequest = BargeRequest(serial: s.bargeSerial, itemID: current.itemID, deliveredFrames: current.deliveredFrames)
            return .wait(serial: s.bargeSerial, itemID: current.itemID, fallbackMs: ms)
        }
        state.notifyAll()
        switch plan {
        case .nothing:
            return nil
        case .answer(let id, let ms):
            return (id, ms)
        case .wait(let serial, let id, let fallbackMs):
            if let result = state.wait(until: MonoClock.now() + timeout, { s in s.bargeResult?.serial == serial ? s.bargeResult : nil }) {
                return (result.itemID, result.playedMs)
            }
            // The thread is stuck in the device: report what was handed to it, which is never
            // more than was received.
            context.logger.warning("barge-in: playback thread did not answer in time")
            return (id, fallbackMs)
        }
    }

    // MARK: - Control

    var config: PlaybackDeviceConfig { state.withLock { $0.config } }

    /// Underruns (network starvation inside an item) and other jitter-buffer counters.
    var jitterCounters: (underruns: Int, queuedMs: Int, droppedMs: Int) {
        state.withLock { s in
            (s.jitter.underruns,
             PCM16.milliseconds(frames: s.jitter.queuedFrames, rate: s.rate),
             PCM16.milliseconds(frames: s.jitter.overflowFrames + s.droppedWhileDownFrames, rate: s.rate))
        }
    }

    func start() {
        // Nobody can hear a reply while the speaker is gone: drop it rather than play it
        // late, and keep dropping while the device is down.
        worker.start(state: state, whileDown: { s in
            s.droppedWhileDownFrames += s.jitter.queuedFrames
            _ = s.jitter.flush()
        }, stream: { [self] pcm, generation, run, beat in
            stream(pcm, generation: generation, run: run, heartbeat: beat)
        })
    }

    func requestStop() { worker.requestStop(state: state) }

    @discardableResult
    func join(timeout: Duration) async -> Bool { await worker.join(timeout: timeout) }

    /// Why the thread ended on its own (`AudioDeviceThread.ended`).
    func ended() async -> String? { await worker.ended() }

    /// New settings: the device is reopened only if its own settings changed; a new prebuffer
    /// applies from the next item.
    func reconfigure(_ config: PlaybackDeviceConfig) {
        let reopen = state.withLock { s -> Bool in
            guard s.config != config else { return false }
            let deviceChanged = s.config.device != config.device
            s.config = config
            var settings = s.jitter.settings
            settings.prebufferFrames = PCM16.frames(config.prebuffer, rate: s.rate)
            settings.maxQueuedFrames = PCM16.frames(Self.hardCap(config), rate: s.rate)
            s.jitter.update(settings: settings)
            if deviceChanged { s.generation += 1 }
            return deviceChanged
        }
        if reopen { state.notifyAll() }
    }

    // MARK: - Thread

    private func stream(_ pcm: AlsaPCM, generation: Int, run: Int, heartbeat: Heartbeat) -> Outcome {
        let period = pcm.periodFrames
        let channels = pcm.channels
        let mono = UnsafeMutableBufferPointer<Int16>.allocate(capacity: period)
        mono.initialize(repeating: 0)
        let out = channels == 1 ? mono : UnsafeMutableBufferPointer<Int16>.allocate(capacity: period * channels)
        if channels != 1 { out.initialize(repeating: 0) }
        var ledger = PlayoutLedger(bufferFrames: pcm.bufferFrames)
        var running = false
        // The device holds reply audio (running may also mean streaming silence: cancel mode).
        var audible = false
        // Cancel mode: every period written goes to the echo canceller's reference too.
        var echoSerial = -1
        var echoWriter: EchoReferenceWriter?
        let beatSpacing = context.beatSpacing.nanoseconds
        var lastBeat = MonoTime.zero

        state.withLock { s in
            // Pull exactly what the device takes per period, at the rate it really runs.
            s.rate = pcm.rate
            s.jitter.update(settings: JitterBuffer.Settings(rate: pcm.rate, framesPerPeriod: period, prebuffer: s.config.prebuffer,
                                                            maxQueued: Self.hardCap(s.config)))
        }
        defer {
            if running { pcm.discardAndStop() }
            finish(ledger.reset(), interrupted: nil, at: MonoClock.now())
            state.withLock { s in
                s.deviceRunning = false
                s.jitter.deviceDrained()
                // A barge-in that arrived as we left: the device is silent now; answer it.
                if let request = s.bargeRequest {
                    s.bargeRequest = nil
                    s.bargeResult = BargeResult(serial: request.serial, itemID: request.itemID,
                                                playedMs: PCM16.milliseconds(frames: request.deliveredFrames, rate: pcm.rate))
                }
            }
            state.notifyAll()
            if channels != 1 { out.deallocate() }
            mono.deallocate()
        }

        // When what was written will have played out, at the device's rate: the audio the device
        // (and whatever sits behind it) still holds. Modelled from the writes, not asked of the
        // device: a plugin chain may buffer more than its own delay reports.
        var deviceEnd = MonoTime.zero
        let periodTime = Duration.nanoseconds(Int64(period) * 1_000_000_000 / Int64(max(1, pcm.rate)))
        // Keep at least this much in the device while waiting for the brain's next chunk.
        let keep = periodTime + .milliseconds(5)

        while true {
            let now = MonoClock.now()
            // A reply arriving in chunks, each a little faster than real time, must not be cut
            // by the thread running ahead of it: while the device still holds audio, wait for
            // the next chunk instead of playing a gap (a real stall still underruns, later).
            let holdUntil = running ? deviceEnd - keep : now
            let deadline = holdUntil > now ? min(holdUntil, now + context.heartbeatInterval) : now + context.heartbeatInterval
            let serial = context.echoSerial.load(ordering: .relaxed)
            if serial != echoSerial {
                echoSerial = serial
                echoWriter = makeEchoWriter(pcm)
            }
            // Cancel mode keeps the device streaming silence between replies: the reference
            // timeline stays continuous and the canceller's echo path stays learnt.
            let streaming = echoWriter != nil
            let step = state.wait(until: deadline) { s -> Step? in
                if let exit = s.exit(run: run, generation: generation) { return .exit(exit) }
                if let request = s.bargeRequest {
                    s.bargeRequest = nil
                    return .bargeIn(request)
                }
                guard running || s.jitter.isReadyToPlay || streaming else { return nil }
                if running && s.jitter.wouldStarve && MonoClock.now() < holdUntil { return nil }
                let period = s.jitter.pull(into: mono)
                s.gain.apply(to: mono)
                return .write(period, mayStop: !s.jitter.isPlayingItem && !s.jitter.isReadyToPlay)
            }
            guard let step else {
                heartbeat.beat()  // idle: nothing to say
                continue
            }
            switch step {
            case .exit(let outcome):
                return outcome

            case .bargeIn(let request):
                let rewound = running ? pcm.discardAndStop() : 0
                echoWriter?.rewound(rewound)
                audible = false
                let taken = ledger.rewind(rewound).first { $0.itemID == request.itemID }?.audioFrames ?? 0
                let played = max(0, request.deliveredFrames - taken)
                let playedMs = PCM16.milliseconds(frames: played, rate: pcm.rate)
                running = false
                finish(ledger.reset(), interrupted: (request.itemID, playedMs), at: MonoClock.now())
                status.set(.idle)
                state.withLock { s in
                    s.deviceRunning = false
                    s.jitter.deviceDrained()
                    s.bargeResult = BargeResult(serial: request.serial, itemID: request.itemID, playedMs: playedMs)
                }
                state.notifyAll()
                heartbeat.beat()

            case .write(let chunk, let mayStop):
                if !running {
                    running = true
                    deviceEnd = MonoClock.now()
                    finish(ledger.reset(), interrupted: nil, at: MonoClock.now())
                }
                if !audible && (chunk.audioFrames > 0 || !streaming) {
                    audible = true
                    status.set(.playing)
                    state.withLock { $0.deviceRunning = true }
                }
                context.levels.out(UnsafeBufferPointer(mono), at: MonoClock.now())
                if channels != 1 {
                    ChannelMix.upmix(UnsafeBufferPointer(mono), channels: channels, into: out)
                }
                let result = pcm.writePeriod(from: UnsafeRawPointer(out.baseAddress!))
                let now = MonoClock.now()
                echoWriter?.wrote(UnsafeBufferPointer(mono), queued: pcm.delay(), at: now)
                deviceEnd = max(deviceEnd, now) + periodTime
                // Progress: the device took a period. (Stuck in the write, we do not get here.)
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
                    context.events.publish(.audioXrun(.playback))
                case .ok:
                    break
                }
                for event in ledger.record(chunk, frames: period) {
                    switch event {
                    case .started(let id):
                        context.gate.withLock { $0.speakerStarted(at: now) }
                        context.events.publish(.responseAudioStarted(itemID: id))
                    case .done(let id):
                        context.events.publish(.responseAudioDone(itemID: id))
                        if ledger.activeItems.isEmpty { context.gate.withLock { $0.speakerStopped(at: now) } }
                    }
                }
                if mayStop && ledger.isDrained && (audible || !streaming) {
                    // Only silence is left in the device: the reply is over. The device stops
                    // until the next reply, or streams on in cancel mode.
                    if !streaming {
                        pcm.discardAndStop()
                        running = false
                    }
                    audible = false
                    finish(ledger.reset(), interrupted: nil, at: now)
                    status.set(.idle)
                    state.withLock { s in
                        s.deviceRunning = false
                        s.jitter.deviceDrained()
                    }
                }
            }
        }
    }

    /// The echo reference's writer for the open device when `cancel` runs (nil otherwise).
    private func makeEchoWriter(_ pcm: AlsaPCM) -> EchoReferenceWriter? {
        let settings = context.echoSettings.withLock { $0 }
        guard settings.echo == .cancel else { return nil }
        return EchoReferenceWriter(reference: context.echoReference, playbackRate: pcm.rate, captureRate: settings.capture.rate,
                                   periodFrames: pcm.periodFrames)
    }

    /// Items that were still audible when the device stopped are done now; the one barge-in
    /// cut short says so and how much of it was played.
    private func finish(_ items: [String?], interrupted: (itemID: String?, playedMs: Int)?, at now: MonoTime) {
        for id in items {
            let playedMs = interrupted.flatMap { $0.itemID == id ? $0.playedMs : nil }
            context.events.publish(.responseAudioDone(itemID: id, interruptedAfterMs: playedMs))
        }
        if !items.isEmpty { context.gate.withLock { $0.speakerStopped(at: now) } }
    }
}
