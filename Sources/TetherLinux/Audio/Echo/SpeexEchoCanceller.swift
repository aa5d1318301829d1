import CSpeexDSP
import TetherCore

/// speexdsp's acoustic echo canceller (MDF adaptive filter) with its preprocessor behind it for
/// the residual echo (and, when configured, noise suppression), one period at a time. Made and
/// used on the capture thread only; its state lives until the device it serves closes.
///
/// The preprocessor works on overlapping windows: what it returns is the frame given to it one
/// call earlier (`preprocessDelay` = one frame). Its residual echo suppression only acts with
/// its denoiser on, so the denoiser always is, with a noise floor of 0 dB (no noise
/// suppression) unless `noise_suppression` asks for more.
///
/// speexdsp is compiled into tetherd (Sources/CSpeexDSP, Package.swift says why).
final class SpeexEchoCanceller {
    struct Unavailable: Error, CustomStringConvertible {
        var description: String
    }

    let frameSize: Int
    let filterLength: Int
    let rate: Int
    private let echo: OpaquePointer
    private let preprocess: OpaquePointer
    private let scratch: UnsafeMutableBufferPointer<Int16>
    private let silence: UnsafeMutableBufferPointer<Int16>

    init(frameSize: Int, filterLength: Int, rate: Int, noiseSuppression: NoiseSuppression) throws(Unavailable) {
        guard let echo = speex_echo_state_init(Int32(frameSize), Int32(filterLength)) else {
            throw Unavailable(description: "speex_echo_state_init(\(frameSize), \(filterLength)) failed")
        }
        guard let preprocess = speex_preprocess_state_init(Int32(frameSize), Int32(rate)) else {
            speex_echo_state_destroy(echo)
            throw Unavailable(description: "speex_preprocess_state_init(\(frameSize), \(rate)) failed")
        }
        self.echo = echo
        self.preprocess = preprocess
        self.frameSize = frameSize
        self.filterLength = filterLength
        self.rate = rate
        scratch = .allocate(capacity: frameSize)
        scratch.initialize(repeating: 0)
        silence = .allocate(capacity: frameSize)
        silence.initialize(repeating: 0)
        echoControl(SPEEX_ECHO_SET_SAMPLING_RATE, Int32(rate))
        _ = speex_preprocess_ctl(preprocess, SPEEX_PREPROCESS_SET_ECHO_STATE, UnsafeMutableRawPointer(echo))
        // The denoiser carries the residual echo suppression; noise itself is left alone (0 dB)
        // unless asked for.
        preprocessControl(SPEEX_PREPROCESS_SET_DENOISE, 1)
        preprocessControl(SPEEX_PREPROCESS_SET_NOISE_SUPPRESS, Int32(noiseSuppression.suppressDB ?? 0))
        // The residual echo limiter: up to 55 dB where only the robot is heard (speexdsp's 40
        // let a 0 dB echo's first frames after a pause reach a brain's -45 dBFS VAD), 15 dB
        // while the person talks over it (speexdsp's default: the near end keeps its level).
        preprocessControl(SPEEX_PREPROCESS_SET_ECHO_SUPPRESS, -55)
        preprocessControl(SPEEX_PREPROCESS_SET_ECHO_SUPPRESS_ACTIVE, -15)
    }

    deinit {
        scratch.deallocate()
        silence.deallocate()
        speex_preprocess_state_destroy(preprocess)
        speex_echo_state_destroy(echo)
    }

    /// Cancel the echo of `reference` (what the speaker played, aligned) from `mic` into `out`
    /// (all `frameSize` long; `out` may not be `mic`), then suppress what remains of it: with
    /// `suppressResidual`, `out` holds the previous call's frame (the preprocessor's delay).
    func cancel(mic: UnsafeBufferPointer<Int16>, reference: UnsafeBufferPointer<Int16>, into out: UnsafeMutableBufferPointer<Int16>,
                suppressResidual: Bool = true) {
        speex_echo_cancellation(echo, mic.baseAddress, reference.baseAddress, out.baseAddress)
        if suppressResidual { _ = speex_preprocess_run(preprocess, out.baseAddress) }
    }

    /// Noise suppression alone, in place (the speaker is silent); one frame late, as above.
    func denoise(_ samples: UnsafeMutableBufferPointer<Int16>) {
        _ = speex_preprocess_run(preprocess, samples.baseAddress)
    }

    /// Give the preprocessor `frame` as its previous one (its output is dropped): after a
    /// stretch without it, its next output continues the stream instead of replaying a stale
    /// frame from before.
    func prime(with frame: UnsafeBufferPointer<Int16>) {
        _ = scratch.update(fromContentsOf: frame)
        _ = speex_preprocess_run(preprocess, scratch.baseAddress)
    }

    /// Clear the filter's history of the speaker (what it played before a pause) without
    /// touching the learnt echo path: silence in, silence out, once per frame the filter
    /// spans. Without it the first frames after a pause subtract the echo of the last reply's
    /// end from the next one's start.
    func clearHistory() {
        for _ in 0...(filterLength / frameSize) {
            speex_echo_cancellation(echo, silence.baseAddress, silence.baseAddress, scratch.baseAddress)
        }
    }

    /// speexdsp's ctl calls take the value by pointer.
    private func echoControl(_ request: Int32, _ value: Int32) {
        var value = value
        _ = speex_echo_ctl(echo, request, &value)
    }

    private func preprocessControl(_ request: Int32, _ value: Int32) {
        var value = value
        _ = speex_preprocess_ctl(preprocess, request, &value)
    }

    /// Forget the learnt echo path.
    func reset() {
        speex_echo_state_reset(echo)
    }
}
