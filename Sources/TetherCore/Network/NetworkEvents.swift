/// The control-socket events for a network delta, as DESIGN.md names them:
/// `network.online` and `network.change` carry `{default_interface, kind, addresses}`,
/// `network.offline` carries nothing (there is no interface to name).
public enum NetworkEvents {
    public static func events(for delta: NetworkDelta, view: NetworkView) -> [TetherEventKind] {
        if let online = delta.online {
            return online ? [.networkOnline(view)] : [.networkOffline]
        }
        guard !delta.isEmpty, view.online else { return [] }
        return [.networkChange(view)]
    }
}
