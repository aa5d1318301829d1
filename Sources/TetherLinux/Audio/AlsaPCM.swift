import CAlsa
import Glibc
import TetherCore

public enum AudioDirection: String, Sendable {
    case capture, playback
}

/// One open ALSA PCM, S16_LE interleaved, used by exactly one thread (ALSA handles are not
/// shared across threads here: the thread that blocks in them is the only one that touches
/// them). Reads and writes move whole periods; the buffer is kept small (a few periods) so
/// that barge-in has little to take back.
final class AlsaPCM {
    let device: String
    let direction: AudioDirection
    let rate: Int
    let channels: Int
    /// What the device granted, which may differ from what was asked.
    let periodFrames: Int
    let bufferFrames: Int
    var frameBytes: Int { 2 * channels }

    /// Overruns/underruns (-EPIPE) and suspends (-ESTRPIPE) recovered from.
    private(set) var xruns = 0
    private(set) var suspends = 0

    private var handle: OpaquePointer?

    enum IOResult {
        case ok
        /// The period went through after recovering from an xrun or a suspend.
        case recovered
        case fault(AlsaDeviceError)
    }

    private init(device: String, direction: AudioDirection, handle: OpaquePointer, rate: Int, channels: Int, periodFrames: Int, bufferFrames: Int) {
        self.device = device
        self.direction = direction
        self.handle = handle
        self.rate = rate
        self.channels = channels
        self.periodFrames = periodFrames
        self.bufferFrames = bufferFrames
    }

    deinit { close() }

    /// Open `device` (any ALSA name: `default`, `plughw:1,0`, a plugin from the config) and
    /// set it up: S16_LE, `rate`, `channels`, a period of `periodFrames` and a buffer of about
    /// `periods` periods. Errors say what the device could not do and what to use instead.
    static func open(device: String, direction: AudioDirection, rate: Int, channels: Int, periodFrames: Int, periods: Int = 4) throws(AlsaDeviceError) -> AlsaPCM {
        guard rate > 0, channels > 0, periodFrames > 0 else {
            throw AlsaDeviceError(kind: .unsupported, code: 0, message: "\(direction) device '\(device)': invalid settings (rate \(rate), channels \(channels), period \(periodFrames) frames)")
        }
        AlsaDiagnostics.clear()
        var pcm: OpaquePointer?
        let stream = direction == .capture ? SND_PCM_STREAM_CAPTURE : SND_PCM_STREAM_PLAYBACK
        // Non-blocking open: a busy hardware device must fail now, not hang the thread until
        // whoever holds it lets go. I/O below is blocking again.
        var err = snd_pcm_open(&pcm, device, stream, SND_PCM_NONBLOCK)
        guard err >= 0, let pcm else {
            throw AlsaDeviceError(kind: .unavailable, code: err, message: describe("cannot open \(direction) device '\(device)'", err))
        }
        err = snd_pcm_nonblock(pcm, 0)
        do {
            let (period, buffer) = try configure(pcm, device: device, direction: direction, rate: rate, channels: channels, periodFrames: periodFrames, periods: periods)
            return AlsaPCM(device: device, direction: direction, handle: pcm, rate: rate, channels: channels, periodFrames: period, bufferFrames: buffer)
        } catch {
            snd_pcm_close(pcm)
            throw error
        }
    }

    private static func configure(_ pcm: OpaquePointer, device: String, direction: AudioDirection, rate: Int, channels: Int, periodFrames: Int, periods: Int) throws(AlsaDeviceError) -> (Int, Int) {
        var hw: OpaquePointer?
        guard snd_pcm_hw_params_malloc(&hw) >= 0, let hw else {
            throw AlsaDeviceError(kind: .fault, code: -ENOMEM, message: "\(direction) device '\(device)': out of memory")
        }
        defer { snd_pcm_hw_params_free(hw) }
        let name = "\(direction) device '\(device)'"
        let plug = AlsaDeviceError.plugSuggestion(for: device)

        var err = snd_pcm_hw_params_any(pcm, hw)
        guard err >= 0 else { throw AlsaDeviceError(kind: .unsupported, code: err, message: describe("\(name): no usable configuration", err)) }
        err = snd_pcm_hw_params_set_access(pcm, hw, SND_PCM_ACCESS_RW_INTERLEAVED)
        guard err >= 0 else {
            throw AlsaDeviceError(kind: .unsupported, code: err, message: "\(name) cannot do interleaved read/write access; use '\(plug)'")
        }
        err = snd_pcm_hw_params_set_format(pcm, hw, SND_PCM_FORMAT_S16_LE)
        guard err >= 0 else {
            throw AlsaDeviceError(kind: .unsupported, code: err, message: "\(name) cannot do 16-bit little-endian samples (S16_LE); use '\(plug)' so ALSA converts")
        }
        err = snd_pcm_hw_params_set_channels(pcm, hw, UInt32(channels))
        guard err >= 0 else {
            var lo: UInt32 = 0, hi: UInt32 = 0
            _ = snd_pcm_hw_params_get_channels_min(hw, &lo)
            _ = snd_pcm_hw_params_get_channels_max(hw, &hi)
            throw AlsaDeviceError(kind: .unsupported, code: err, message: "\(name) cannot do \(channels) channel(s) (it supports \(lo)..\(hi)); set channels accordingly or use '\(plug)'")
        }
        err = snd_pcm_hw_params_set_rate(pcm, hw, UInt32(rate), 0)
        guard err >= 0 else {
            var lo: UInt32 = 0, hi: UInt32 = 0
            var dir: Int32 = 0
            _ = snd_pcm_hw_params_get_rate_min(hw, &lo, &dir)
            _ = snd_pcm_hw_params_get_rate_max(hw, &hi, &dir)
            let range = lo == hi ? "\(lo) Hz" : "\(lo)..\(hi) Hz"
            throw AlsaDeviceError(kind: .unsupported, code: err, message: "\(name) cannot run at \(rate) Hz (it supports \(range)); use '\(plug)' so ALSA resamples")
        }
        var period = snd_pcm_uframes_t(periodFrames)
        var dir: Int32 = 0
        err = snd_pcm_hw_params_set_period_size_near(pcm, hw, &period, &dir)
        guard err >= 0 else { throw AlsaDeviceError(kind: .unsupported, code: err, message: describe("\(name) cannot use a period of \(periodFrames) frames", err)) }
        var buffer = snd_pcm_uframes_t(max(2, periods)) * period
        err = snd_pcm_hw_params_set_buffer_size_near(pcm, hw, &buffer)
        guard err >= 0 else { throw AlsaDeviceError(kind: .unsupported, code: err, message: describe("\(name) cannot use a buffer of \(buffer) frames", err)) }
        err = snd_pcm_hw_params(pcm, hw)
        guard err >= 0 else {
            let kind: AlsaDeviceError.Kind = err == -EBUSY || err == -ENODEV || err == -ENOENT ? .unavailable : .unsupported
            throw AlsaDeviceError(kind: kind, code: err, message: describe("\(name): the hardware refused the settings", err))
        }
        _ = snd_pcm_hw_params_get_period_size(hw, &period, &dir)
        _ = snd_pcm_hw_params_get_buffer_size(hw, &buffer)

        var sw: OpaquePointer?
        guard snd_pcm_sw_params_malloc(&sw) >= 0, let sw else {
            throw AlsaDeviceError(kind: .fault, code: -ENOMEM, message: "\(name): out of memory")
        }
        defer { snd_pcm_sw_params_free(sw) }
        _ = snd_pcm_sw_params_current(pcm, sw)
        // Playback starts with the first period written (the jitter buffer already did the
        // prebuffering); capture starts with the first read. Wake once a period is ready.
        _ = snd_pcm_sw_params_set_start_threshold(pcm, sw, direction == .playback ? period : 1)
        _ = snd_pcm_sw_params_set_avail_min(pcm, sw, period)
        err = snd_pcm_sw_params(pcm, sw)
        guard err >= 0 else { throw AlsaDeviceError(kind: .unsupported, code: err, message: describe("\(name): software parameters refused", err)) }
        err = snd_pcm_prepare(pcm)
        guard err >= 0 else { throw AlsaDeviceError(kind: .fault, code: err, message: describe("\(name) cannot be prepared", err)) }
        return (Int(period), Int(buffer))
    }

    /// ALSA's own words for `code`, plus the detail its error callback gave on this thread.
    static func describe(_ what: String, _ code: Int32) -> String {
        var text = "\(what): \(AlsaDeviceError.text(code))"
        if let detail = AlsaDiagnostics.takeMessage(), !detail.isEmpty { text += " (\(detail))" }
        return text
    }

    // MARK: - I/O

    /// Read exactly one period into `buffer` (`periodFrames * frameBytes` bytes). Blocks
    /// until the device has it.
    func readPeriod(into buffer: UnsafeMutableRawPointer) -> IOResult {
        transfer(buffer) { pcm, pointer, frames in snd_pcm_readi(pcm, pointer, frames) }
    }

    /// Write exactly one period from `buffer`. Blocks while the device buffer is full.
    func writePeriod(from buffer: UnsafeRawPointer) -> IOResult {
        transfer(UnsafeMutableRawPointer(mutating: buffer)) { pcm, pointer, frames in snd_pcm_writei(pcm, pointer, frames) }
    }

    private func transfer(_ buffer: UnsafeMutableRawPointer, _ call: (OpaquePointer, UnsafeMutableRawPointer, snd_pcm_uframes_t) -> snd_pcm_sframes_t) -> IOResult {
        guard let pcm = handle else { return .fault(AlsaDeviceError(kind: .fault, code: -EBADFD, message: "\(direction) device '\(device)' is closed")) }
        var done = 0
        var recovered = false
        var idleSpins = 0
        while done < periodFrames {
            let n = call(pcm, buffer + done * frameBytes, snd_pcm_uframes_t(periodFrames - done))
            if n > 0 {
                done += Int(n)
                idleSpins = 0
                continue
            }
            let err = Int32(n)
            switch err {
            case 0, -EAGAIN:
                // Blocking mode should not return short, but never spin on it.
                idleSpins += 1
                if idleSpins > 50 { return .fault(AlsaDeviceError(kind: .fault, code: -EIO, message: "\(direction) device '\(device)' stopped moving data")) }
                _ = snd_pcm_wait(pcm, 100)
            case -EINTR:
                continue
            case -EPIPE:
                // Overrun (capture) or underrun (playback): the stream stopped; restart it.
                xruns += 1
                recovered = true
                let e = recoverXrun(pcm)
                if e < 0 { return .fault(AlsaDeviceError(kind: .fault, code: e, message: AlsaPCM.describe("\(direction) device '\(device)' did not recover from an xrun", e))) }
                if direction == .capture { done = 0 }
            case -ESTRPIPE:
                // System suspend: resume, or prepare afresh when the driver cannot resume.
                suspends += 1
                recovered = true
                let e = resumeAfterSuspend(pcm)
                if e < 0 { return .fault(AlsaDeviceError(kind: .fault, code: e, message: AlsaPCM.describe("\(direction) device '\(device)' did not come back from suspend", e))) }
                if direction == .capture { done = 0 }
            default:
                // -ENODEV (unplugged), -EBADFD, -EIO, -ESHUTDOWN: the device is gone.
                return .fault(AlsaDeviceError(kind: .fault, code: err, message: AlsaPCM.describe("\(direction) device '\(device)' failed", err)))
            }
        }
        return recovered ? .recovered : .ok
    }

    private func recoverXrun(_ pcm: OpaquePointer) -> Int32 {
        let err = snd_pcm_prepare(pcm)
        if err < 0 { return err }
        return direction == .capture ? snd_pcm_start(pcm) : 0
    }

    private func resumeAfterSuspend(_ pcm: OpaquePointer) -> Int32 {
        var err = snd_pcm_resume(pcm)
        var tries = 0
        while err == -EAGAIN && tries < 100 {
            usleep(10_000)  // the driver is still waking up
            tries += 1
            err = snd_pcm_resume(pcm)
        }
        if err < 0 { return recoverXrun(pcm) }
        return 0
    }

    // MARK: - Control

    /// Start capture explicitly (reads would, but this makes the first timestamp honest).
    func start() -> Int32 {
        guard let pcm = handle else { return -EBADFD }
        return snd_pcm_start(pcm)
    }

    /// Stop at once, discarding what the device still holds, then get ready to run again.
    /// For playback the unplayed part is first rewound out of the buffer: some plugins (the
    /// `file` plugin, for one) play out their whole buffer on a plain drop (rule 9).
    /// Returns the frames taken back by the rewind.
    @discardableResult
    func discardAndStop() -> Int {
        guard let pcm = handle else { return 0 }
        var rewound = 0
        if direction == .playback {
            let rewindable = snd_pcm_rewindable(pcm)
            if rewindable > 0 {
                let n = snd_pcm_rewind(pcm, snd_pcm_uframes_t(rewindable))
                if n > 0 { rewound = Int(n) }
            }
        }
        _ = snd_pcm_drop(pcm)
        _ = snd_pcm_prepare(pcm)
        return rewound
    }

    /// Frames written but not yet heard (playback), or captured but not yet read.
    func delay() -> Int? {
        guard let pcm = handle else { return nil }
        var frames: snd_pcm_sframes_t = 0
        return snd_pcm_delay(pcm, &frames) >= 0 ? Int(frames) : nil
    }

    func close() {
        guard let pcm = handle else { return }
        handle = nil
        snd_pcm_close(pcm)
    }
}
