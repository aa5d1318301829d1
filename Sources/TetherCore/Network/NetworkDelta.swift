/// What changed between two network views, in the terms the session acts on:
/// offline → pause and start grace; online → connect now; another interface or address
/// while online → probe the session at once (its socket may be bound to the old path).
public struct NetworkDelta: Sendable, Equatable {
    /// Set when `online` flipped (or on the initial report): the new value.
    public var online: Bool?
    public var defaultInterfaceChanged: Bool
    public var primaryAddressChanged: Bool
    /// The first report after the monitor started: it states the network as found, it is
    /// not a change anyone saw happen.
    public var initial: Bool

    public init(online: Bool? = nil, defaultInterfaceChanged: Bool = false, primaryAddressChanged: Bool = false,
                initial: Bool = false) {
        self.online = online
        self.defaultInterfaceChanged = defaultInterfaceChanged
        self.primaryAddressChanged = primaryAddressChanged
        self.initial = initial
    }

    /// Nothing the session needs to hear about.
    public var isEmpty: Bool { online == nil && !defaultInterfaceChanged && !primaryAddressChanged }
}
