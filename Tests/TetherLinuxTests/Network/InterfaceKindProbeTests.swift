import Foundation
import Testing
@testable import TetherCore
@testable import TetherLinux

/// The sysfs rules on a fake /sys/class/net tree.
@Suite struct InterfaceKindProbeTests {
    let root: String

    init() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("tether-sys-\(UInt32.random(in: 0...UInt32.max))").path
        let fm = FileManager.default
        func make(_ name: String, type: String?, extra: String? = nil) throws {
            let dir = root + "/" + name
            try fm.createDirectory(atPath: dir, withIntermediateDirectories: true)
            if let type { try (type + "\n").write(toFile: dir + "/type", atomically: true, encoding: .utf8) }
            if let extra { try fm.createDirectory(atPath: dir + "/" + extra, withIntermediateDirectories: true) }
        }
        try make("eth0", type: "1")
        try make("wlan0", type: "1", extra: "wireless")
        try make("wlp2s0", type: "1", extra: "phy80211")
        try make("wg0", type: "65534")
        try make("lo", type: "772")
    }

    func cleanup() { try? FileManager.default.removeItem(atPath: root) }

    @Test func kindsFollowSysfs() {
        defer { cleanup() }
        let probe = InterfaceKindProbe(sysClassNet: root)
        #expect(probe.kind(of: InterfaceIdentity(index: 2, name: "eth0")) == .ethernet)
        #expect(probe.kind(of: InterfaceIdentity(index: 3, name: "wlan0")) == .wifi)
        #expect(probe.kind(of: InterfaceIdentity(index: 4, name: "wlp2s0")) == .wifi)
        #expect(probe.kind(of: InterfaceIdentity(index: 5, name: "wg0")) == .other)
        #expect(probe.kind(of: InterfaceIdentity(index: 1, name: "lo")) == .other)
        #expect(probe.kind(of: InterfaceIdentity(index: 9, name: "../../etc")) == .other)
    }

    @Test func cachedPerIndexAndNameButNotWhenMissing() throws {
        defer { cleanup() }
        let probe = InterfaceKindProbe(sysClassNet: root)
        #expect(probe.kind(of: InterfaceIdentity(index: 2, name: "eth0")) == .ethernet)
        try FileManager.default.removeItem(atPath: root + "/eth0")
        #expect(probe.kind(of: InterfaceIdentity(index: 2, name: "eth0")) == .ethernet)
        // Not in sysfs yet (or another namespace): not cached, found once it appears.
        #expect(probe.kind(of: InterfaceIdentity(index: 7, name: "wlan1")) == .other)
        try FileManager.default.createDirectory(atPath: root + "/wlan1/wireless", withIntermediateDirectories: true)
        #expect(probe.kind(of: InterfaceIdentity(index: 7, name: "wlan1")) == .wifi)
    }
}
