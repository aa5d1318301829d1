import TetherCore

/// What the control socket needs from the daemon: run one command and answer. The
/// supervisor implements it; `subscribe` is handled by the socket server itself.
public protocol ControlCommandHandler: Sendable {
    func handle(_ command: ControlCommand, peer: PeerCredentials) async -> Result<JSONValue?, ControlError>
}
