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
