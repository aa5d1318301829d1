import Synchronization
import TetherCore

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

    /// The watchdog loop's name ("capture", "playback").
    var loopName: String { direction.rawValue }

    init(direction: AudioDirection, device: String, context: AudioContext) {
        self.direction = direction
        self.context = context
        self.status = AudioDeviceStatus(device: device)
    }

    /// Starts the thread unless it runs already. `beginRun` marks the owner's state as
    /// running under a new run number (so that a thread abandoned by an earlier stop, stuck in
    /// its device, can tell it is no longer wanted); `body` is the thread.
    func start(device: String, beginRun: () -> Int, body: @escaping @Sendable (Heartbeat, _ run: Int) -> Void) {
        thread.withLock { current in
            guard current == nil else { return }
            let run = beginRun()
            let beat = context.health.register(loopName)
            heartbeat.withLock { $0 = beat }
            do {
                current = try DedicatedThread.start(name: "tether-\(direction)") { body(beat, run) }
            } catch {
                beat.retire()
                status.failed(AlsaDeviceError(kind: .fault, code: 0, message: "cannot start the \(direction) thread: \(error)"), device: device)
            }
        }
    }

    /// Waits up to `timeout` for the thread (asked to stop by its owner) to end.
    @discardableResult
    func join(timeout: Duration) -> Bool {
        let current = thread.withLock { t in
            defer { t = nil }
            return t
        }
        let joined = current?.join(timeout: timeout) ?? true
        heartbeat.withLock { beat in
            beat?.retire()
            beat = nil
        }
        if !joined { context.logger.warning("\(direction) thread did not stop in time: stuck in the device") }
        return joined
    }

    /// The device life cycle, on the thread, until `settings` says to end.
    /// - settings: the device settings and their generation, or nil once the thread must end.
    /// - whileDown: runs while the device is down, before and during each wait.
    /// - stream: runs on the open device until an outcome.
    func runDevice<State>(state: Monitor<State>, heartbeat: Heartbeat,
                          settings: (State) -> (config: AudioDeviceConfig, generation: Int)?,
                          whileDown: (inout State) -> Void = { _ in },
                          stream: (AlsaPCM, _ generation: Int) -> Outcome) {
        AlsaDiagnostics.installOnCurrentThread()
        var backoff = Backoff(config: context.reopenBackoff)
        var lastError: String?
        while let (config, generation) = state.withLock({ settings($0) }) {
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
                    return settings(s)?.generation != generation
                }
            }
        }
    }
}
