/// The control-socket events for a network delta, as DESIGN.md names them:
/// `network.online` and `network.change` carry `{default_interface, kind, addresses}`,
/// `network.offline` carries nothing (there is no interface to name).
public enum NetworkEvents {
    public static func events(for delta: NetworkDelta, view: NetworkView) -> [(name: String, data: JSONObject)] {
        if let online = delta.online {
            return online ? [("network.online", data(view))] : [("network.offline", [:])]
        }
        guard !delta.isEmpty, view.online else { return [] }
        return [("network.change", data(view))]
    }

    static func data(_ view: NetworkView) -> JSONObject {
        [
            "default_interface": JSONValue(view.defaultInterface),
            "kind": JSONValue(view.kind?.rawValue),
            "addresses": .array(view.addresses.map { .string($0) }),
        ]
    }
}
