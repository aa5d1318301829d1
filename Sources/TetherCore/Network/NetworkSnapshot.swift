/// The kernel's network state as far as tether cares: interfaces, their addresses, and the
/// default routes of the main table. rtnetlink messages (dump replies and notifications)
/// are folded in one by one; `view()` derives the answer from the whole state, so a message
/// is only ever a wake-up and no decision hangs on any single one of them.
///
/// Folding is total: any message, however odd, leaves a consistent snapshot. Sizes are
/// capped so that a flood (or a fuzzer) cannot grow it without bound.
public struct NetworkSnapshot: Sendable {
    public typealias KindLookup = @Sendable (InterfaceIdentity) -> InterfaceKind

    /// What folding a message means for the caller beyond the new state.
    public struct FoldEffect: Sendable, Equatable {
        /// The kernel may have deleted IPv4 routes without telling anyone: it flushes them
        /// silently when an interface goes admin-down, disappears, or loses an address
        /// (fib_sync_down_dev / fib_flush send no RTM_DELROUTE). Re-read the routes.
        public var routesMayBeStale = false

        public init(routesMayBeStale: Bool = false) { self.routesMayBeStale = routesMayBeStale }

        public mutating func formUnion(_ other: FoldEffect) {
            routesMayBeStale = routesMayBeStale || other.routesMayBeStale
        }
    }

    public static let maxInterfaces = 1024
    public static let maxAddressesPerInterface = 128
    public static let maxDefaultRoutes = 256

    public let ignoreInterfaces: Set<String>
    public private(set) var interfaces: [Int32: NetworkInterface] = [:]
    /// By interface index. Addresses may arrive before their link (notifications during a
    /// dump), so they are kept even for indices not (yet) known.
    public private(set) var addresses: [Int32: [InterfaceAddress]] = [:]
    public private(set) var defaultRoutes: [DefaultRoute] = []
    /// Entries refused because a cap was reached.
    public private(set) var dropped = 0
    private let kindOf: KindLookup

    public init(ignoreInterfaces: [String] = [], kindOf: @escaping KindLookup = { _ in .other }) {
        self.ignoreInterfaces = Set(ignoreInterfaces)
        self.kindOf = kindOf
    }

    // MARK: folding

    @discardableResult
    public mutating func apply(_ messages: [NetlinkMessage]) -> FoldEffect {
        var effect = FoldEffect()
        for message in messages { effect.formUnion(apply(message)) }
        return effect
    }

    @discardableResult
    public mutating func apply(_ message: NetlinkMessage) -> FoldEffect {
        switch message.payload {
        case .link(let link): return apply(link)
        case .address(let address): return apply(address)
        case .route(let route): return apply(route)
        default: return FoldEffect()
        }
    }

    private mutating func apply(_ link: LinkMessage) -> FoldEffect {
        // AF_BRIDGE link messages describe bridge-port state; a DELLINK among them means
        // "left the bridge", not "interface gone".
        guard link.family == Netlink.Family.unspecified else { return FoldEffect() }
        let old = interfaces[link.index]
        if link.isDelete {
            interfaces[link.index] = nil
            addresses[link.index] = nil
            removeNexthops(through: link.index)
            return FoldEffect(routesMayBeStale: old != nil)
        }
        guard old != nil || interfaces.count < NetworkSnapshot.maxInterfaces else {
            dropped += 1
            return FoldEffect()
        }
        let name = link.name ?? old?.name ?? "if\(link.index)"
        var updated = NetworkInterface(index: link.index, name: name, flags: link.flags,
                                       operState: link.operState ?? old?.operState, hardwareType: link.hardwareType,
                                       linkKind: link.linkKind ?? old?.linkKind, kind: old?.kind ?? .other)
        if let old, old.name == updated.name, old.hardwareType == updated.hardwareType {
            updated.kind = old.kind
        } else {
            updated.kind = kindOf(updated.identity)
        }
        interfaces[link.index] = updated
        return FoldEffect(routesMayBeStale: old?.isUp == true && !updated.isUp)
    }

    private mutating func apply(_ message: AddressMessage) -> FoldEffect {
        guard let address = message.address else { return FoldEffect() }
        let entry = InterfaceAddress(address: address, prefixLength: message.prefixLength, flags: message.flags,
                                     scope: message.scope)
        var list = addresses[message.index] ?? []
        if message.isDelete {
            let before = list.count
            list.removeAll { $0.address == address && $0.prefixLength == message.prefixLength }
            if list.count == before { list.removeAll { $0.address == address } }
            addresses[message.index] = list.isEmpty ? nil : list
            return FoldEffect(routesMayBeStale: address.isIPv4 && list.count != before)
        }
        if let i = list.firstIndex(where: { $0.address == address && $0.prefixLength == message.prefixLength }) {
            list[i] = entry
        } else {
            guard list.count < NetworkSnapshot.maxAddressesPerInterface,
                addresses[message.index] != nil || addresses.count < NetworkSnapshot.maxInterfaces
            else {
                dropped += 1
                return FoldEffect()
            }
            list.append(entry)
        }
        addresses[message.index] = list
        return FoldEffect()
    }

    private mutating func apply(_ message: RouteMessage) -> FoldEffect {
        // Only default unicast routes of the main table decide where traffic goes by default;
        // everything else (prefix routes, local table, policy tables, blackholes) is noise.
        guard message.destinationLength == 0, message.table == Netlink.Table.main,
            message.family == Netlink.Family.inet || message.family == Netlink.Family.inet6
        else { return FoldEffect() }
        let route = DefaultRoute(family: message.family, tos: message.tos, metric: message.priority,
                                 nexthops: message.nexthops)
        if message.isDelete {
            let before = defaultRoutes.count
            defaultRoutes.removeAll { $0 == route }
            if defaultRoutes.count == before {
                // Not an exact match (a multipath route notified per nexthop, say): drop what
                // shares the key and an interface with it.
                let indices = Set(route.nexthops.map(\.interfaceIndex))
                defaultRoutes.removeAll { $0.sameKey(route) && $0.nexthops.contains { indices.contains($0.interfaceIndex) } }
            }
            return FoldEffect()
        }
        if message.isReplace { defaultRoutes.removeAll { $0.sameKey(route) } }
        // A default route that is not unicast (unreachable, blackhole, prohibit) or has no
        // way out sends nothing anywhere; it only ever replaces or deletes.
        guard message.type == Netlink.RouteType.unicast, !route.nexthops.isEmpty else { return FoldEffect() }
        guard !defaultRoutes.contains(route) else { return FoldEffect() }
        guard defaultRoutes.count < NetworkSnapshot.maxDefaultRoutes else {
            dropped += 1
            return FoldEffect()
        }
        defaultRoutes.append(route)
        return FoldEffect()
    }

    private mutating func removeNexthops(through index: Int32) {
        for i in defaultRoutes.indices {
            defaultRoutes[i].nexthops.removeAll { $0.interfaceIndex == index }
        }
        defaultRoutes.removeAll { $0.nexthops.isEmpty }
    }

    // MARK: deriving the view

    /// Online when a default route leaves through a usable interface (up, carrier, running,
    /// not loopback, not ignored) that has a global address of the route's family: a route
    /// without a source address of its family cannot carry a connection. Among usable
    /// routes the lowest metric wins, IPv4 before IPv6 on a tie, then the lower ifindex,
    /// so the choice is the same however the messages arrived.
    public func view() -> NetworkView {
        var best: (metric: UInt32, familyRank: Int, index: Int32, family: UInt8)?
        for route in defaultRoutes {
            for hop in route.nexthops {
                guard let interface = interfaces[hop.interfaceIndex], interface.isUsable,
                    !ignoreInterfaces.contains(interface.name),
                    globalAddresses(of: hop.interfaceIndex).contains(where: { $0.address.family == route.family })
                else { continue }
                let candidate = (route.metric, route.family == Netlink.Family.inet ? 0 : 1, hop.interfaceIndex, route.family)
                if best.map({ (candidate.0, candidate.1, candidate.2) < ($0.metric, $0.familyRank, $0.index) }) ?? true {
                    best = candidate
                }
            }
        }
        guard let best, let interface = interfaces[best.index] else { return .offline }
        let ordered = globalAddresses(of: best.index).sorted { a, b in
            rank(a, family: best.family) < rank(b, family: best.family)
        }
        let text = ordered.map { $0.address.description }
        return NetworkView(online: true, defaultInterface: interface.name, kind: interface.kind, addresses: text,
                           primaryAddress: text.first)
    }

    private func globalAddresses(of index: Int32) -> [InterfaceAddress] {
        (addresses[index] ?? []).filter(\.isGlobal)
    }

    /// Preference order of addresses: the route's family, then not deprecated, then not a
    /// secondary/temporary address (privacy addresses rotate; reporting one as primary
    /// would announce a change every few hours), then by value for a stable order.
    private func rank(_ a: InterfaceAddress, family: UInt8) -> (Int, Int, Int, IPAddress) {
        (a.address.family == family ? 0 : 1, a.isDeprecated ? 1 : 0, a.isSecondary ? 1 : 0, a.address)
    }
}
