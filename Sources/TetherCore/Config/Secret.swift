/// A credential (API key, token, device credential). It prints as `<redacted>` wherever it
/// ends up in a string interpolation, a log line or a status, so the only way to read it is
/// to ask for `exposedValue` at the one place it is put on the wire.
public struct Secret: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
    private let value: String

    public init(_ value: String) { self.value = value }

    public var exposedValue: String { value }

    public var description: String { "<redacted>" }
    public var debugDescription: String { "<redacted>" }
}
