import ServiceLifecycle
import TetherCore

/// Runs the audio engine in the daemon's `ServiceGroup`: both device threads start with the
/// group, and on shutdown the speaker is silenced and the devices closed.
public struct AudioService: Service {
    let engine: AudioEngine

    public init(engine: AudioEngine) { self.engine = engine }

    public func run() async throws {
        engine.start()
        try? await gracefulShutdown()
        engine.stop()
    }
}

/// The session hands reply audio to the engine and asks it to stop speaking on barge-in.
extension AudioEngine: SessionAudio {}
