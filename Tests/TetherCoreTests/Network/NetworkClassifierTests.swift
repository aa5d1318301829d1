import Testing
@testable import TetherCore

/// Table tests of classification, end to end from wire bytes: a base network, some netlink
/// messages on top, and the delta the session must see. Noise must give an empty delta.
@Suite struct NetworkClassifierTests {
    static let lo: Int32 = 1, eth0: Int32 = 2, wlan0: Int32 = 3, tun0: Int32 = 4, usb0: Int32 = 5

    static let loopbackBase: [[UInt8]] = [
        NL.link(index: lo, flags: NL.upRunning | Netlink.InterfaceFlag.loopback, name: "lo"),
        NL.address(index: lo, "127.0.0.1", prefix: 8, scope: Netlink.Scope.host),
        NL.address(index: lo, "::1", prefix: 128, scope: Netlink.Scope.host),
    ]

    /// eth0 alone: online through it.
    static let wired: [[UInt8]] = loopbackBase + [
        NL.link(index: eth0, name: "eth0"),
        NL.address(index: eth0, "192.0.2.2", prefix: 24),
        NL.address(index: eth0, "fe80::2", prefix: 64, scope: Netlink.Scope.link),
        NL.route(oif: eth0, gateway: "192.0.2.1", priority: 100),
    ]

    /// eth0 preferred (metric 100), wlan0 as a fallback (metric 600).
    static let dual: [[UInt8]] = wired + [
        NL.link(index: wlan0, name: "wlan0"),
        NL.address(index: wlan0, "198.51.100.7", prefix: 24),
        NL.route(oif: wlan0, gateway: "198.51.100.1", priority: 600),
    ]

    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var base: [[UInt8]]
        var then: [[UInt8]]
        var expected: NetworkDelta
        var testDescription: String { name }
    }

    static let noChange = NetworkDelta()
    static let wentOffline = NetworkDelta(online: false, defaultInterfaceChanged: true, primaryAddressChanged: true)
    static let movedToWifi = NetworkDelta(defaultInterfaceChanged: true, primaryAddressChanged: true)

    static let cases: [Case] = [
        // Online flips.
        Case(name: "carrier loss", base: wired,
             then: [NL.link(index: eth0, flags: Netlink.InterfaceFlag.up, name: "eth0")], expected: wentOffline),
        Case(name: "admin down", base: wired,
             then: [NL.link(index: eth0, flags: 0, name: "eth0")], expected: wentOffline),
        Case(name: "dormant (associated, WPA handshake not done)", base: wired,
             then: [NL.link(index: eth0, flags: Netlink.InterfaceFlag.up | Netlink.InterfaceFlag.lowerUp, name: "eth0",
                            operState: Netlink.OperState.dormant)], expected: wentOffline),
        Case(name: "default route removed", base: wired,
             then: [NL.route(new: false, oif: eth0, gateway: "192.0.2.1", priority: 100)], expected: wentOffline),
        Case(name: "address removed", base: wired,
             then: [NL.address(new: false, index: eth0, "192.0.2.2", prefix: 24)], expected: wentOffline),
        Case(name: "interface deleted", base: wired,
             then: [NL.link(new: false, index: eth0, name: "eth0")], expected: wentOffline),
        Case(name: "default route replaced by an unreachable one", base: wired,
             then: [NL.route(oif: nil, priority: 100, type: 7, messageFlags: Netlink.Flag.replace)], expected: wentOffline),
        Case(name: "carrier returns", base: wired + [NL.link(index: eth0, flags: Netlink.InterfaceFlag.up, name: "eth0")],
             then: [NL.link(index: eth0, name: "eth0")],
             expected: NetworkDelta(online: true, defaultInterfaceChanged: true, primaryAddressChanged: true)),

        // The default moves while online.
        Case(name: "default route moves to wifi", base: dual,
             then: [NL.route(new: false, oif: eth0, gateway: "192.0.2.1", priority: 100)], expected: movedToWifi),
        Case(name: "carrier loss with wifi fallback", base: dual,
             then: [NL.link(index: eth0, flags: Netlink.InterfaceFlag.up, name: "eth0")], expected: movedToWifi),
        Case(name: "wifi route gets the lower metric", base: dual,
             then: [NL.route(oif: wlan0, gateway: "198.51.100.1", priority: 50)], expected: movedToWifi),
        Case(name: "primary address changes", base: wired,
             then: [NL.address(index: eth0, "192.0.2.99", prefix: 24),
                    NL.address(new: false, index: eth0, "192.0.2.2", prefix: 24)],
             expected: NetworkDelta(primaryAddressChanged: true)),

        // Noise.
        Case(name: "link-local address", base: wired,
             then: [NL.address(index: eth0, "169.254.9.9", prefix: 16, scope: Netlink.Scope.link)], expected: noChange),
        // `ip addr add 169.254.9.9/16` gets global scope unless told otherwise: the address
        // itself must be recognised, not only the scope.
        Case(name: "better default through a link-local-only interface (v4)", base: wired,
             then: [NL.link(index: usb0, name: "usb0"), NL.address(index: usb0, "169.254.9.9", prefix: 16),
                    NL.route(oif: usb0, priority: 1)], expected: noChange),
        Case(name: "better default through a link-local-only interface (v6)", base: wired,
             then: [NL.link(index: usb0, name: "usb0"), NL.address(index: usb0, "fe80::99", prefix: 64),
                    NL.route(family: Netlink.Family.inet6, oif: usb0, gateway: "fe80::1", priority: 1)],
             expected: noChange),
        Case(name: "better default through a multicast-only interface", base: wired,
             then: [NL.link(index: usb0, name: "usb0"), NL.address(index: usb0, "ff05::2", prefix: 128),
                    NL.route(family: Netlink.Family.inet6, oif: usb0, priority: 1)], expected: noChange),
        Case(name: "loopback changes", base: wired,
             then: [NL.address(index: lo, "127.0.0.2", prefix: 8, scope: Netlink.Scope.host),
                    NL.link(index: lo, flags: Netlink.InterfaceFlag.loopback, name: "lo")], expected: noChange),
        Case(name: "default route through loopback", base: wired,
             then: [NL.address(index: lo, "203.0.113.1", prefix: 32), NL.route(oif: lo, priority: 0)], expected: noChange),
        Case(name: "ignored interface with a better default", base: wired,
             then: [NL.link(index: tun0, name: "tun0"), NL.address(index: tun0, "203.0.113.5", prefix: 32),
                    NL.route(oif: tun0, priority: 0)], expected: noChange),
        Case(name: "better default in another table", base: dual,
             then: [NL.route(table: 100, attributeTable: 100, oif: wlan0, gateway: "198.51.100.1", priority: 1)],
             expected: noChange),
        Case(name: "better default in a table above 255", base: dual,
             then: [NL.route(table: 252, attributeTable: 1000, oif: wlan0, gateway: "198.51.100.1", priority: 1)],
             expected: noChange),
        Case(name: "prefix and multicast routes", base: dual,
             then: [NL.route(destinationLength: 24, oif: wlan0, priority: 1, destination: "10.0.0.0"),
                    NL.route(destinationLength: 4, oif: wlan0, destination: "224.0.0.0")], expected: noChange),
        Case(name: "tentative IPv6 address with a better IPv6 default", base: dual,
             then: [NL.address(index: wlan0, "2001:db8::7", prefix: 64, flags: Netlink.AddressFlag.tentative),
                    NL.route(family: Netlink.Family.inet6, oif: wlan0, gateway: "fe80::1", priority: 1)],
             expected: noChange),
        Case(name: "dadfailed IPv6 address", base: dual,
             then: [NL.address(index: wlan0, "2001:db8::7", prefix: 64, flags: Netlink.AddressFlag.dadFailed),
                    NL.route(family: Netlink.Family.inet6, oif: wlan0, gateway: "fe80::1", priority: 1)],
             expected: noChange),
        Case(name: "secondary address", base: wired,
             then: [NL.address(index: eth0, "192.0.2.1", prefix: 24, flags: Netlink.AddressFlag.secondary)],
             expected: noChange),
        Case(name: "bridge-port delete is not the interface leaving", base: wired,
             then: [NL.link(new: false, index: eth0, name: "eth0", family: Netlink.Family.bridge)], expected: noChange),
        Case(name: "the same state dumped again", base: wired, then: wired, expected: noChange),
        Case(name: "v4 default through an interface with only IPv6", base: wired,
             then: [NL.link(index: wlan0, name: "wlan0"), NL.address(index: wlan0, "2001:db8::7", prefix: 64),
                    NL.route(oif: wlan0, gateway: "198.51.100.1", priority: 1)], expected: noChange),
        Case(name: "fallback route changes while not in use", base: dual,
             then: [NL.route(new: false, oif: wlan0, gateway: "198.51.100.1", priority: 600)], expected: noChange),
    ]

    static func snapshot(_ messages: [[UInt8]]) -> NetworkSnapshot {
        var snapshot = NetworkSnapshot(ignoreInterfaces: ["lo", "tun0"]) { $0.name.hasPrefix("wlan") ? .wifi : .ethernet }
        for bytes in messages {
            let result = NetlinkParser.parse(bytes)
            precondition(result.errors.isEmpty, "fixture does not parse: \(result.errors)")
            snapshot.apply(result.messages)
        }
        return snapshot
    }

    @Test(arguments: cases)
    func classify(_ c: Case) {
        let old = Self.snapshot(c.base).view()
        let new = Self.snapshot(c.base + c.then).view()
        #expect(old.online || c.name == "carrier returns")
        #expect(NetworkClassifier.classify(old: old, new: new) == c.expected, "\(old) -> \(new)")
        #expect(NetworkClassifier.classify(old: old, new: new).isEmpty == (c.expected == Self.noChange))
    }

    @Test func wiredView() {
        let view = Self.snapshot(Self.wired).view()
        #expect(view == NetworkView(online: true, defaultInterface: "eth0", kind: .ethernet, addresses: ["192.0.2.2"],
                                    primaryAddress: "192.0.2.2"))
    }

    @Test func initialDeltaStatesTheNetwork() {
        let online = NetworkClassifier.initial(Self.snapshot(Self.wired).view())
        #expect(online == NetworkDelta(online: true, defaultInterfaceChanged: true, primaryAddressChanged: true, initial: true))
        let offline = NetworkClassifier.initial(.offline)
        #expect(offline.online == false && offline.initial && !offline.isEmpty)
    }

    @Test func emptyDeltaBetweenOfflineViews() {
        #expect(NetworkClassifier.classify(old: .offline, new: .offline).isEmpty)
    }
}
