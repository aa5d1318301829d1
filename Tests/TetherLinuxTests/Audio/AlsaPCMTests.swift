import Foundation
import Testing
import TetherCore
@testable import TetherLinux

/// The ALSA wrapper on its own. In the serialized rig suite: libasound reads the process-wide
/// ALSA_CONFIG_PATH that the rig tests change.
extension AudioEngineRigTests {
    @Test func plugSuggestionConvertsHardwareNames() {
        #expect(AlsaDeviceError.plugSuggestion(for: "hw:1,0") == "plughw:1,0")
        #expect(AlsaDeviceError.plugSuggestion(for: "hw:CARD=USB,DEV=0") == "plughw:CARD=USB,DEV=0")
        #expect(AlsaDeviceError.plugSuggestion(for: "plughw:1,0") == "default")
        #expect(AlsaDeviceError.plugSuggestion(for: "dmix") == "plug:dmix")
    }

    @Test func openErrorsNameTheDeviceAndTheCause() throws {
        let rig = try AudioRig("open-errors")
        _ = rig
        do {
            _ = try AlsaPCM.open(device: "tether_no_such_device", direction: .playback, rate: 24000, channels: 1, periodFrames: 480)
            Issue.record("opened a device that does not exist")
        } catch {
            #expect(error.kind == .unavailable)
            #expect(error.message.contains("playback device 'tether_no_such_device'"))
            #expect(error.message.contains("No such file or directory"))
        }
        do {
            _ = try AlsaPCM.open(device: "tether_playback", direction: .playback, rate: 24000, channels: 0, periodFrames: 480)
            Issue.record("accepted zero channels")
        } catch {
            #expect(error.kind == .unsupported)
            #expect(error.message.contains("invalid settings"))
        }
    }

    /// What barge-in relies on, at the wrapper: the file plugin holds one buffer back; a
    /// rewind takes it back so a drop cannot play it out.
    @Test func rewindTakesBackWhatTheDeviceHasNotPlayed() throws {
        let format = AudioRig.Format()
        let rig = try AudioRig("rewind")
        try rig.startReader(format: format)
        let pcm = try AlsaPCM.open(device: "tether_playback", direction: .playback, rate: 24000, channels: 1, periodFrames: 480)
        #expect(pcm.periodFrames == 480 && pcm.bufferFrames == 1920)
        var period = [Int16](repeating: 0, count: 480)
        for n in 1...8 {
            for i in period.indices { period[i] = Int16(n * 100) }
            let result = period.withUnsafeBytes { pcm.writePeriod(from: $0.baseAddress!) }
            guard case .ok = result else { Issue.record("write \(n) failed"); return }
        }
        let rewound = pcm.discardAndStop()
        #expect(rewound == 1920, "the last four periods were still in the device")
        pcm.close()
        #expect(waitFor(.seconds(2)) { rig.played().count >= 4 * 960 })
        // Give a straggler every chance to show up: wait until the reader is quiet.
        var last = -1
        _ = waitFor(.seconds(1), poll: .milliseconds(100)) {
            let n = rig.played().count
            defer { last = n }
            return n == last
        }
        let values = Set(PCM16.samples(fromLittleEndian: rig.played()))
        #expect(values == [100, 200, 300, 400], "only what was not rewound came out")
    }
}
