import Foundation
import Glibc
import Synchronization
import Testing
@testable import TetherCore
@testable import TetherLinux

/// The network monitor against the real kernel: a scratch namespace with veth pairs, real
/// rtnetlink notifications, no mocks. Each test waits for the monitor's reports with a
/// deadline and cleans its namespace up whatever happens.
@Suite(.serialized, .enabled(if: getuid() == 0, "needs root: creates network namespaces with `ip netns`"))
struct NetworkMonitorNetnsTests {
    struct Harness {
        let rig: NetnsRig
        let monitor: NetworkMonitor
        let recorder: ChangeRecorder
        let health: HealthRegistry
        let events: EventLog
    }

    /// What the bus delivered to a `network` subscriber. The bus delivers on its own thread,
    /// after the monitor's `onChange` has returned, so tests wait for what they expect.
    final class EventLog: Sendable {
        private let events = Monitor<[TetherEvent]>([])
        func append(_ event: TetherEvent) {
            events.withLock { $0.append(event) }
            events.notifyAll()
        }
        var all: [TetherEvent] { events.withLock { $0 } }

        /// All events once `done` holds for them, or what arrived by the deadline.
        func wait(within timeout: Duration = .seconds(5), until done: ([TetherEvent]) -> Bool) -> [TetherEvent] {
            events.wait(until: MonoClock.now() + timeout) { done($0) ? $0 : nil } ?? all
        }
    }

    static let heartbeatInterval: Duration = .milliseconds(100)

    /// tva (192.0.2.2/24) <-> tvb, both up, default route via 192.0.2.1 on tva, metric 100.
    static func wire(_ rig: NetnsRig) throws {
        try rig.ip("link", "add", "tva", "type", "veth", "peer", "name", "tvb")
        try rig.ip("addr", "add", "192.0.2.2/24", "dev", "tva")
        try rig.ip("link", "set", "tva", "up")
        try rig.ip("link", "set", "tvb", "up")
        try rig.ip("route", "add", "default", "via", "192.0.2.1", "dev", "tva", "metric", "100")
    }

    /// Builds the namespace, starts a monitor in it, runs `body`, and tears everything down.
    static func withMonitor(_ body: (Harness) throws -> Void) async throws {
        let rig = try NetnsRig()
        defer { rig.destroy() }
        try wire(rig)
        let recorder = ChangeRecorder()
        let bus = EventBus()
        let events = EventLog()
        bus.subscribe(topics: [.network]) { events.append($0) }
        let health = HealthRegistry()
        var config = NetworkConfig()
        config.debounce = .milliseconds(50)
        let monitor = NetworkMonitor(config: config, bus: bus, health: health, heartbeatInterval: heartbeatInterval,
                                     kindLookup: { $0.name.hasPrefix("tv") ? .ethernet : .other },
                                     openSocket: { try rig.openNetlinkSocket() },
                                     onChange: { recorder.record($0, $1) })
        try monitor.start()
        let outcome = Result { try body(Harness(rig: rig, monitor: monitor, recorder: recorder, health: health, events: events)) }
        await monitor.stop()
        try outcome.get()
    }

    static func online(through name: String) -> (ChangeRecorder.Change) -> Bool {
        { $0.delta.online != nil && $0.view.online && $0.view.defaultInterface == name }
    }

    static func wentOffline(_ change: ChangeRecorder.Change) -> Bool {
        change.delta.online == false && !change.view.online
    }

    @Test func carrierLossAndDefaultRouteRemovalFlipOnline() async throws {
        try await Self.withMonitor { h in
            // The first report may be offline if the veth carrier was still coming up.
            let first = try #require(h.recorder.wait(from: 0, Self.online(through: "tva")), "never online: \(h.recorder.all)")
            #expect(first.view.addresses == ["192.0.2.2"])
            #expect(first.view.kind == .ethernet)
            #expect(h.recorder.all.first?.delta.initial == true)

            // Carrier loss: the peer end goes down, tva keeps IFF_UP but loses LOWER_UP.
            var mark = h.recorder.count
            try h.rig.ip("link", "set", "tvb", "down")
            #expect(h.recorder.wait(from: mark, Self.wentOffline) != nil, "no offline after carrier loss")
            #expect(h.monitor.view.online == false)
            #expect(h.monitor.status["online"] == false)

            mark = h.recorder.count
            try h.rig.ip("link", "set", "tvb", "up")
            #expect(h.recorder.wait(from: mark, Self.online(through: "tva")) != nil, "no online after carrier returned")

            // The default route goes and comes back.
            mark = h.recorder.count
            try h.rig.ip("route", "del", "default")
            #expect(h.recorder.wait(from: mark, Self.wentOffline) != nil, "no offline after route removal")
            mark = h.recorder.count
            try h.rig.ip("route", "add", "default", "via", "192.0.2.1", "dev", "tva", "metric", "100")
            #expect(h.recorder.wait(from: mark, Self.online(through: "tva")) != nil, "no online after route returned")

            // The address goes: a route without a source address is not a way out.
            mark = h.recorder.count
            try h.rig.ip("addr", "del", "192.0.2.2/24", "dev", "tva")
            #expect(h.recorder.wait(from: mark, Self.wentOffline) != nil, "no offline after address removal")

            #expect(h.monitor.status["default_interface"] == .null)
            // Every report went out on the bus as well, in order.
            let expected = h.recorder.all.flatMap { NetworkEvents.events(for: $0.delta, view: $0.view).map(\.name) }
            let published = h.events.wait { $0.count >= expected.count }.map(\.name)
            #expect(published == expected)
            #expect(published.suffix(5) == ["network.offline", "network.online", "network.offline", "network.online", "network.offline"])
        }
    }

    @Test func adminDownFlushesIPv4RoutesWithoutTellingAnyone() async throws {
        // `ip link set tva down` makes the kernel drop the IPv4 default route without an
        // RTM_DELROUTE. Bringing tva back up must not bring "online" back: the route is gone.
        try await Self.withMonitor { h in
            #expect(h.recorder.wait(from: 0, Self.online(through: "tva")) != nil)
            var mark = h.recorder.count
            try h.rig.ip("link", "set", "tva", "down")
            #expect(h.recorder.wait(from: mark, Self.wentOffline) != nil)
            mark = h.recorder.count
            try h.rig.ip("link", "set", "tva", "up")
            // Wait until the monitor has seen tva usable again and has re-read the tables.
            let caughtUp = ChangeRecorder.eventually {
                h.monitor.usableInterfaces["tva"] == true && !h.monitor.stats.resyncPending
                    && h.monitor.stats.resyncs >= 2
            }
            #expect(caughtUp, "monitor never caught up: \(h.monitor.stats) \(h.monitor.usableInterfaces)")
            #expect(h.monitor.derivedView?.online == false, "stale route: \(String(describing: h.monitor.derivedView))")
            #expect(h.recorder.all[mark...].allSatisfy { !$0.view.online }, "went online without a route")

            try h.rig.ip("route", "add", "default", "via", "192.0.2.1", "dev", "tva", "metric", "100")
            #expect(h.recorder.wait(from: mark, Self.online(through: "tva")) != nil)
        }
    }

    @Test func defaultRouteMovingToAnotherInterfaceIsAChange() async throws {
        try await Self.withMonitor { h in
            #expect(h.recorder.wait(from: 0, Self.online(through: "tva")) != nil)
            try h.rig.ip("link", "add", "tvc", "type", "veth", "peer", "name", "tvd")
            try h.rig.ip("addr", "add", "198.51.100.2/24", "dev", "tvc")
            try h.rig.ip("link", "set", "tvc", "up")
            try h.rig.ip("link", "set", "tvd", "up")
            let mark = h.recorder.count
            try h.rig.ip("route", "add", "default", "via", "198.51.100.1", "dev", "tvc", "metric", "5")
            let moved = h.recorder.wait(from: mark) { $0.view.defaultInterface == "tvc" }
            #expect(moved?.delta == NetworkDelta(defaultInterfaceChanged: true, primaryAddressChanged: true),
                    "\(h.recorder.all) derived \(String(describing: h.monitor.derivedView)) \(h.monitor.usableInterfaces) \(h.monitor.stats)")
            #expect(moved?.view.addresses == ["198.51.100.2"])
            let change = h.events.wait { $0.last?.data["default_interface"] == "tvc" }.last
            #expect(change?.name == "network.change")
            #expect(change?.data["default_interface"] == "tvc")
            #expect(change?.data["kind"] == "ethernet")
            #expect(change?.data["addresses"] == ["198.51.100.2"])
        }
    }

    @Test func resyncsAfterTheKernelDroppedNotifications() async throws {
        let rig = try NetnsRig()
        defer { rig.destroy() }
        try Self.wire(rig)
        try rig.ip("link", "add", "tvx", "type", "veth", "peer", "name", "tvy")
        try rig.ip("link", "set", "tvx", "up")
        let recorder = ChangeRecorder()
        let gate = CallbackGate()
        defer { gate.release() }
        var config = NetworkConfig()
        config.debounce = .milliseconds(50)
        // The smallest receive queue the kernel grants: a burst overflows it at once.
        let monitor = NetworkMonitor(config: config, bus: EventBus(), health: HealthRegistry(),
                                     heartbeatInterval: Self.heartbeatInterval,
                                     kindLookup: { _ in .ethernet },
                                     openSocket: { try rig.openNetlinkSocket(receiveBufferBytes: 1) },
                                     onChange: { view, delta in
                                         recorder.record(view, delta)
                                         // Only the offline report is held: the initial one may
                                         // still be running when the gate is armed.
                                         if delta.online == false { gate.pass() }
                                     })
        try monitor.start()
        let outcome = Result { () throws in
            #expect(recorder.wait(from: 0, Self.online(through: "tva")) != nil)

            // Hold the monitor thread in its offline callback...
            gate.arm()
            let mark = recorder.count
            try rig.ip("link", "set", "tvb", "down")
            #expect(gate.waitUntilHolding(), "the offline callback never came")
            // ...while 200 addresses and the carrier's return pile up in a queue nobody reads.
            try rig.batch((0..<200).map { "addr add 10.9.\($0 / 250).\($0 % 250 + 1)/32 dev tvx" } + ["link set tvb up"])
            gate.release()

            // Some of that news is lost (ENOBUFS); a full re-read must still find the way out.
            #expect(recorder.wait(from: mark, Self.online(through: "tva")) != nil, "\(monitor.stats)")
            #expect(monitor.stats.overflows >= 1, "\(monitor.stats)")
            #expect(monitor.stats.resyncs >= 2, "\(monitor.stats)")
        }
        await monitor.stop()
        try outcome.get()
    }

    /// A monitor of the rig's namespace with default settings that nobody listens to.
    static func startedQuietMonitor(in rig: NetnsRig, health: HealthRegistry) throws -> NetworkMonitor {
        let monitor = NetworkMonitor(config: NetworkConfig(), bus: EventBus(), health: health, heartbeatInterval: heartbeatInterval,
                                     openSocket: { try rig.openNetlinkSocket() }, onChange: { _, _ in })
        try monitor.start()
        return monitor
    }

    @Test func beatsWhileIdleAndStopsPromptly() async throws {
        let rig = try NetnsRig()
        defer { rig.destroy() }
        let health = HealthRegistry()
        let monitor = try Self.startedQuietMonitor(in: rig, health: health)
        #expect(health.loops == [NetworkMonitor.loopName])
        #expect(ChangeRecorder.eventually { monitor.isReady })
        // An empty namespace: nothing happens on netlink, yet the loop must keep proving
        // it is alive. Sample the verdict over a second of silence.
        for _ in 0..<10 {
            usleep(100_000)
            let verdict = health.verdict(maxAge: Self.heartbeatInterval * 3)
            #expect(verdict.healthy, "stale: \(verdict.stale)")
        }
        #expect(monitor.view == .offline)
        let start = MonoClock.now()
        await monitor.stop()
        let took = MonoClock.now() - start
        #expect(took < .milliseconds(100), "stop took \(took)")
        #expect(health.loops.isEmpty)
        await monitor.stop()
    }

    @Test func aClobberedSocketEndsTheThreadAndSaysWhy() async throws {
        let rig = try NetnsRig()
        defer { rig.destroy() }
        let health = HealthRegistry()
        let monitor = try Self.startedQuietMonitor(in: rig, health: health)
        #expect(ChangeRecorder.eventually { monitor.isReady })
        #expect(monitor.injectSocketFault())
        // Not ridden out by reopening: the descriptor is not ours any more.
        let ended = Task { await monitor.ended() }
        let bound = Task {
            try await Task.sleep(for: .seconds(2))
            ended.cancel()
        }
        let reason = await ended.value
        bound.cancel()
        #expect(reason?.contains("Socket operation on non-socket") == true, "\(reason ?? "did not end")")
        await monitor.stop()
        #expect(health.loops.isEmpty)
    }
}
