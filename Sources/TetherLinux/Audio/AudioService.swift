import ServiceLifecycle
import TetherCore

/// Runs the audio engine in the daemon's `ServiceGroup` for as long as its device threads run:
/// both start with the group; a thread that ends on its own fails the group
/// (`ComponentFailure`); on shutdown the speaker is silenced and the devices closed.
public struct AudioService: Service {
    public static let componentName = "audio"

    let engine: AudioEngine

    public init(engine: AudioEngine) { self.engine = engine }

    public func run() async throws {
        engine.start()
        let engine = self.engine
        try await superviseComponent(Self.componentName, ended: { await engine.ended() }, stop: { await engine.stop() })
    }
}

/// The session hands reply audio to the engine and asks it to stop speaking on barge-in.
extension AudioEngine: SessionAudio {}
