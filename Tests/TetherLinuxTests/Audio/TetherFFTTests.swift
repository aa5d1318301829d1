import CSpeexDSP
import Glibc
import Testing
import TetherCore

/// tether's FFT (Sources/CSpeexDSP/tether), which speexdsp's canceller and preprocessor run on,
/// against the definition of the discrete Fourier transform computed directly in doubles.
@Suite struct TetherFFTTests {
    /// FFTPACK's half-complex layout of X[k] = sum x[j] e^(-2 pi i j k / n), as speexdsp reads it.
    static func directDFT(_ x: [Float]) -> [Double] {
        let n = x.count
        var out = [Double](repeating: 0, count: n)
        for k in 0...(n / 2) {
            var re = 0.0, im = 0.0
            for j in 0..<n {
                let angle = -2 * Double.pi * Double((j * k) % n) / Double(n)
                re += Double(x[j]) * cos(angle)
                im += Double(x[j]) * sin(angle)
            }
            if k == 0 {
                out[0] = re
            } else if k == n / 2 {
                out[n - 1] = re
            } else {
                out[2 * k - 1] = re
                out[2 * k] = im
            }
        }
        return out
    }

    static func noise(_ n: Int, seed: UInt64) -> [Float] {
        var rng = SplitMix64(seed: seed)
        return (0..<n).map { _ in Float(Int(rng.next() % 60001) - 30000) }
    }

    /// The sizes tether's periods make (2 x 20 ms and 10 ms at 8-48 kHz), and some more.
    @Test(arguments: [960, 640, 480, 1920, 320, 160, 16, 1200, 2880])
    func matchesTheDirectTransformAndInvertsItself(n: Int) throws {
        let fft = try #require(tether_fft_new(Int32(n)))
        defer { tether_fft_free(fft) }
        let x = Self.noise(n, seed: UInt64(n))
        var spectrum = [Float](repeating: 0, count: n)
        tether_fft_forward(fft, x, &spectrum, 1)
        let expected = Self.directDFT(x)
        let peak = expected.map(abs).max()!
        let error = zip(spectrum, expected).map { abs(Double($0) - $1) }.max()!
        // Single precision: about 1e-7 of the largest value per stage, a few stages.
        #expect(error / peak < 2e-6, "n \(n): error \(error) of \(peak)")

        // Scaled by 1/n as speexdsp's spx_fft asks, then back: the input again.
        tether_fft_forward(fft, x, &spectrum, 1 / Float(n))
        var back = [Float](repeating: 0, count: n)
        tether_fft_inverse(fft, spectrum, &back)
        let roundTrip = zip(back, x).map { abs(Double($0) - Double($1)) }.max()!
        #expect(roundTrip < 30000 * 2e-6, "n \(n): round trip off by \(roundTrip)")
    }

    @Test func refusesSizesItCannotTake() {
        // Odd, a half with prime factors other than 2, 3, 5 (44.1 kHz at 20 ms: 2 x 882), too small.
        for n: Int32 in [0, 7, 999, 1764, 14, 4] {
            #expect(tether_fft_new(n) == nil, "n \(n)")
        }
    }
}
