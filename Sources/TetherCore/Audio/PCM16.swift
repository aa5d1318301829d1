/// PCM16 little-endian bytes, the wire format of every upstream protocol, and the `Int16`
/// samples the audio code works on. Conversions go through `littleEndian` so they are exact
/// on any host (a no-op on the little-endian boards tether runs on).
public enum PCM16 {
    /// The sum of the samples' squares, exact. Integer arithmetic that cannot overflow for
    /// any buffer under 2^33 samples (each square is at most 2^30), written with wrapping
    /// operators so the compiler may sum in vector registers: the echo canceller's delay
    /// estimator runs this over 50,000 reference samples ten times a second.
    @inlinable
    public static func sumOfSquares(_ samples: UnsafeBufferPointer<Int16>) -> Int64 {
        var sum: Int64 = 0
        for s in samples {
            let v = Int32(s)
            sum &+= Int64(v &* v)
        }
        return sum
    }

    /// Samples of a byte buffer; a trailing odd byte is ignored (callers that stream keep it).
    public static func samples(fromLittleEndian bytes: some Collection<UInt8>) -> [Int16] {
        let count = bytes.count / 2
        #if _endian(little)
        // Contiguous bytes on a little-endian host are already the samples: one copy.
        if let copied = bytes.withContiguousStorageIfAvailable({ raw in
            [Int16](unsafeUninitializedCapacity: count) { out, initialized in
                UnsafeMutableRawBufferPointer(out).copyMemory(from: UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(raw)[0..<count * 2]))
                initialized = count
            }
        }) {
            return copied
        }
        #endif
        var result = [Int16](repeating: 0, count: count)
        var index = bytes.startIndex
        for i in 0..<count {
            let lo = UInt16(bytes[index])
            bytes.formIndex(after: &index)
            let hi = UInt16(bytes[index])
            bytes.formIndex(after: &index)
            result[i] = Int16(bitPattern: lo | hi << 8)
        }
        return result
    }

    /// Little-endian bytes of `samples`.
    public static func bytes(_ samples: UnsafeBufferPointer<Int16>) -> [UInt8] {
        #if _endian(little)
        return [UInt8](UnsafeRawBufferPointer(samples))
        #else
        return [UInt8](unsafeUninitializedCapacity: samples.count * 2) { out, initialized in
            for (i, s) in samples.enumerated() {
                let u = UInt16(bitPattern: s)
                out[2 * i] = UInt8(truncatingIfNeeded: u)
                out[2 * i + 1] = UInt8(truncatingIfNeeded: u >> 8)
            }
            initialized = samples.count * 2
        }
        #endif
    }

    public static func bytes(_ samples: [Int16]) -> [UInt8] {
        samples.withUnsafeBufferPointer { bytes($0) }
    }

    /// Frames in `duration` at `rate`, rounded down.
    public static func frames(_ duration: Duration, rate: Int) -> Int {
        Int(Int64(rate) * duration.nanoseconds / 1_000_000_000)
    }

    /// Whole milliseconds of `frames` at `rate`, rounded down: what was really played is never
    /// overstated.
    public static func milliseconds(frames: Int, rate: Int) -> Int {
        rate > 0 ? frames * 1000 / rate : 0
    }

    public static func duration(frames: Int, rate: Int) -> Duration {
        rate > 0 ? .nanoseconds(Int64(frames) * 1_000_000_000 / Int64(rate)) : .zero
    }
}
