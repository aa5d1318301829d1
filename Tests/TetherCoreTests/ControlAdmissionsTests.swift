import Testing
@testable import TetherCore

@Suite struct ControlAdmissionsTests {
    @Test func aLeakingUIDIsStoppedAtItsLimitAndOthersStillGetIn() {
        var admissions = ControlAdmissions(limits: .init(perUID: 16, total: 128))
        for _ in 0..<16 { #expect(admissions.admit(uid: 1000, privileged: false) == .admitted) }
        for _ in 0..<84 { #expect(admissions.admit(uid: 1000, privileged: false) == .uidAtLimit) }
        #expect(admissions.refused[1000] == 84)
        #expect(admissions.admit(uid: 1001, privileged: false) == .admitted)
        #expect(admissions.admit(uid: 0, privileged: true) == .admitted)
    }

    @Test func rootAndTheDaemonsUserGetInWhenEverybodyElseIsFull() {
        var admissions = ControlAdmissions(limits: .init(perUID: 4, total: 8))
        for uid in UInt32(2000)..<2002 { for _ in 0..<4 { _ = admissions.admit(uid: uid, privileged: false) } }
        #expect(admissions.admit(uid: 2002, privileged: false) == .full)
        #expect(admissions.admit(uid: 0, privileged: true) == .admitted)
        #expect(admissions.admit(uid: 999, privileged: true) == .admitted)
        // Privileged peers have their own per-uid bound, so even root cannot exhaust descriptors.
        for _ in 0..<3 { _ = admissions.admit(uid: 0, privileged: true) }
        #expect(admissions.admit(uid: 0, privileged: true) == .uidAtLimit)
        #expect(admissions.totalOpen == 8 + 4 + 1)
    }

    @Test func releasingFreesTheSlotForThatUIDAndTheTotal() {
        var admissions = ControlAdmissions(limits: .init(perUID: 1, total: 1))
        #expect(admissions.admit(uid: 5, privileged: false) == .admitted)
        #expect(admissions.admit(uid: 6, privileged: false) == .full)
        admissions.release(uid: 5, privileged: false)
        #expect(admissions.admit(uid: 6, privileged: false) == .admitted)
        admissions.release(uid: 42, privileged: false)  // never opened: nothing changes
        #expect(admissions.unprivilegedOpen == 1 && admissions.open == [6: 1])
    }
}
