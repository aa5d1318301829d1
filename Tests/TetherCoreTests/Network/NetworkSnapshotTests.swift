import Testing
@testable import TetherCore

@Suite struct NetworkSnapshotTests {
    func fold(_ messages: [[UInt8]], ignore: [String] = ["lo"],
              kindOf: @escaping NetworkSnapshot.KindLookup = { _ in .ethernet }) -> (NetworkSnapshot, NetworkSnapshot.FoldEffect) {
        var snapshot = NetworkSnapshot(ignoreInterfaces: ignore, kindOf: kindOf)
        var effect = NetworkSnapshot.FoldEffect()
        for bytes in messages { effect.formUnion(snapshot.apply(NL.decode(bytes))) }
        return (snapshot, effect)
    }

    @Test func emptySnapshotIsOffline() {
        #expect(NetworkSnapshot().view() == .offline)
    }

    @Test func ipv6OnlyNetworkIsOnline() {
        let (snapshot, _) = fold([
            NL.link(index: 2, name: "wlan0"),
            NL.address(index: 2, "2001:db8::a", prefix: 64),
            NL.route(family: Netlink.Family.inet6, oif: 2, gateway: "fe80::1", priority: 1024),
        ], kindOf: { _ in .wifi })
        #expect(snapshot.view() == NetworkView(online: true, defaultInterface: "wlan0", kind: .wifi,
                                               addresses: ["2001:db8::a"], primaryAddress: "2001:db8::a"))
    }

    @Test func messagesMayArriveInAnyOrder() {
        let messages = [
            NL.route(oif: 2, gateway: "192.0.2.1"),
            NL.address(index: 2, "192.0.2.2", prefix: 24),
            NL.link(index: 2, name: "eth0"),
        ]
        #expect(fold(messages).0.view() == fold(messages.reversed()).0.view())
        #expect(fold(messages).0.view().online)
    }

    @Test func addressesArePreferredByFamilyThenFlags() {
        let (snapshot, _) = fold([
            NL.link(index: 2, name: "eth0"),
            NL.address(index: 2, "2001:db8::1", prefix: 64),
            NL.address(index: 2, "192.0.2.9", prefix: 24, flags: Netlink.AddressFlag.secondary),
            NL.address(index: 2, "192.0.2.200", prefix: 24, flags: Netlink.AddressFlag.deprecated),
            NL.address(index: 2, "192.0.2.50", prefix: 24),
            NL.route(oif: 2, gateway: "192.0.2.1"),
        ])
        #expect(snapshot.view().addresses == ["192.0.2.50", "192.0.2.9", "192.0.2.200", "2001:db8::1"])
        #expect(snapshot.view().primaryAddress == "192.0.2.50")
    }

    @Test func lowestMetricThenIPv4ThenIndexWins() {
        let base = [
            NL.link(index: 2, name: "eth0"), NL.address(index: 2, "192.0.2.2", prefix: 24),
            NL.address(index: 2, "2001:db8::2", prefix: 64),
            NL.link(index: 3, name: "eth1"), NL.address(index: 3, "198.51.100.2", prefix: 24),
            NL.address(index: 3, "2001:db8:1::2", prefix: 64),
        ]
        let tie = fold(base + [
            NL.route(family: Netlink.Family.inet6, oif: 2, gateway: "fe80::1", priority: 100),
            NL.route(oif: 3, gateway: "198.51.100.1", priority: 100),
        ]).0.view()
        #expect(tie.defaultInterface == "eth1")
        let sameFamily = fold(base + [
            NL.route(oif: 3, gateway: "198.51.100.1", priority: 100),
            NL.route(oif: 2, gateway: "192.0.2.1", priority: 100, tos: 4),
        ]).0.view()
        #expect(sameFamily.defaultInterface == "eth0")
    }

    @Test func replaceSupersedesTheRouteWithTheSameKey() {
        let (snapshot, _) = fold([
            NL.link(index: 2, name: "eth0"), NL.address(index: 2, "192.0.2.2", prefix: 24),
            NL.link(index: 3, name: "eth1"), NL.address(index: 3, "198.51.100.2", prefix: 24),
            NL.route(oif: 2, gateway: "192.0.2.1", priority: 10),
            NL.route(oif: 3, gateway: "198.51.100.1", priority: 10, messageFlags: Netlink.Flag.replace),
        ])
        #expect(snapshot.defaultRoutes.count == 1)
        #expect(snapshot.view().defaultInterface == "eth1")
    }

    @Test func multipathRouteUsesAnyUsableNexthop() {
        let (snapshot, _) = fold([
            NL.link(index: 2, name: "eth0"), NL.link(index: 3, name: "eth1"),
            NL.address(index: 3, "2001:db8::3", prefix: 64),
            NL.route(family: Netlink.Family.inet6, oif: nil, priority: 1024, multipath: [(2, "fe80::1"), (3, "fe80::2")]),
        ])
        #expect(snapshot.view().defaultInterface == "eth1")
        // Deleting eth1 leaves the route with only its eth0 leg.
        var after = snapshot
        after.apply(NL.decode(NL.link(new: false, index: 3, name: "eth1")))
        #expect(after.defaultRoutes.first?.nexthops == [RouteNexthop(interfaceIndex: 2, gateway: IPAddress("fe80::1"))])
        #expect(!after.view().online)
    }

    @Test func perNexthopDeleteOfMultipathRoute() {
        let (snapshot, _) = fold([
            NL.route(family: Netlink.Family.inet6, oif: nil, priority: 1024, multipath: [(2, "fe80::1"), (3, "fe80::2")]),
            NL.route(new: false, family: Netlink.Family.inet6, oif: 3, gateway: "fe80::2", priority: 1024),
        ])
        #expect(snapshot.defaultRoutes.isEmpty)
    }

    @Test func deletingALinkForgetsItsAddressesAndRoutes() {
        let (snapshot, effect) = fold([
            NL.link(index: 2, name: "eth0"), NL.address(index: 2, "192.0.2.2", prefix: 24),
            NL.route(oif: 2, gateway: "192.0.2.1"), NL.link(new: false, index: 2, name: "eth0"),
        ])
        #expect(snapshot.interfaces.isEmpty && snapshot.addresses.isEmpty && snapshot.defaultRoutes.isEmpty)
        #expect(effect.routesMayBeStale)
    }

    @Test func silentRouteFlushesAreFlagged() {
        let base = [NL.link(index: 2, name: "eth0"), NL.address(index: 2, "192.0.2.2", prefix: 24),
                    NL.address(index: 2, "2001:db8::2", prefix: 64)]
        #expect(!fold(base).1.routesMayBeStale)
        #expect(fold(base + [NL.link(index: 2, flags: 0, name: "eth0")]).1.routesMayBeStale)
        #expect(fold(base + [NL.address(new: false, index: 2, "192.0.2.2", prefix: 24)]).1.routesMayBeStale)
        // Carrier loss keeps routes; IPv6 deletions are always notified.
        #expect(!fold(base + [NL.link(index: 2, flags: Netlink.InterfaceFlag.up, name: "eth0")]).1.routesMayBeStale)
        #expect(!fold(base + [NL.address(new: false, index: 2, "2001:db8::2", prefix: 64)]).1.routesMayBeStale)
    }

    @Test func kindIsLookedUpOncePerNameAndAgainOnRename() {
        final class Calls: @unchecked Sendable { var names: [String] = [] }
        let calls = Calls()
        let (snapshot, _) = fold([
            NL.link(index: 2, name: "eth0"), NL.link(index: 2, flags: 0, name: "eth0"),
            NL.link(index: 2, name: "wlan0"),
        ], kindOf: { identity in
            calls.names.append(identity.name)
            return identity.name == "wlan0" ? .wifi : .ethernet
        })
        #expect(calls.names == ["eth0", "wlan0"])
        #expect(snapshot.interfaces[2]?.kind == .wifi)
    }

    @Test func sizeIsCapped() {
        var snapshot = NetworkSnapshot()
        for i in 0..<(NetworkSnapshot.maxInterfaces + 10) {
            snapshot.apply(NL.decode(NL.link(index: Int32(i + 1), name: "v\(i)")))
        }
        for i in 0..<(NetworkSnapshot.maxDefaultRoutes + 10) {
            snapshot.apply(NL.decode(NL.route(oif: 1, priority: UInt32(i))))
        }
        #expect(snapshot.interfaces.count == NetworkSnapshot.maxInterfaces)
        #expect(snapshot.defaultRoutes.count == NetworkSnapshot.maxDefaultRoutes)
        #expect(snapshot.dropped == 20)
    }

    @Test func statusJSON() {
        let view = NetworkView(online: true, defaultInterface: "wlan0", kind: .wifi, addresses: ["192.0.2.1"],
                               primaryAddress: "192.0.2.1")
        #expect(JSONWriter.string(.object(view.statusJSON))
                == #"{"online":true,"default_interface":"wlan0","kind":"wifi","addresses":["192.0.2.1"]}"#)
        #expect(JSONWriter.string(.object(NetworkView.offline.statusJSON))
                == #"{"online":false,"default_interface":null,"kind":null,"addresses":[]}"#)
    }
}

@Suite struct NetworkEventsTests {
    let view = NetworkView(online: true, defaultInterface: "eth0", kind: .ethernet, addresses: ["192.0.2.2"],
                           primaryAddress: "192.0.2.2")

    @Test func onlineOfflineAndChange() {
        let online = NetworkEvents.events(for: NetworkDelta(online: true, defaultInterfaceChanged: true), view: view)
        #expect(online.map(\.name) == ["network.online"])
        #expect(online.first?.data["default_interface"] == "eth0")
        #expect(online.first?.data["kind"] == "ethernet")
        #expect(online.first?.data["addresses"] == ["192.0.2.2"])
        let offline = NetworkEvents.events(for: NetworkDelta(online: false, defaultInterfaceChanged: true), view: .offline)
        #expect(offline.map(\.name) == ["network.offline"])
        let change = NetworkEvents.events(for: NetworkDelta(primaryAddressChanged: true), view: view)
        #expect(change.map(\.name) == ["network.change"])
        #expect(NetworkEvents.events(for: NetworkDelta(), view: view).isEmpty)
    }
}
