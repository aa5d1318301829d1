import Logging
import Synchronization
import TetherCore

/// The robot's ears and mouth, as the daemon sees them: the capture thread hands microphone
/// periods to `onCapturedFrame`, the session feeds reply audio in with `enqueuePlayback`, and
/// the engine reports on the `EventBus`:
///
/// - `audio.level {mic_dbfs, out_dbfs}` at most 10 Hz while capture or playback runs,
/// - `audio.xrun {direction}` when a device over/underran and was recovered,
/// - `response.audio.started {item_id}` when an item's first audio reaches the device, and
///   `response.audio.done {item_id[, interrupted, played_ms]}` once its last audio has
///   played out (or barge-in cut it).
///
/// Each direction runs on its own thread with its own heartbeat (`capture`, `playback`); a
/// device that is missing or fails is retried with backoff without disturbing the other.
public final class AudioEngine: Sendable {
    /// 250 ms doubling to 5 s between attempts to reopen a missing or failed device.
    public static let defaultReopenBackoff: BackoffConfig = {
        var config = BackoffConfig()
        config.initial = .milliseconds(250)
        config.max = .seconds(5)
        config.multiplier = 2
        config.jitter = 0
        return config
    }()

    private let context: AudioContext
    private let capture: AudioCapture
    private let playback: AudioPlayback
    private let config: Mutex<AudioConfig>

    public init(config: AudioConfig, health: HealthRegistry, events: EventBus, logger: Logger,
                heartbeatInterval: Duration, uplinkBatch: Duration, reopenBackoff: BackoffConfig = AudioEngine.defaultReopenBackoff,
                onCapturedFrame: @escaping @Sendable (CapturedFrame) -> Void) {
        let context = AudioContext(events: events, logger: logger, health: health, heartbeatInterval: heartbeatInterval,
                                   uplinkBatch: uplinkBatch, reopenBackoff: reopenBackoff, config: config)
        self.context = context
        self.config = Mutex(config)
        self.capture = AudioCapture(config: config.capture, context: context, sink: onCapturedFrame)
        self.playback = AudioPlayback(config: config.playback, volume: config.volume, context: context)
    }

    /// Start both threads (each opens its device, retrying until it can). Idempotent.
    public func start() {
        capture.start()
        playback.start()
    }

    /// Stop both threads: the speaker is silenced (rewound, dropped), devices closed. Each
    /// thread leaves its blocking call within a period; one stuck in a dead device is
    /// abandoned after `timeout` rather than holding up shutdown. Both ends are awaited
    /// together, signalled by the threads themselves: no thread of the pool blocks on a join.
    public func stop(timeout: Duration = .milliseconds(500)) async {
        capture.requestStop()
        playback.requestStop()
        async let playbackJoined = playback.join(timeout: timeout)
        async let captureJoined = capture.join(timeout: timeout)
        _ = await (playbackJoined, captureJoined)
    }

    /// Resumes with the reason once either device thread has ended without being asked to (or
    /// could not start); with nil when the calling task is cancelled. A missing or failing
    /// device is not an end: its thread keeps retrying it.
    public func ended() async -> String? {
        await withTaskGroup(of: String?.self) { group in
            group.addTask { await self.capture.ended() }
            group.addTask { await self.playback.ended() }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
    }

    // MARK: - Speaking

    /// Reply audio from the session: PCM16 little-endian mono at the playback rate.
    public func enqueuePlayback(itemID: String?, pcm: [UInt8]) {
        playback.enqueue(itemID: itemID, pcm: pcm)
    }

    public var playbackQueuedMs: Int { playback.queuedMs }

    /// The speaker is silent: nothing queued, the device stopped.
    public var speakerIdle: Bool { playback.isIdle }

    /// No more audio will come for `itemID`: a short reply may start below the prebuffer.
    public func finishItem(itemID: String?) {
        playback.finishItem(itemID: itemID)
    }

    /// The user talks over the robot: silence the speaker within one period, discard what is
    /// queued (late audio of this item included), and return the item and how many whole
    /// milliseconds of it were really played (for `conversation.item.truncate`). nil when
    /// nothing was playing or queued. Blocks for at most about one period.
    public func bargeIn() -> (itemID: String?, playedMs: Int)? {
        let period = config.withLock { $0.playback.device.period }
        return playback.bargeIn(timeout: period * 3 + .milliseconds(100))
    }

    // MARK: - Settings

    /// Muted: no microphone audio is handed on at all.
    public func setMuted(_ muted: Bool) {
        context.muted.store(muted, ordering: .relaxed)
    }

    public var isMuted: Bool { context.muted.load(ordering: .relaxed) }

    /// Speaker volume 0...100 (clamped), applied with a short ramp.
    public func setVolume(_ volume: Int) {
        playback.setVolume(volume)
    }

    public var volume: Int { playback.volume }

    /// Apply a reloaded configuration: devices are reopened only when their own settings
    /// changed; echo mode, tail and prebuffer apply at once (the canceller starts afresh); the volume only if the
    /// configured value changed (a `volume` command since then stands otherwise).
    public func reconfigure(_ new: AudioConfig) {
        let old = config.withLock { c in
            defer { c = new }
            return c
        }
        capture.reconfigure(new.capture)
        playback.reconfigure(new.playback)
        if old.echo != new.echo || old.echoTail != new.echoTail || old.echoDelay != new.echoDelay
            || old.noiseSuppression != new.noiseSuppression || old.capture.rate != new.capture.rate
            || old.playback.device.rate != new.playback.device.rate {
            context.applyEcho(new)
        }
        if old.volume != new.volume { playback.setVolume(new.volume) }
    }

    // MARK: - Status

    /// `{capture:{state,device,xruns,overruns,error?,...}, playback:{state,device,underruns,
    /// xruns,error?,...}, muted, volume, echo {mode, erle_db, delay_ms, converged,
    /// cancel_unavailable?}}`.
    public func status() -> JSONObject {
        let c = capture.status.current
        let p = playback.status.current
        let jitter = playback.jitterCounters
        let captureObject: JSONObject = [
            "state": .string(c.state.rawValue), "device": .string(c.device),
            "xruns": JSONValue(c.xruns), "overruns": JSONValue(c.overruns),
        ]
        let playbackObject: JSONObject = [
            "state": .string(p.state.rawValue), "device": .string(p.device),
            "underruns": JSONValue(jitter.underruns), "xruns": JSONValue(p.xruns),
            "queued_ms": JSONValue(jitter.queuedMs), "dropped_ms": JSONValue(jitter.droppedMs),
        ]
        return [
            "capture": .object(captureObject.merging(Self.details(c))),
            "playback": .object(playbackObject.merging(Self.details(p))),
            "muted": .bool(isMuted),
            "volume": JSONValue(volume),
            "echo": .object(context.echoStatus.withLock { $0.json }),
        ]
    }

    /// What each thread reports about its device (tests check open counts).
    var deviceSnapshots: (capture: AudioDeviceStatus.Snapshot, playback: AudioDeviceStatus.Snapshot) {
        (capture.status.current, playback.status.current)
    }

    /// The error while in the error state, and what the open device granted.
    private static func details(_ snapshot: AudioDeviceStatus.Snapshot) -> JSONObject {
        var object: JSONObject = [:]
        if snapshot.state == .error, let error = snapshot.error { object["error"] = .string(error) }
        if snapshot.rate > 0 {
            object["rate"] = JSONValue(snapshot.rate)
            object["channels"] = JSONValue(snapshot.channels)
            object["period_frames"] = JSONValue(snapshot.periodFrames)
            object["buffer_frames"] = JSONValue(snapshot.bufferFrames)
        }
        return object
    }
}
