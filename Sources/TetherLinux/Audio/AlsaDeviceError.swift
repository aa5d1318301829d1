import CAlsa
import Glibc
import Synchronization

/// Why an audio device could not be used, in words a robot builder can act on.
public struct AlsaDeviceError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// The device does not exist, vanished, or is busy: retry later.
        case unavailable
        /// The device exists but cannot run the configured format, rate or channels.
        case unsupported
        /// It was running and failed (I/O error, unplugged, stream stopped making sense).
        case fault
    }

    public var kind: Kind
    /// The negative errno ALSA returned, 0 when not from ALSA.
    public var code: Int32
    public var message: String

    public init(kind: Kind, code: Int32, message: String) {
        self.kind = kind
        self.code = code
        self.message = message
    }

    public var description: String { message }

    /// `snd_strerror` text for an ALSA return code.
    static func text(_ code: Int32) -> String {
        guard let cString = snd_strerror(code) else { return "error \(code)" }
        return String(cString: cString)
    }

    /// Which device name to suggest when hardware cannot do what was asked: ALSA's `plug`
    /// layer converts rate, format and channels in software.
    public static func plugSuggestion(for device: String) -> String {
        if device.hasPrefix("hw:") { return "plughw:" + device.dropFirst(3) }
        if device.hasPrefix("plug") || device == "default" { return "default" }
        return "plug:" + device
    }
}

/// ALSA reports details (which file could not be opened, which plugin refused) through a
/// printf-style callback that writes to stderr by default. Each audio thread installs this
/// thread-local handler instead: the detail goes into the device error shown in `status`,
/// and stderr (the journal) is not flooded while a missing device is retried.
enum AlsaDiagnostics {
    private static let messages = Mutex<[UInt: String]>([:])

    static func installOnCurrentThread() {
        _ = snd_lib_error_set_local(alsaLocalErrorHandler)
    }

    /// The last detail ALSA reported on this thread, cleared by reading.
    static func takeMessage() -> String? {
        let me = UInt(pthread_self())
        return messages.withLock { $0.removeValue(forKey: me) }
    }

    static func clear() { _ = takeMessage() }

    fileprivate static func store(_ text: String) {
        let me = UInt(pthread_self())
        messages.withLock { $0[me] = text }
    }
}

private func alsaLocalErrorHandler(file: UnsafePointer<CChar>?, line: Int32, function: UnsafePointer<CChar>?, err: Int32, fmt: UnsafePointer<CChar>?, args: CVaListPointer?) {
    guard let fmt, let args else { return }
    var buffer = [CChar](repeating: 0, count: 400)
    _ = buffer.withUnsafeMutableBufferPointer { vsnprintf($0.baseAddress, $0.count, fmt, args) }
    var text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    if err != 0 { text += ": " + AlsaDeviceError.text(err < 0 ? err : -err) }
    AlsaDiagnostics.store(text)
}
