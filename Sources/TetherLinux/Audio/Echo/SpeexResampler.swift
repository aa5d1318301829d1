import CSpeexDSP

/// speexdsp's resampler, mono, for a speaker that runs at another rate than the microphone:
/// the reference must be at the capture rate. Made and used on one thread.
final class SpeexResampler {
    let inputRate: Int
    let outputRate: Int
    private let state: OpaquePointer

    /// nil only for rates speexdsp refuses (zero), which the configuration does not allow.
    init?(from inputRate: Int, to outputRate: Int) {
        var err: Int32 = 0
        guard let state = speex_resampler_init(1, UInt32(inputRate), UInt32(outputRate), SPEEX_RESAMPLER_QUALITY_VOIP, &err),
              err == 0 else { return nil }
        self.state = state
        self.inputRate = inputRate
        self.outputRate = outputRate
    }

    deinit { speex_resampler_destroy(state) }

    /// Converts all of `input`; returns how many samples were written to `output` (which must
    /// hold `input.count * outputRate / inputRate + 2`).
    func process(_ input: UnsafeBufferPointer<Int16>, into output: UnsafeMutableBufferPointer<Int16>) -> Int {
        var consumed = 0
        var produced = 0
        while consumed < input.count && produced < output.count {
            var inLen = UInt32(input.count - consumed)
            var outLen = UInt32(output.count - produced)
            _ = speex_resampler_process_int(state, 0, input.baseAddress! + consumed, &inLen, output.baseAddress! + produced, &outLen)
            if inLen == 0 && outLen == 0 { break }
            consumed += Int(inLen)
            produced += Int(outLen)
        }
        return produced
    }
}
