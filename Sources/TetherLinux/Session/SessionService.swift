import Logging
import NIOCore
import NIOPosix
import TetherCore

/// The upstream session, as the rest of tetherd sees it. Mic audio reaches it through the
/// `UplinkStage` that capture writes into; everything else runs in a `SessionDriver` on one
/// event loop, the loop the WebSocket channels use. Methods may be called from any thread:
/// they hop onto the loop, where the driver's box lets them in.
public final class SessionService: Sendable {
    public let loop: any EventLoop
    private let uplink: UplinkStage
    private let snapshot: SessionSnapshotStore
    private let driver: NIOLoopBoundBox<SessionDriver>

    /// `blockingPool` parses upstream messages too big to parse on the loop.
    public init(settings: SessionSettings, uplink: UplinkStage, audio: (any SessionAudio)?, loop: any EventLoop,
                blockingPool: NIOThreadPool, events: EventBus, health: HealthRegistry, heartbeatInterval: Duration, logger: Logger) {
        self.loop = loop
        self.uplink = uplink
        let snapshot = SessionSnapshotStore(protocolName: settings.upstream.protocolKind.rawValue)
        self.snapshot = snapshot
        self.driver = .makeBoxSendingValue(
            SessionDriver(settings: settings, loop: loop, blockingPool: blockingPool, uplink: uplink, audio: audio, events: events,
                          heartbeat: health.register("session"), heartbeatInterval: heartbeatInterval,
                          snapshot: snapshot, logger: logger),
            eventLoop: loop)
    }

    // MARK: Lifecycle

    public func start() {
        loop.execute { self.driver.value.start() }
    }

    /// Sends close frames at once and waits (at most the close wait) for the peers.
    public func stop() async {
        let closing = await onLoop(orIfGone: []) { $0.stop() }
        for future in closing { try? await future.get() }
        await onLoop(orIfGone: ()) { $0.retire() }
    }

    // MARK: Commands

    public func pause() async { await onLoop(orIfGone: ()) { $0.pause() } }

    public func resume() async { await onLoop(orIfGone: ()) { $0.resume() } }

    public func reconnect() async { await onLoop(orIfGone: ()) { $0.reconnect() } }

    public func networkWentOffline() { loop.execute { self.driver.value.networkWentOffline() } }

    public func networkCameOnline() { loop.execute { self.driver.value.networkCameOnline() } }

    public func networkChanged() { loop.execute { self.driver.value.networkChanged() } }

    public func say(_ text: String) async -> Result<JSONValue?, ControlError> {
        await onLoop(orIfGone: .failure(Self.stopped)) { $0.say(text) }
    }

    /// Stop speaking now: playback silenced, the response cancelled, the brain told how much
    /// was heard.
    public func interrupt() async -> Result<JSONValue?, ControlError> {
        let silenced = await onLoop(orIfGone: nil) { $0.bargeIn(.interruptCommand) }
        var result: JSONObject = [:]
        if let heard = try? await silenced?.get() {
            result["item_id"] = JSONValue(heard.itemID)
            result["played_ms"] = .number(Double(heard.playedMs))
        }
        return .success(.object(result))
    }

    /// Clears the conversation and starts a fresh upstream session.
    public func forget() async { await onLoop(orIfGone: ()) { $0.forget() } }

    /// Rotates the upstream session now (tests): make-before-break at the next quiet moment.
    public func rotateNow() async -> Result<JSONValue?, ControlError> {
        await onLoop(orIfGone: .failure(Self.stopped)) { $0.rotateNow() }
    }

    public func toolResult(callID: String, output: String) async -> Result<JSONValue?, ControlError> {
        await onLoop(orIfGone: .failure(Self.stopped)) { $0.toolResult(callID: callID, output: output) }
    }

    /// A reload: new link settings apply at once; a changed upstream means a fresh session.
    public func apply(_ newSettings: SessionSettings) async {
        await onLoop(orIfGone: ()) { $0.apply(newSettings) }
    }

    // MARK: Status

    public func status() async -> JSONObject {
        await onLoop(orIfGone: [:]) { $0.status() }
    }

    /// For the STATUS= line: cheap, from any thread.
    public func statusLine(networkOnline: Bool?, muted: Bool) -> StatusLine {
        let snap = snapshot.current
        return StatusLine(state: snap.state, protocolName: snap.protocolName, rttMs: snap.rttMs, bufferedMs: Int(uplink.queuedMs),
                          networkOnline: networkOnline, muted: muted, lastError: snap.lastError)
    }

    public var state: SessionState { snapshot.current.state }

    // MARK: Hopping onto the loop

    private static let stopped = ControlError(.unavailable, "the session has stopped")

    /// Runs `body` on the loop with the driver. `fallback` answers once the loop is gone,
    /// which happens only after every service stopped.
    private func onLoop<T: Sendable>(orIfGone fallback: T, _ body: @escaping @Sendable (SessionDriver) -> T) async -> T {
        if loop.inEventLoop { return body(driver.value) }
        return (try? await loop.submit { body(self.driver.value) }.get()) ?? fallback
    }
}
