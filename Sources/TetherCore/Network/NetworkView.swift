/// What the rest of tether needs to know about the network, derived from a snapshot:
/// is there a usable way out, through which interface, with which addresses.
/// Offline views carry no interface or addresses, so two offline views are always equal.
public struct NetworkView: Sendable, Equatable {
    /// A default route leaves through an interface that is up, has carrier, and has a global
    /// address of the route's family.
    public var online: Bool
    public var defaultInterface: String?
    public var kind: InterfaceKind?
    /// The default interface's global addresses, preferred first, as text.
    public var addresses: [String]
    /// The first of `addresses`: of the default route's family, not deprecated, not a
    /// secondary or temporary (privacy) address when a better one exists.
    public var primaryAddress: String?

    public init(online: Bool, defaultInterface: String? = nil, kind: InterfaceKind? = nil, addresses: [String] = [],
                primaryAddress: String? = nil) {
        self.online = online
        self.defaultInterface = defaultInterface
        self.kind = kind
        self.addresses = addresses
        self.primaryAddress = primaryAddress
    }

    public static let offline = NetworkView(online: false)

    /// `status.network`: `{online, default_interface, kind, addresses}`.
    public var statusJSON: JSONObject {
        [
            "online": .bool(online),
            "default_interface": JSONValue(defaultInterface),
            "kind": JSONValue(kind?.rawValue),
            "addresses": .array(addresses.map { .string($0) }),
        ]
    }
}
