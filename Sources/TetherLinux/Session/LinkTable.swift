import NIOCore
import TetherCore

/// One upstream connection and the dialect that speaks over it. The dialect keeps that
/// connection's handshake state, so the two are made, kept and dropped together.
struct UpstreamLink {
    let connection: UpstreamConnection
    var dialect: any UpstreamDialect
    /// The brain's name for this session, once it has said it.
    var sessionID: String?
    /// Carried turns the brain confirmed into this session.
    var carriedItems = 0
    /// The brain said this session hit its maximum duration: its close is a forced rotation.
    var expiring = false

    var generation: UInt64 { connection.generation }

    func send(_ messages: [UpstreamMessage]) {
        for message in messages { connection.send(message) }
    }
}

extension UpstreamLink: UplinkSink {
    var isWritable: Bool { connection.isWritable }
    func sendAudio(_ pcm: [UInt8]) { connection.send(dialect.audio(pcm), flush: false) }
    func flush() { connection.flush() }
    func pingNow() { connection.pingNow() }
}

/// The session's links by generation (rule 2): a connection whose link is no longer here
/// is stale and what it reports is dropped. Performs the machine's actions on the link of
/// the generation they name. Confined to the session's loop.
final class LinkTable {
    private var links: [UInt64: UpstreamLink] = [:]
    /// Connections we closed that may still be finishing their close handshake.
    private var closing: [ObjectIdentifier: UpstreamConnection] = [:]

    subscript(generation: UInt64) -> UpstreamLink? { links[generation] }

    /// The link of `connection`, if it is still the one of its generation.
    func link(of connection: UpstreamConnection) -> UpstreamLink? {
        guard let link = links[connection.generation], link.connection === connection else { return nil }
        return link
    }

    func add(_ link: UpstreamLink) { links[link.generation] = link }

    /// Changes what the link of `generation` records about its session.
    func update(_ generation: UInt64, _ change: (inout UpstreamLink) -> Void) {
        guard var link = links[generation] else { return }
        change(&link)
        links[generation] = link
    }

    /// Runs the connection's own dialect over one message; nil when the connection is stale.
    func decode(_ message: InboundMessage, from connection: UpstreamConnection) -> [UpstreamInbound]? {
        guard link(of: connection) != nil else { return nil }
        return links[connection.generation]?.dialect.decode(message)
    }

    /// The connection ended by itself. False when it was no longer ours.
    func remove(_ connection: UpstreamConnection) -> Bool {
        guard link(of: connection) != nil else { return false }
        links[connection.generation] = nil
        return true
    }

    /// Performs `action` on the link of its generation (dialing and events are the
    /// session's). Returns the generation whose link left the table, if one did.
    func perform(_ action: SessionAction, probeTimeout: Duration) -> UInt64? {
        switch action {
        case .close(let generation, let code):
            guard let connection = links.removeValue(forKey: generation)?.connection else { return nil }
            let key = ObjectIdentifier(connection)
            closing[key] = connection
            connection.close(code: code)
            connection.closedFuture().assumeIsolated().whenComplete { [weak self] _ in self?.closing[key] = nil }
            return generation
        case .abort(let generation):
            guard let connection = links.removeValue(forKey: generation)?.connection else { return nil }
            connection.abort()
            return generation
        case .probe(let generation):
            links[generation]?.connection.probe(timeout: probeTimeout)
        case .suspend(let generation):
            links[generation]?.connection.suspendLiveness()
        case .connect, .drainUplink, .emit:
            break
        }
        return nil
    }

    /// Completes once every connection we closed has finished its close handshake.
    var closingFutures: [EventLoopFuture<Void>] { closing.values.map { $0.closedFuture() } }
}
