import Logging

/// The metadata of one record: the handler's own, then the provider's, then the call's,
/// later ones winning, as swift-log specifies.
enum LogMetadata {
    static func merge(_ handler: Logger.Metadata, _ provider: Logger.MetadataProvider?, _ explicit: Logger.Metadata?) -> Logger.Metadata {
        var all = handler
        if let provided = provider?.get() { all.merge(provided) { _, new in new } }
        if let explicit { all.merge(explicit) { _, new in new } }
        return all
    }
}

/// What every tether log handler shares: metadata storage and a level read from the
/// daemon-wide switch.
protocol TetherLogHandler: LogHandler {
    var levelSwitch: LogLevelSwitch { get }
}

extension TetherLogHandler {
    public var logLevel: Logger.Level {
        get { levelSwitch.level }
        set { levelSwitch.level = newValue }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
}
