/// Decides what a move from one `NetworkView` to the next means. The views have already
/// dropped the noise (loopback, link-local, multicast, tentative addresses, ignored
/// interfaces, other routing tables), so equal views are no change at all, whatever
/// netlink traffic produced them.
public enum NetworkClassifier {
    public static func classify(old: NetworkView, new: NetworkView) -> NetworkDelta {
        NetworkDelta(online: old.online == new.online ? nil : new.online,
                     defaultInterfaceChanged: old.defaultInterface != new.defaultInterface,
                     primaryAddressChanged: old.primaryAddress != new.primaryAddress)
    }

    /// The first evaluation after start: there is no old view, so the state itself is news.
    /// `online` is always set, so the session learns at once whether to wait.
    public static func initial(_ view: NetworkView) -> NetworkDelta {
        NetworkDelta(online: view.online, defaultInterfaceChanged: view.defaultInterface != nil,
                     primaryAddressChanged: view.primaryAddress != nil, initial: true)
    }
}
