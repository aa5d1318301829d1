#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The mock's "ear": an energy voice activity detector over PCM16 LE mono, pure and
/// deterministic. Audio is cut into 20 ms frames counted from the first byte of the stream; a
/// frame whose RMS level is at or above the threshold (dBFS) is speech. Speech starts on the
/// first loud frame and stops once `hangoverMs` of quiet frames follow the last loud one.
///
/// The utterance it hands back runs from the start of the first loud frame to the end of the
/// last loud frame: quiet gaps inside it are kept, the trailing hangover is not. A tone sent
/// frame-aligned therefore comes back byte-identical.
struct EnergyVAD {
    enum Event: Equatable {
        /// `startMs`: stream time of the first loud frame.
        case started(startMs: Int)
        /// `endMs`: stream time at which the stop was decided (end of the hangover), as
        /// openai-realtime's `audio_end_ms` includes the silence duration.
        case stopped(endMs: Int, utterance: [UInt8])
    }

    let frameBytes: Int
    let frameMs = 20
    var thresholdDBFS: Double
    var hangoverFrames: Int
    /// An utterance longer than this is cut (speech stops) so memory stays bounded.
    let maxUtteranceBytes: Int

    private(set) var inSpeech = false
    private(set) var framesProcessed = 0
    private var partial: [UInt8] = []
    private var utterance: [UInt8] = []
    private var quietTail: [UInt8] = []
    private var quietFrames = 0

    init(sampleRate: Int, thresholdDBFS: Double, hangoverMs: Int, maxUtteranceSeconds: Int = 60) {
        let samplesPerFrame = max(1, sampleRate / 50)
        frameBytes = samplesPerFrame * 2
        self.thresholdDBFS = thresholdDBFS
        hangoverFrames = max(1, (hangoverMs + 19) / 20)
        maxUtteranceBytes = max(frameBytes, sampleRate * 2 * maxUtteranceSeconds)
    }

    /// Stream time in ms of all complete frames seen.
    var streamMs: Int { framesProcessed * frameMs }

    /// The utterance heard so far in the current speech (empty when not in speech).
    var currentUtterance: [UInt8] { utterance }

    mutating func setHangover(ms: Int) { hangoverFrames = max(1, (ms + 19) / 20) }

    /// Feeds bytes of any length (odd counts and partial frames are carried over).
    mutating func feed(_ bytes: UnsafeRawBufferPointer) -> [Event] {
        var events: [Event] = []
        var offset = 0
        if !partial.isEmpty {
            let need = frameBytes - partial.count
            let take = min(need, bytes.count)
            partial.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[0..<take]))
            offset = take
            if partial.count == frameBytes {
                let frame = partial
                partial.removeAll(keepingCapacity: true)
                frame.withUnsafeBytes { process(frame: $0, into: &events) }
            }
        }
        while bytes.count - offset >= frameBytes {
            process(frame: UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + frameBytes)]), into: &events)
            offset += frameBytes
        }
        if offset < bytes.count {
            partial.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[offset...]))
        }
        return events
    }

    mutating func feed(_ bytes: [UInt8]) -> [Event] {
        bytes.withUnsafeBytes { feed($0) }
    }

    /// Ends the current utterance now (manual commit): returns what was heard, resets to quiet.
    mutating func takeUtterance() -> [UInt8] {
        let heard = utterance
        utterance.removeAll(keepingCapacity: false)
        quietTail.removeAll(keepingCapacity: false)
        inSpeech = false
        quietFrames = 0
        return heard
    }

    /// Forgets buffered audio (input_audio_buffer.clear) without moving stream time.
    mutating func clear() {
        _ = takeUtterance()
        partial.removeAll()
    }

    /// RMS level of a frame of PCM16 LE in dBFS (-infinity for digital silence).
    static func levelDBFS(_ frame: UnsafeRawBufferPointer) -> Double {
        let samples = frame.count / 2
        guard samples > 0 else { return -.infinity }
        var sum: Double = 0
        var i = 0
        while i + 1 < frame.count {
            let s = Double(Int16(bitPattern: UInt16(frame[i]) | UInt16(frame[i + 1]) << 8))
            sum += s * s
            i += 2
        }
        let meanSquare = sum / Double(samples)
        guard meanSquare > 0 else { return -.infinity }
        return 10 * log10(meanSquare / (32768.0 * 32768.0))
    }

    private mutating func process(frame: UnsafeRawBufferPointer, into events: inout [Event]) {
        let loud = Self.levelDBFS(frame) >= thresholdDBFS
        let frameStartMs = framesProcessed * frameMs
        framesProcessed += 1
        if inSpeech {
            if loud {
                utterance.append(contentsOf: quietTail)
                quietTail.removeAll(keepingCapacity: true)
                utterance.append(contentsOf: frame)
                quietFrames = 0
            } else {
                quietTail.append(contentsOf: frame)
                quietFrames += 1
            }
            if quietFrames >= hangoverFrames || utterance.count + quietTail.count >= maxUtteranceBytes {
                let heard = utterance
                utterance.removeAll(keepingCapacity: false)
                quietTail.removeAll(keepingCapacity: false)
                quietFrames = 0
                inSpeech = false
                events.append(.stopped(endMs: streamMs, utterance: heard))
            }
        } else if loud {
            inSpeech = true
            quietFrames = 0
            utterance.append(contentsOf: frame)
            events.append(.started(startMs: frameStartMs))
        }
    }
}
