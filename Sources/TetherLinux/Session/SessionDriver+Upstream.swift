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
        if machine.drainingGeneration == generation { drainUplink(generation) }
    }

    func connectionWritable(_ connection: UpstreamConnection) {
        if uplink.carrier == connection.generation { pumpUplink() }
    }

    func connection(_ connection: UpstreamConnection, ended reported: ConnectionFailure) {
        // A brain that said the session hit its cap may close it any way it likes.
        let expiring = links.link(of: connection)?.expiring == true
        guard links.remove(connection) else { return }
        let failure = expiring ? ConnectionFailure(.expired, reported.detail) : reported
        let generation = connection.generation
        linkEnded(generation)
        recordFailure(failure, "upstream connection ended", generation: generation)
        // A refused attempt (401/403 on the upgrade) means the credential it presented is no
        // good: a cached token must not be offered again.
        if failure.kind == .refused && machine.isDialling(generation) { settings.credentials.upstreamRefused() }
        perform(machine.failed(generation: generation, failure, now: MonoClock.now(), random: .random(in: 0..<1)))
    }

    func connectionViolation(_ connection: UpstreamConnection, code: UInt16, reason: String) {
        counters.protocolViolations += 1
    }

    func uplinkMark(for connection: UpstreamConnection) -> UInt64 {
        uplink.mark(for: connection.generation)
    }

    private func handle(_ inbound: UpstreamInbound, from connection: UpstreamConnection) {
        let generation = connection.generation
        let now = MonoClock.now()
        switch inbound {
        case .sessionReady(let id, let expiresAt):
            links.update(generation) { $0.sessionID = id }
            connection.markReady()
            let expiresIn = expiresAt.map { Duration.milliseconds($0 * 1000 - MonoClock.unixMillis()) }
            perform(machine.connected(generation: generation, now: now, expiresIn: expiresIn))
        case .reply(let messages):
            links[generation]?.send(messages)
        case .seeded(let items, let refused):
            links.update(generation) { $0.carriedItems = items }
            counters.carriedTurnsRefused += refused
            logger.debug("conversation carried into the new session: \(items) items, \(refused) refused",
                         metadata: ["generation": "\(generation)"])
        case .audio(let itemID, let pcm):
            counters.downlinkAudioBytes += pcm.count
            conversation.assistantAudio(itemID, milliseconds: pcm.count * 1000 / (2 * settings.rate), now: now)
            if !quiet.responding { quiet.responseStarted() }
            guard let audio else { break }
            audio.enqueuePlayback(itemID: itemID, pcm: pcm)
            if downlink.chunkQueued(on: connection, speaker: audio) { counters.downlinkPauses += 1 }
        case .audioDone(let itemID):
            audio?.finishItem(itemID: itemID)
        case .speechStarted:
            events.publish(.speechStarted)
            quiet.speechStarted()
            conversation.noteActivity(now)
            _ = bargeIn(.userStartedSpeaking)
        case .speechStopped:
            events.publish(.speechStopped)
            quiet.speechStopped()
            conversation.noteActivity(now)
        case .clear:
            _ = bargeIn(.brainAskedToClear)
        case .responseStarted:
            quiet.responseStarted()
        case .responseDone:
            quiet.responseDone()
        case .itemAdded(let itemID, let role):
            conversation.itemAdded(itemID, role: role, now: now)
        case .userTranscript(let itemID, let text):
            // The conversation itself never reaches the journal above debug.
            logger.debug("the person said: \(text)", metadata: ["item": .string(itemID ?? "-")])
            conversation.userTranscript(itemID, text, now: now)
        case .assistantTranscript(let itemID, let text):
            logger.debug("the robot said: \(text)", metadata: ["item": .string(itemID ?? "-")])
            conversation.assistantTranscript(itemID, text, now: now)
        case .sessionExpired(let message):
            logger.notice("the brain's session hit its maximum duration: \(message)", metadata: ["generation": "\(generation)"])
            links.update(generation) { $0.expiring = true }
        case .toolCall(let callID, let name, let arguments):
            events.publish(.toolCall(callID: callID, name: name, arguments: arguments))
            conversation.toolCalled(callID, name: name, arguments: arguments, now: now)
            toolCalled(callID, generation: generation)
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
        if generation == machine.connectionGeneration { lookForQuietMoment() }
    }
}
