import Logging
import NIOCore
import TetherCore

/// What the connections report, and what the brain says over them. A connection no longer
/// in the link table is stale (rule 2): what it reports is dropped.
extension SessionDriver: UpstreamConnectionOwner {
    func connectionUpgraded(_ connection: UpstreamConnection) {
        guard let link = links.link(of: connection) else { return }
        link.send(link.dialect.opening())
        if link.dialect.readyOnUpgrade {
            sessionID = nil
            connection.markReady()
            perform(machine.connected(generation: connection.generation, now: MonoClock.now()))
        }
    }

    func connection(_ connection: UpstreamConnection, received message: InboundMessage) {
        guard let inbound = links.decode(message, from: connection) else { return }
        for item in inbound { handle(item, from: connection) }
    }

    func connection(_ connection: UpstreamConnection, acknowledged mark: UInt64, rtt: Duration, answeredProbe: Bool) {
        guard links.link(of: connection) != nil else { return }
        let generation = connection.generation
        if uplink.acknowledged(upTo: mark, on: generation) { pumpUplink() }
        snapshot.update { $0.rttMs = Int(rtt.milliseconds) }
        if answeredProbe { perform(machine.probeSucceeded(generation: generation, now: MonoClock.now())) }
    }

    func connectionWritable(_ connection: UpstreamConnection) {
        if uplink.carrier == connection.generation { pumpUplink() }
    }

    func connection(_ connection: UpstreamConnection, ended failure: ConnectionFailure) {
        guard links.remove(connection) else { return }
        let generation = connection.generation
        linkEnded(generation)
        recordFailure(failure, "upstream connection ended", generation: generation)
        // A refused attempt (401/403 on the upgrade) means the credential it presented is no
        // good: a cached token must not be offered again.
        if failure.kind == .refused && machine.attemptGeneration == generation { settings.credentials.upstreamRefused() }
        perform(machine.failed(generation: generation, failure, now: MonoClock.now(), random: .random(in: 0..<1)))
    }

    func connectionViolation(_ connection: UpstreamConnection, code: UInt16, reason: String) {
        counters.protocolViolations += 1
    }

    func uplinkMark(for connection: UpstreamConnection) -> UInt64 {
        uplink.mark(for: connection.generation)
    }

    private func handle(_ inbound: UpstreamInbound, from connection: UpstreamConnection) {
        switch inbound {
        case .sessionReady(let id):
            sessionID = id
            connection.markReady()
            perform(machine.connected(generation: connection.generation, now: MonoClock.now()))
        case .audio(let itemID, let pcm):
            counters.downlinkAudioBytes += pcm.count
            guard let audio else { break }
            audio.enqueuePlayback(itemID: itemID, pcm: pcm)
            if downlink.chunkQueued(on: connection, speaker: audio) { counters.downlinkPauses += 1 }
        case .audioDone(let itemID):
            audio?.finishItem(itemID: itemID)
        case .speechStarted:
            events.publish(.speechStarted)
            _ = bargeIn(.userStartedSpeaking)
        case .speechStopped:
            events.publish(.speechStopped)
        case .clear:
            _ = bargeIn(.brainAskedToClear)
        case .toolCall(let callID, let name, let arguments):
            events.publish(.toolCall(callID: callID, name: name, arguments: arguments))
            toolCalled(callID, generation: connection.generation)
        case .error(let message):
            counters.upstreamErrors += 1
            lastError = "upstream error: \(message)"
            logger.warning("upstream reported an error: \(message)")
            events.publish(.error(code: .upstreamError, message: message))
            settle()
        case .ignored:
            break
        case .unknown(let type):
            counters.unknownEvents += 1
            logger.debug("ignoring unknown upstream event \(type.prefix(80))")
        case .malformed(let why):
            counters.malformedMessages += 1
            logger.warning("malformed message from upstream: \(why)")
        }
    }
}
