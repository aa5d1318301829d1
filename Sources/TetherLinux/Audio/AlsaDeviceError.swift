import CAlsa

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
