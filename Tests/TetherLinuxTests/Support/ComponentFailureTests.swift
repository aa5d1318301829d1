import Testing
@testable import TetherLinux

/// The line tetherd exits 70 with when a component ends on its own: systemd's journal shows it.
@Suite struct ComponentFailureTests {
    @Test func namesTheComponentAndTheReason() {
        let failure = ComponentFailure(component: "network-monitor", reason: "netlink recvfrom: Socket operation on non-socket")
        #expect(failure.description == "component network-monitor ended unexpectedly: netlink recvfrom: Socket operation on non-socket")
    }
}
