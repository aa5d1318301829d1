#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The audio of one response: either an echo of heard bytes or a generated test tone. Tones are
/// made chunk by chunk, so an hour-long `say` costs no memory.
enum ResponseAudio {
    case echo([UInt8])
    case tone(ToneGenerator, bytes: Int)

    var byteCount: Int {
        switch self {
        case .echo(let bytes): return bytes.count
        case .tone(_, let bytes): return bytes
        }
    }

    func chunk(offset: Int, count: Int) -> [UInt8] {
        let end = min(byteCount, offset + count)
        guard offset < end else { return [] }
        switch self {
        case .echo(let bytes): return Array(bytes[offset..<end])
        case .tone(let tone, _): return tone.bytes(fromSample: offset / 2, count: (end - offset) / 2)
        }
    }
}

/// A deterministic sine tone as PCM16 LE: sample `i` is `amplitude * sin(2 pi f i / rate)`,
/// so any stretch of it can be regenerated and compared exactly.
struct ToneGenerator {
    static let testFrequency = 440.0
    /// About -12 dBFS: clearly speech to an energy VAD, far from clipping.
    static let testAmplitude = 8000.0

    var sampleRate: Int
    var frequency = testFrequency
    var amplitude = testAmplitude

    func sample(_ i: Int) -> Int16 {
        let phase = 2 * Double.pi * frequency * Double(i) / Double(sampleRate)
        return Int16((amplitude * sin(phase)).rounded())
    }

    func bytes(fromSample start: Int, count: Int) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(count * 2)
        for i in start..<(start + count) {
            let s = UInt16(bitPattern: sample(i))
            out.append(UInt8(truncatingIfNeeded: s))
            out.append(UInt8(truncatingIfNeeded: s >> 8))
        }
        return out
    }

    /// Bytes of PCM16 mono for `ms` milliseconds at `sampleRate`.
    static func byteCount(ms: Int, sampleRate: Int) -> Int { ms * sampleRate / 1000 * 2 }
}
