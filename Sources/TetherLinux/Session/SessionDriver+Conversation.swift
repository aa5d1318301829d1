import NIOCore
import TetherCore

/// The conversation across sessions (rule 13): what each new session is seeded with, the
/// quiet moments a rotation waits for, the hand-over of the uplink at the switch, and the
/// `forget` command.
extension SessionDriver {
    /// What the session of `generation` continues. A conversation idle past `max_age` starts
    /// afresh first.
    func conversationSeed(for generation: UInt64) -> ConversationSeed {
        expireIdleConversation()
        let openai = settings.upstream.protocolKind == .openaiRealtime
        return ConversationSeed(id: conversation.id, turns: openai ? conversation.turns() : [],
                                transcribe: settings.transcribe, tag: generation)
    }

    private func expireIdleConversation() {
        if conversation.expireIfIdle(now: MonoClock.now(), freshID: ConversationID.make()) {
            logger.info("conversation idle for longer than \(DurationText.format(conversation.limits.maxAge)): starting afresh")
            events.publish(.conversationReset(reason: "max_age"))
        }
    }

    /// `forget`: a new person walked up, or privacy. The conversation is cleared, and the brain's
    /// session with it: a fresh one starts at once, seeded with nothing, and mic audio the old
    /// one had not acknowledged is not sent to it.
    func forget() {
        conversation.reset(id: ConversationID.make())
        logger.notice("conversation forgotten")
        events.publish(.conversationReset(reason: "forget"))
        guard machine.state != .paused, machine.state != .idle, machine.state != .stopping else { return }
        uplink.discardQueued()
        perform(machine.reconnectRequested(now: MonoClock.now(), reason: "conversation forgotten"))
    }

    /// `debug-rotate` (tests): rotate now, make-before-break at the next quiet moment.
    func rotateNow() -> Result<JSONValue?, ControlError> {
        let actions = machine.rotateRequested(now: MonoClock.now())
        guard !actions.isEmpty else {
            return .failure(ControlError(.conflict, "the session is \(machine.state.rawValue) or already rotating"))
        }
        perform(actions)
        return .success(nil)
    }

    // MARK: Quiet moments

    /// While a successor waits for a quiet moment: tells the machine when one has come.
    func lookForQuietMoment() {
        guard machine.awaitingQuietMoment,
            quiet.isQuiet(speakerIdle: audio?.speakerIdle ?? true, toolCallsPending: toolCallsPending)
        else { return }
        perform(machine.quietMoment(now: MonoClock.now()))
    }

    /// Only while a successor waits: at once, after whatever the brain says, and every 50 ms
    /// for the one change nothing reports, the speaker falling silent.
    func pollForQuietMoment(_ waiting: Bool) {
        if !waiting {
            quietPoll?.cancel()
            quietPoll = nil
            return
        }
        guard quietPoll == nil else { return }
        let me = NIOLoopBound(self, eventLoop: loop)
        quietPoll = loop.scheduleRepeatedTask(initialDelay: .zero, delay: .milliseconds(50)) { _ in me.value.lookForQuietMoment() }
    }

    // MARK: Hand-over

    /// A rotation switches from `generation`: nothing more is sent on it (the uplink stage
    /// holds while the machine drains), and once its peer has acknowledged every frame it was
    /// sent, the machine switches at that frame boundary, so no frame goes to both sessions.
    func drainUplink(_ generation: UInt64) {
        guard machine.drainingGeneration == generation else { return }
        if uplink.carrierAcknowledgedAll || uplink.carrier != generation {
            perform(machine.uplinkDrained(generation: generation, now: MonoClock.now()))
        } else {
            links[generation]?.connection.pingNow()
        }
    }

    // MARK: Status

    func conversationStatus(now: MonoTime) -> JSONObject {
        var status: JSONObject = [
            "id": .string(conversation.id),
            "items": .number(Double(conversation.itemCount)),
            "chars": .number(Double(conversation.charCount)),
            "dropped_items": .number(Double(conversation.droppedItems)),
            "transcribing": .bool(transcribing),
            "session_age_s": .null,
            "next_rotation_s": .null,
        ]
        if let began = machine.liveSessionBegan, machine.state == .live {
            status["session_age_s"] = .number(Double((now - began).milliseconds / 1000))
        }
        if let due = machine.rotationTimes?.due, machine.state == .live {
            status["next_rotation_s"] = .number(Double(max(0, (due - now).milliseconds) / 1000))
        }
        return status
    }

    /// Whether the person's turns are transcribed (and so carried): a model asked for by
    /// `conversation.transcribe`, or one set in `upstream.session`, which wins.
    var transcribing: Bool {
        guard settings.upstream.protocolKind == .openaiRealtime else { return false }
        if let configured = settings.upstream.session["audio"]?["input"]?["transcription"] { return !configured.isNull }
        return settings.transcribe != nil
    }
}
