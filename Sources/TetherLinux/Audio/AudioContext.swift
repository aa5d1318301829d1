import Logging
import Synchronization
import TetherCore

/// What the capture and playback threads share: where they report (events, health, log,
/// levels), and the live settings that couple them (the echo gate closes the mic while the
/// speaker plays; mute).
final class AudioContext: Sendable {
    let events: EventBus
    let logger: Logger
    let health: HealthRegistry
    /// Threads beat at least this often while they wait (idle speaker, device retry).
    let heartbeatInterval: Duration
    /// The mic audio the uplink sends at once (the uplink stage's batch): the capture thread
    /// may hold a period until the batch is complete (`EchoCancelPolicy.periodsPerRun`).
    let uplinkBatch: Duration
    /// Delays between attempts to reopen a missing or failed device.
    let reopenBackoff: BackoffConfig
    let levels: AudioLevels
    let gate: Mutex<EchoGate>
    let muted = Atomic<Bool>(false)
    /// What the speaker played, for the echo canceller (`cancel` mode).
    let echoReference = EchoReference()
    let echoStatus: Mutex<EchoStatus>
    /// The canceller's settings (`cancel` runs: tail, extra delay, noise suppression, capture
    /// rate); `echoSerial` is bumped on each change so the threads notice without a lock.
    let echoSettings: Mutex<AudioConfig>
    let echoSerial = Atomic<Int>(0)

    /// The echo settings start as `config`'s; `applyEcho` changes them later.
    init(events: EventBus, logger: Logger, health: HealthRegistry, heartbeatInterval: Duration, uplinkBatch: Duration,
         reopenBackoff: BackoffConfig, config: AudioConfig) {
        self.events = events
        self.logger = logger
        self.health = health
        self.heartbeatInterval = max(.milliseconds(10), heartbeatInterval)
        self.uplinkBatch = uplinkBatch
        self.reopenBackoff = reopenBackoff
        self.levels = AudioLevels(events: events)
        self.gate = Mutex(EchoGate(mode: config.echo, tail: config.echoTail))
        self.echoStatus = Mutex(EchoStatus(mode: config.echo))
        self.echoSettings = Mutex(config)
    }

    /// Put the echo settings of `config` in force (the canceller is compiled in, and its
    /// resampler takes any two rates the configuration allows, so every mode can run). The same
    /// settings again change nothing: a canceller that could not start stays replaced by the gate.
    func applyEcho(_ config: AudioConfig) {
        let settingsChanged = echoSettings.withLock { s -> Bool in
            defer { s = config }
            return s != config
        }
        guard settingsChanged else { return }
        let mode = config.echo
        echoStatus.withLock { s in
            if s.mode != mode || s.cancelUnavailable != nil { s = EchoStatus(mode: mode) }
        }
        gate.withLock {
            $0.mode = mode
            $0.tail = config.echoTail
        }
        echoSerial.add(1, ordering: .relaxed)
    }

    /// `cancel` is configured but its canceller cannot start (`reason`): the echo gate closes the
    /// microphone while the speaker plays instead, so the brain still does not hear the robot.
    /// Shown in `status.audio.echo`, logged once per cause; new settings try the canceller again.
    func cancellerUnavailable(_ reason: String) {
        gate.withLock { $0.mode = .gate }
        let news = echoStatus.withLock { s -> Bool in
            defer { s = EchoStatus(mode: .gate, cancelUnavailable: reason) }
            return s.cancelUnavailable != reason
        }
        if news {
            logger.error("echo: the canceller cannot start, the echo gate runs instead", metadata: ["error": "\(reason)"])
        }
    }

    /// Streaming threads beat at most this often: often enough for any watchdog (a quarter of
    /// the interval), rarely enough that the health registry's locks stay out of the
    /// per-period cost.
    var beatSpacing: Duration { min(heartbeatInterval / 4, .milliseconds(250)) }

    /// Sleep up to `delay` before the next device attempt, beating on the way; returns early
    /// (false) when `interrupted` says the thread must move on (stop or new settings).
    func pause<S>(_ delay: Duration, on monitor: Monitor<S>, heartbeat: Heartbeat, interrupted: (inout S) -> Bool) -> Bool {
        let end = MonoClock.now() + delay
        while true {
            heartbeat.beat()
            let now = MonoClock.now()
            if now >= end { return true }
            let slice = min(end, now + heartbeatInterval)
            if monitor.wait(until: slice, { interrupted(&$0) ? true : nil }) != nil { return false }
        }
    }
}
