import Testing
import TetherCore
@testable import TetherLinux

/// speexdsp as compiled into tetherd (Sources/CSpeexDSP) on a synthetic echo: what the speaker
/// played (noise) comes back delayed and attenuated, through a small decaying room.
@Suite struct SpeexEchoCancellerTests {
    static let rate = 24000
    static let period = 480

    /// Far-end noise, and the microphone hearing it `delay` frames late at -6 dB through a
    /// 10 ms exponentially decaying tail, plus the near end's own samples.
    static func echoScene(seconds: Int, delay: Int, near: (Int) -> Double = { _ in 0 }) -> (far: [Int16], mic: [Int16], echo: [Double]) {
        var rng = SplitMix64(seed: 3)
        let n = rate * seconds
        // Uniform white noise (unit variance): plenty for an adaptive filter.
        func gaussian() -> Double { (Double(rng.next() % 1_000_001) / 1_000_000 - 0.5) * 3.4641 }
        let far = (0..<n).map { _ in Int16(max(-32767, min(32767, gaussian() * 3000))) }
        // The room: a direct tap and a decaying tail, unit energy overall.
        var rir = [Double](repeating: 0, count: 240)
        rir[0] = 1
        for k in 24..<rir.count { rir[k] = gaussian() * 0.3 * pow10(-3.0 * Double(k) / Double(rir.count)) }
        let norm = rir.reduce(0) { $0 + $1 * $1 }.squareRoot()
        rir = rir.map { $0 / norm * 0.5 }
        var echo = [Double](repeating: 0, count: n)
        let taps = rir.enumerated().filter { $0.element != 0 }
        far.withUnsafeBufferPointer { f in
            echo.withUnsafeMutableBufferPointer { e in
                for i in (delay)..<n {
                    var acc = 0.0
                    for (k, h) in taps where i - delay - k >= 0 { acc += h * Double(f[i - delay - k]) }
                    e[i] = acc
                }
            }
        }
        let mic = (0..<n).map { Int16(max(-32767, min(32767, (echo[$0] + near($0)).rounded()))) }
        return (far, mic, echo)
    }

    static func pow10(_ x: Double) -> Double {
        var r = 1.0
        let e = 2.302585092994046 * x  // ln 10 · x
        // exp by series is plenty for the small exponents here.
        var term = 1.0
        r = 0
        for k in 0..<40 {
            r += term
            term *= e / Double(k + 1)
        }
        return r
    }

    /// Run the canceller over the scene; returns its output moved back by the residual echo
    /// suppressor's one-frame delay, so it lines up with the microphone.
    static func cancel(_ scene: (far: [Int16], mic: [Int16], echo: [Double]), filter: Int) throws -> [Int16] {
        let aec = try SpeexEchoCanceller(frameSize: period, filterLength: filter, rate: rate, noiseSuppression: .off)
        var out = [Int16](repeating: 0, count: scene.mic.count)
        var frame = [Int16](repeating: 0, count: period)
        for start in stride(from: 0, to: scene.mic.count, by: period) {
            scene.mic[start..<(start + period)].withUnsafeBufferPointer { mic in
                scene.far[start..<(start + period)].withUnsafeBufferPointer { far in
                    frame.withUnsafeMutableBufferPointer { o in aec.cancel(mic: mic, reference: far, into: o) }
                }
            }
            if start >= period { out.replaceSubrange((start - period)..<start, with: frame) }
        }
        return out
    }

    @Test func cancelsADelayedAttenuatedCopyByMoreThan20dBOnceConverged() throws {
        // 10 ms of delay in front of the room, inside a 100 ms filter.
        let scene = Self.echoScene(seconds: 4, delay: 240)
        let out = try Self.cancel(scene, filter: Self.rate / 10)
        // From 2 s to the last whole frame: echo energy in, residual out.
        let range = (Self.rate * 2)..<(scene.mic.count - Self.period)
        let echoEnergy = scene.echo[range].reduce(0) { $0 + $1 * $1 }
        let residual = out[range].reduce(0.0) { $0 + Double($1) * Double($1) }
        let erle = 10 * log10(echoEnergy / max(residual, 1))
        #expect(erle > 20, "ERLE \(erle) dB")
    }

    @Test func keepsTheNearEndInDoubleTalk() throws {
        // A near-end tone over the echo: most of its energy survives the canceller.
        let tone = { (i: Int) -> Double in 3000 * sin(2 * Double.pi * 440 * Double(i) / Double(Self.rate)) }
        let scene = Self.echoScene(seconds: 4, delay: 240, near: { $0 >= Self.rate * 2 ? tone($0) : 0 })
        let out = try Self.cancel(scene, filter: Self.rate / 10)
        // Projected near-end gain over the last 1.5 s, the canceller having converged before: <out, near> / <near, near>.
        var dot = 0.0, nn = 0.0
        for i in (Self.rate * 5 / 2)..<(out.count - Self.period) {
            dot += Double(out[i]) * tone(i)
            nn += tone(i) * tone(i)
        }
        let lossDB = -20 * log10(max(dot / nn, 1e-9))
        #expect(lossDB < 6, "near-end loss \(lossDB) dB")
    }
}

import Foundation
