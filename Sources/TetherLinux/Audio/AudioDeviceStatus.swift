import Synchronization
import TetherCore

/// What one direction's thread reports about its device, read by `status` from any thread.
final class AudioDeviceStatus: Sendable {
    enum State: String, Sendable {
        case stopped, opening, running, idle, playing, error
    }

    struct Snapshot: Sendable, Equatable {
        var state: State = .stopped
        var device: String
        var error: String?
        var rate = 0
        var channels = 0
        var periodFrames = 0
        var bufferFrames = 0
        var xruns = 0
        var suspends = 0
        /// Capture: periods whose hand-off to the sink took longer than a period.
        var overruns = 0
        /// Times the device was opened successfully (1 after the first open).
        var opens = 0
    }

    private let snapshot: Mutex<Snapshot>

    init(device: String) {
        snapshot = Mutex(Snapshot(device: device))
    }

    var current: Snapshot { snapshot.withLock { $0 } }

    func update(_ body: (inout Snapshot) -> Void) {
        snapshot.withLock { body(&$0) }
    }

    func set(_ state: State) {
        snapshot.withLock { $0.state = state }
    }

    func opened(_ pcm: AlsaPCM) {
        snapshot.withLock {
            $0.state = pcm.direction == .capture ? .running : .idle
            $0.device = pcm.device
            $0.error = nil
            $0.rate = pcm.rate
            $0.channels = pcm.channels
            $0.periodFrames = pcm.periodFrames
            $0.bufferFrames = pcm.bufferFrames
            $0.opens += 1
        }
    }

    func failed(_ error: AlsaDeviceError, device: String) {
        snapshot.withLock {
            $0.state = .error
            $0.device = device
            $0.error = error.message
        }
    }
}
