import Synchronization
import TetherCore

/// What the device life cycle reads of an audio thread's state, kept in the owner's monitor
/// beside the owner's own fields so that one lock covers both.
protocol AudioThreadState: Sendable {
    /// Set to make the thread close its device and end.
    var stopping: Bool { get set }
    /// Which start() the running thread belongs to: a thread abandoned by an earlier stop
    /// (stuck in its device) must not carry on beside its successor.
    var run: Int { get set }
    /// Bumped to make the thread close and reopen its device with `deviceConfig`.
    var generation: Int { get }
    var deviceConfig: AudioDeviceConfig { get }
}

extension AudioThreadState {
    /// Why the thread of `run`, streaming on the device of `generation`, must leave it now
    /// (nil: carry on).
    func exit(run: Int, generation: Int) -> AudioDeviceThread.Outcome? {
        if stopping || self.run != run { return .stopped }
        return self.generation != generation ? .reconfigure : nil
    }
}

/// The thread behind one audio direction, the same for the microphone and the speaker: started
/// and joined here with its heartbeat, it lives the device's life cycle. Open the device the
/// current settings name; stream until told to stop or to reconfigure, or until the device
/// fails; after a failure, report it in `status` (logged once per distinct error), wait with
/// backoff while beating (a thread waiting for its device is healthy, one stuck inside ALSA is
/// not), and open it again. A device that ran for 5 s earns a quick first retry.
///
/// What happens on the open device (reading periods, or writing them) is the owner's.
final class AudioDeviceThread: Sendable {
    /// What ended a stretch of streaming on an open device.
    enum Outcome {
        case stopped, reconfigure
        case fault(AlsaDeviceError)
    }

    let direction: AudioDirection
    let status: AudioDeviceStatus
    private let context: AudioContext
    private let thread = Mutex<DedicatedThread?>(nil)
    private let heartbeat = Mutex<Heartbeat?>(nil)
    /// Why the current start's thread ended without being asked to (or never started).
    private let failure = Mutex(OnceSignal<String>())

    init(direction: AudioDirection, device: String, context: AudioContext) {
        self.direction = direction
        self.context = context
        self.status = AudioDeviceStatus(device: device)
    }

    /// Starts the thread unless it runs already: it lives the device life cycle with the
    /// settings in `state`, calls `stream` on each opened device, and `whileDown` while the
    /// device is down (before and during each wait).
    func start<State: AudioThreadState>(state: Monitor<State>,
                                        whileDown: @escaping @Sendable (inout State) -> Void = { _ in },
                                        stream: @escaping @Sendable (AlsaPCM, _ generation: Int, _ run: Int, Heartbeat) -> Outcome) {
        thread.withLock { current in
            guard current == nil else { return }
            let (run, device) = state.withLock { s -> (Int, String) in
                s.stopping = false
                s.run += 1
                return (s.run, s.deviceConfig.device)
            }
            let beat = context.health.register(direction.rawValue)
            heartbeat.withLock { $0 = beat }
            let failure = OnceSignal<String>()
            self.failure.withLock { $0 = failure }
            do {
                current = try DedicatedThread.start(name: "tether-\(direction)") { [self] in
                    if let refused = AudioThreadPriority.raiseCurrentThread() {
                        context.logger.debug("\(direction) thread keeps the default priority (nice \(AudioThreadPriority.nice) refused: \(refused))")
                    }
                    runDevice(state: state, run: run, heartbeat: beat, whileDown: whileDown) { pcm, generation in
                        stream(pcm, generation, run, beat)
                    }
                    let (current, stopping) = state.withLock { ($0.run == run, $0.stopping) }
                    if current { status.set(.stopped) }
                    // The life cycle only returns when told to; anything else is a thread gone
                    // wrong, and the direction is dead until the daemon restarts.
                    if current && !stopping { failure.signal("the \(direction) thread ended without being asked to") }
                }
            } catch {
                beat.retire()
                let message = "cannot start the \(direction) thread: \(error)"
                status.failed(AlsaDeviceError(kind: .fault, code: 0, message: message), device: device)
                failure.signal(message)
            }
        }
    }

    /// Asks the thread to end; `join` waits for it.
    func requestStop<State: AudioThreadState>(state: Monitor<State>) {
        state.withLock { $0.stopping = true }
        state.notifyAll()
    }

    /// Waits up to `timeout` for the thread (asked to stop by its owner) to end, without holding
    /// a thread of the concurrency pool: the thread signals its own end.
    @discardableResult
    func join(timeout: Duration) async -> Bool {
        let current = thread.withLock { t in
            defer { t = nil }
            return t
        }
        let joined = await current?.finish(within: timeout) ?? true
        heartbeat.withLock { beat in
            beat?.retire()
            beat = nil
        }
        if !joined { context.logger.warning("\(direction) thread did not stop in time: stuck in the device") }
        return joined
    }

    /// Resumes with the reason once the thread of the latest start has ended without being asked
    /// to, or could not be started; with nil when the calling task is cancelled. A device that
    /// fails is not an end: the thread retries it.
    func ended() async -> String? {
        await failure.withLock { $0 }.wait()
    }

    /// The device life cycle, on the thread, until the thread of `run` must end.
    private func runDevice<State: AudioThreadState>(state: Monitor<State>, run: Int, heartbeat: Heartbeat,
                                                    whileDown: (inout State) -> Void,
                                                    stream: (AlsaPCM, _ generation: Int) -> Outcome) {
        AlsaDiagnostics.installOnCurrentThread()
        var backoff = Backoff(config: context.reopenBackoff)
        var lastError: String?
        while let (config, generation) = state.withLock({ s in
            s.stopping || s.run != run ? nil : (s.deviceConfig, s.generation)
        }) {
            status.update {
                $0.state = .opening
                $0.device = config.device
            }
            heartbeat.beat()
            let openedAt = MonoClock.now()
            let outcome: Outcome
            do {
                let pcm = try AlsaPCM.open(device: config.device, direction: direction, rate: config.rate,
                                           channels: config.channels, periodFrames: config.framesPerPeriod)
                status.opened(pcm)
                context.logger.info("\(direction) device opened", metadata: [
                    "device": "\(pcm.device)", "rate": "\(pcm.rate)", "channels": "\(pcm.channels)",
                    "period_frames": "\(pcm.periodFrames)", "buffer_frames": "\(pcm.bufferFrames)",
                ])
                lastError = nil
                outcome = stream(pcm, generation)
                pcm.close()
            } catch {
                outcome = .fault(error)
            }
            switch outcome {
            case .stopped:
                return
            case .reconfigure:
                backoff.reset()
            case .fault(let error):
                status.failed(error, device: config.device)
                if error.message != lastError {
                    context.logger.warning("\(direction) device unusable, retrying", metadata: ["error": "\(error.message)"])
                }
                lastError = error.message
                if MonoClock.now() - openedAt > .seconds(5) { backoff.reset() }
                state.withLock(whileDown)
                _ = context.pause(backoff.nextDelay(unit: 0.5), on: state, heartbeat: heartbeat) { s in
                    whileDown(&s)
                    return s.exit(run: run, generation: generation) != nil
                }
            }
        }
    }
}
