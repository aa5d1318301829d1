import Glibc
import NIOCore
import NIOEmbedded
import Testing
import TetherCore
@testable import TetherLinux

/// `UpstreamConnection` itself on an EmbeddedChannel, in virtual time: the pipeline the daemon
/// dials (NIO's client upgrader, the frame handler, the events handler) fed byte for byte as a
/// brain would send them, every frame it writes read back off the wire, every call to its owner
/// recorded. Milliseconds, no sockets.
@Suite struct UpstreamConnectionTests {
    struct Rig {
        /// How the connection's dial goes: its own initializer runs on the EmbeddedChannel, which
        /// then connects, as with ClientBootstrap.
        enum Dial {
            case connected
            /// The connect completes when the test says (`completeConnect`).
            case held
            case refused
            /// Handed over as a channel that takes socket options (`socket`).
            case socketLike
        }

        static let address = try! SocketAddress(ipAddress: "127.0.0.1", port: 8080)

        let loop = EmbeddedEventLoop()
        let channel: EmbeddedChannel
        let owner = RecordingOwner()
        let parses = HeldParses()
        let head = HeadRecorder()
        let clock: LoopClock
        let connection: UpstreamConnection
        /// The channel handed to the connection in `.socketLike` mode.
        let socket: SocketLikeChannel?
        private let pendingConnect: Box<EventLoopPromise<any Channel>?>
        private let wire = Box(ClientWire())

        final class Box<Value> {
            var value: Value
            init(_ value: Value) { self.value = value }
        }

        init(pingInterval: Duration = .seconds(3), handshakeTimeout: Duration = .seconds(10), dial: Dial = .connected) throws {
            let loop = loop
            let channel = EmbeddedChannel(loop: loop)
            self.channel = channel
            clock = LoopClock(loop)
            try channel.pipeline.syncOperations.addHandler(head)
            let socket = dial == .socketLike ? SocketLikeChannel(channel) : nil
            self.socket = socket
            let pendingConnect = Box<EventLoopPromise<any Channel>?>(nil)
            self.pendingConnect = pendingConnect
            let url = try #require(UpstreamURL.parse("ws://127.0.0.1:8080/v1/realtime?model=m"))
            let settings = UpstreamConnectionSettings(
                url: url, headers: [HTTPHeader(name: "Authorization", value: "Bearer k")], tls: nil,
                connectTimeout: .seconds(10), handshakeTimeout: handshakeTimeout, pingInterval: pingInterval,
                maxMessageBytes: 1 << 20)
            let clock = clock
            connection = UpstreamConnection(
                generation: 7, loop: loop, settings: settings, parsingPool: parses, owner: owner,
                dial: { initialize in
                    if dial == .refused { return loop.makeFailedFuture(IOError(errnoCode: ECONNREFUSED, reason: "connect")) }
                    do {
                        try initialize(channel).wait()
                        if dial == .held {
                            let promise = loop.makePromise(of: (any Channel).self)
                            pendingConnect.value = promise
                            return promise.futureResult
                        }
                        try channel.connect(to: Self.address).wait()
                        return loop.makeSucceededFuture(socket ?? channel)
                    } catch {
                        return loop.makeFailedFuture(error)
                    }
                },
                now: { clock.now() })
            connection.start()
        }

        func completeConnect() throws {
            let promise = try #require(pendingConnect.value)
            try channel.connect(to: Self.address).wait()
            promise.succeed(channel)
        }

        /// What was written before the upgrade: the request, as text.
        func requestText() throws -> String {
            var text = ""
            while let buffer = try channel.readOutbound(as: ByteBuffer.self) { text += String(buffer: buffer) }
            return text
        }

        /// Answers the upgrade request with a 101 and the right accept value, then `bytes` in the
        /// same packet.
        func upgrade(then bytes: [UInt8] = []) throws {
            let request = try requestText()
            let keyLine = try #require(request.split(separator: "\r\n").first { $0.hasPrefix("Sec-WebSocket-Key: ") })
            try receive(Brain.switchingProtocols(accept: Brain.accept(for: String(keyLine.dropFirst(19)))) + bytes)
        }

        /// Upgraded and ready (pings running), the owner's record cleared.
        func ready() throws {
            try upgrade()
            connection.markReady()
            #expect(owner.events == [.upgraded])
            owner.events.removeAll()
        }

        /// Bytes from the brain, in one read.
        func receive(_ bytes: [UInt8]) throws {
            defer { loop.run() }
            try channel.writeInbound(ByteBuffer(bytes: bytes))
        }

        /// The brain drops TCP: the channel closes itself, as NIO's socket channel does on EOF.
        func peerClosesTCP() {
            channel._channelCore.close0(error: ChannelError.eof, mode: .all, promise: nil)
            loop.run()
        }

        /// The frames written since the last call; every one must be masked (RFC 6455 5.3).
        func sent(sourceLocation: SourceLocation = #_sourceLocation) throws -> [SentFrame] {
            var bytes: [UInt8] = []
            while let buffer = try channel.readOutbound(as: ByteBuffer.self) { bytes += buffer.readableBytesView }
            let frames = wire.value.frames(appending: bytes)
            for frame in frames { #expect(frame.masked, "a client frame goes masked", sourceLocation: sourceLocation) }
            return frames
        }

        func advance(_ duration: Duration) {
            loop.advanceTime(by: .nanoseconds(duration.nanoseconds))
        }

        /// The last autoRead the connection set, nil when it never touched it.
        var autoRead: Bool? {
            channel.options.last { $0.option is ChannelOptions.Types.AutoReadOption }?.value as? Bool
        }
    }

    // MARK: Opening handshake

    @Test func theUpgradeRequestGoesOutAndAMatching101MakesItUpgraded() throws {
        #expect(Brain.accept(for: "dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "RFC 6455's example")
        let rig = try Rig()
        #expect(rig.connection.phase == .upgrading)
        let request = try rig.requestText()
        #expect(request.hasPrefix("GET /v1/realtime?model=m HTTP/1.1\r\n"))
        for line in ["Host: 127.0.0.1:8080", "Authorization: Bearer k", "Upgrade: websocket", "Sec-WebSocket-Version: 13"] {
            #expect(request.contains("\r\n\(line)\r\n"), "\(line)")
        }
        #expect(!rig.connection.send(.text(Array("{}".utf8))), "nothing goes out before the upgrade")
        let key = try #require(request.split(separator: "\r\n").first { $0.hasPrefix("Sec-WebSocket-Key: ") }?.dropFirst(19))
        try rig.receive(Brain.switchingProtocols(accept: Brain.accept(for: String(key))))
        #expect(rig.owner.events == [.upgraded])
        #expect(rig.connection.phase == .open)
        #expect(rig.connection.isWritable)
        #expect(!rig.connection.ready, "ready is the owner's word (the first server event, for openai-realtime)")
        #expect(rig.connection.send(.text(Array(#"{"type":"session.update"}"#.utf8))))
        #expect(try rig.sent().map(\.payload) == [Array(#"{"type":"session.update"}"#.utf8)])
    }

    @Test func framesInThePacketOfThe101AreDeliveredAfterTheUpgrade() throws {
        let rig = try Rig()
        try rig.upgrade(then: Brain.event("session.created") + Brain.binary([1, 2]))
        #expect(rig.owner.events == [.upgraded, .event("session.created"), .binary([1, 2])])
    }

    @Test func aWrongAcceptValueEndsTheAttemptOnce() throws {
        let rig = try Rig()
        _ = try rig.requestText()
        // NIO's upgrader also fires the error down the pipeline, where the EmbeddedChannel keeps it.
        _ = try? rig.receive(Brain.switchingProtocols(accept: "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="))
        #expect(rig.owner.events == [.ended(ConnectionFailure(.transport, "upgrade failed: Sec-WebSocket-Accept does not match the key"))])
        #expect(!rig.channel.isActive)
    }

    @Test func aRefusedUpgradeEndsItOnceAsRefused() throws {
        let rig = try Rig()
        _ = try rig.requestText()
        try rig.receive(Array("HTTP/1.1 401 Unauthorized\r\nContent-Length: 7\r\n\r\nbad key".utf8))
        #expect(rig.owner.events == [.ended(.httpStatus(401, reason: "Unauthorized"))])
        #expect(rig.owner.endings.first?.kind == .refused)
        #expect(rig.head.closes == [.all])
        rig.advance(.seconds(60))
        #expect(rig.owner.events.count == 1, "the handshake deadline went with it")
    }

    @Test(arguments: [false, true])
    func theHandshakeDeadlineEndsAnAttemptThatIsNeverReady(upgraded: Bool) throws {
        let rig = try Rig(handshakeTimeout: .seconds(10))
        if upgraded { try rig.upgrade() }
        rig.advance(.seconds(10) - .milliseconds(1))
        #expect(rig.owner.endings.isEmpty)
        rig.advance(.milliseconds(1))
        #expect(rig.owner.endings == [ConnectionFailure(.network, "handshake timed out after 10s")])
        #expect(rig.head.closes == [.all])
    }

    @Test func aFailedConnectEndsItAsTransport() throws {
        let rig = try Rig(dial: .refused)
        #expect(rig.owner.events == [.ended(ConnectionFailure(.transport, "connect to 127.0.0.1:8080 failed: Connection refused"))])
        rig.advance(.seconds(60))
        #expect(rig.owner.events.count == 1, "the handshake deadline went with it")
    }

    @Test func aCloseBeforeTheConnectCompletesClosesTheChannelWhenItComes() throws {
        let rig = try Rig(dial: .held)
        #expect(rig.connection.phase == .connecting)
        rig.connection.close(code: .goingAway)
        #expect(rig.connection.phase == .closed)
        try rig.completeConnect()
        #expect(!rig.channel.isActive)
        rig.advance(.seconds(60))
        #expect(rig.owner.events.isEmpty)
    }

    @Test func aCloseDuringTheUpgradeDropsTCPWithoutAFrame() throws {
        let rig = try Rig()
        _ = try rig.requestText()
        rig.connection.close(code: .goingAway)
        #expect(rig.head.closes == [.all])
        #expect(try rig.sent().isEmpty)
        rig.advance(.seconds(60))
        #expect(rig.owner.events.isEmpty)
    }

    // MARK: Liveness

    @Test func pingsGoOutEveryIntervalAndAMatchingPongAcknowledgesTheMarkOfItsPing() throws {
        let rig = try Rig(pingInterval: .seconds(3))
        try rig.ready()
        rig.owner.mark = 42
        rig.advance(.seconds(3) - .milliseconds(1))
        #expect(try rig.sent().isEmpty)
        rig.advance(.milliseconds(1))
        let ping = try #require(try rig.sent().only)
        #expect(ping.opcode == Opcode.ping && ping.payload.count == 8)
        #expect(rig.owner.marksGiven == 1)
        // The uplink moves on; the pong vouches only for what was written before its ping.
        rig.owner.mark = 50
        rig.advance(.milliseconds(30))
        try rig.receive(Brain.pong(ping.payload.map { $0 ^ 0xFF }))
        #expect(rig.owner.events.isEmpty, "a pong that matches no ping counts for nothing")
        try rig.receive(Brain.pong(ping.payload))
        #expect(rig.owner.events == [.acknowledged(mark: 42, rtt: .milliseconds(30), probe: false)])
        #expect(rig.connection.lastRTT == .milliseconds(30))
        // Answered, pings go on past the handshake deadline (ready cancelled it), never the same.
        rig.advance(.seconds(3) - .milliseconds(30))
        var payloads = [ping.payload]
        for _ in 0..<5 {
            let next = try #require(try rig.sent().only)
            payloads.append(next.payload)
            try rig.receive(Brain.pong(next.payload))
            rig.advance(.seconds(3))
        }
        #expect(Set(payloads).count == 6)
        #expect(rig.owner.events.count == 6)
        #expect(rig.owner.events.last == .acknowledged(mark: 50, rtt: .zero, probe: false))
        #expect(rig.owner.endings.isEmpty)
    }

    /// The answer timeout is half the interval, at most a second (`PingTracker`).
    @Test(arguments: [(Duration.seconds(1), Duration.milliseconds(500)), (.seconds(3), .seconds(1))])
    func anUnansweredPingIsRetriedAfterItsAnswerTimeoutAndTwoMeanDead(interval: Duration, answerTimeout: Duration) throws {
        let rig = try Rig(pingInterval: interval)
        try rig.ready()
        rig.advance(interval)
        let first = try #require(try rig.sent().only)
        rig.advance(answerTimeout)
        #expect(try rig.sent().isEmpty, "not before its answer timeout")
        rig.advance(.milliseconds(1))
        let retry = try #require(try rig.sent().only)
        #expect(retry.opcode == Opcode.ping && retry.payload != first.payload)
        rig.advance(answerTimeout - .milliseconds(1))
        #expect(rig.owner.events.isEmpty)
        rig.advance(.milliseconds(3))
        #expect(rig.owner.events == [.ended(ConnectionFailure(.network, "no answer to two pings"))])
        #expect(rig.head.closes == [.all])
        _ = try rig.sent()
        rig.advance(interval * 3)
        #expect(try rig.sent().isEmpty)
        #expect(rig.owner.events.count == 1)
    }

    /// Between a missed ping's retry and the retry's deadline nothing can change the verdict; a
    /// connection that checks anyway wakes its loop every millisecond for up to a second, just
    /// when the link is in doubt. (Checks read the clock: their number is the reads.)
    @Test func waitingForTheRetrysAnswerDoesNotWakeEveryMillisecond() throws {
        let rig = try Rig(pingInterval: .seconds(3))
        try rig.ready()
        rig.advance(.seconds(4) + .milliseconds(1))
        #expect(try rig.sent().count == 2, "a ping and its retry")
        let reads = rig.clock.reads
        rig.advance(.milliseconds(998))
        #expect(rig.clock.reads - reads <= 2)
        rig.advance(.milliseconds(5))
        #expect(rig.owner.events == [.ended(ConnectionFailure(.network, "no answer to two pings"))])
    }

    /// The same with a regular ping missed while a probe with a longer timeout is out: no retry
    /// (the probe is one), and no check until the next deadline ahead.
    @Test func aMissedPingBesideAProbeDoesNotWakeEveryMillisecond() throws {
        let rig = try Rig(pingInterval: .seconds(3))
        try rig.ready()
        rig.advance(.milliseconds(2500))
        rig.connection.probe(timeout: .seconds(10))
        rig.advance(.milliseconds(1501))
        #expect(try rig.sent().count == 2, "the probe and a regular ping, missed")
        let reads = rig.clock.reads
        rig.advance(.milliseconds(1998))
        #expect(rig.clock.reads - reads <= 2)
        // The next regular ping goes unanswered too: two missed.
        rig.advance(.seconds(1) + .milliseconds(5))
        #expect(rig.owner.events == [.ended(ConnectionFailure(.network, "no answer to two pings"))])
    }

    @Test func aLatePongToTheRetryVouchesForBothPings() throws {
        let rig = try Rig(pingInterval: .seconds(3))
        try rig.ready()
        rig.owner.mark = 1
        rig.advance(.seconds(3))
        let first = try #require(try rig.sent().only)
        rig.owner.mark = 2
        rig.advance(.seconds(1) + .milliseconds(1))
        let retry = try #require(try rig.sent().only)
        rig.advance(.milliseconds(200))
        try rig.receive(Brain.pong(retry.payload))
        #expect(rig.owner.events == [.acknowledged(mark: 2, rtt: .milliseconds(200), probe: false)])
        try rig.receive(Brain.pong(first.payload))
        rig.advance(.milliseconds(1790))
        #expect(rig.owner.events.count == 1, "the first ping is answered too: no second acknowledgement, no verdict")
    }

    @Test func suspendedLivenessSendsNoPingsAndJudgesNothingUntilAProbe() throws {
        let rig = try Rig()
        try rig.ready()
        rig.owner.mark = 7
        rig.advance(.seconds(3))
        let unanswered = try #require(try rig.sent().only)
        rig.connection.suspendLiveness()
        rig.advance(.seconds(60))
        #expect(try rig.sent().isEmpty)
        #expect(rig.owner.events.isEmpty)
        try rig.receive(Brain.pong(unanswered.payload))
        #expect(rig.owner.events.isEmpty, "the pings out when the network went are forgotten")
        rig.owner.mark = 9
        rig.connection.probe(timeout: .seconds(2))
        let probe = try #require(try rig.sent().only)
        #expect(probe.opcode == Opcode.ping)
        rig.advance(.milliseconds(80))
        try rig.receive(Brain.pong(probe.payload))
        #expect(rig.owner.events == [.acknowledged(mark: 9, rtt: .milliseconds(80), probe: true)])
        // Regular pings and their verdicts are back, the first an interval after the probe.
        rig.advance(.seconds(3) - .milliseconds(81))
        #expect(try rig.sent().isEmpty)
        rig.advance(.milliseconds(1))
        #expect(try rig.sent().only?.opcode == Opcode.ping)
        rig.advance(.seconds(2) + .milliseconds(5))
        #expect(rig.owner.events.last == .ended(ConnectionFailure(.network, "no answer to two pings")))
    }

    @Test func anUnansweredProbeEndsItAtItsOwnTimeout() throws {
        let rig = try Rig()
        try rig.ready()
        rig.connection.probe(timeout: .milliseconds(1500))
        #expect(try rig.sent().only?.opcode == Opcode.ping)
        rig.advance(.milliseconds(1500))
        #expect(rig.owner.events.isEmpty)
        rig.advance(.milliseconds(2))
        #expect(rig.owner.events == [.ended(ConnectionFailure(.network, "probe unanswered"))])
    }

    /// The network went away (the session suspended liveness) while the speaker was full; it
    /// drains and reading resumes, but nothing can answer a ping until the network is back: a
    /// probe decides then. Pings restarted here get a connection that would have lived through
    /// the outage declared dead (with a 1 s interval, 2 s into it, inside the default grace).
    @Test func readingAgainDoesNotUndoASuspension() throws {
        let rig = try Rig(pingInterval: .seconds(1))
        try rig.ready()
        rig.connection.pauseReading()
        rig.connection.suspendLiveness()
        rig.connection.resumeReading()
        #expect(rig.autoRead == true)
        rig.advance(.seconds(60))
        #expect(try rig.sent().isEmpty, "no pings into a network that is down")
        #expect(rig.owner.events.isEmpty, "and no verdict")
        // A parse coming back is reading again too.
        try rig.receive(Brain.bigEvent("response.done"))
        rig.parses.finishAll()
        rig.advance(.seconds(60))
        #expect(try rig.sent().isEmpty)
        #expect(rig.owner.events == [.event("response.done")])
        rig.connection.probe(timeout: .seconds(2))
        let probe = try #require(try rig.sent().only)
        try rig.receive(Brain.pong(probe.payload))
        #expect(rig.owner.events.last == .acknowledged(mark: 0, rtt: .zero, probe: true))
        rig.advance(.seconds(1))
        #expect(try rig.sent().only?.opcode == Opcode.ping, "the probe brought the regular pings back")
    }

    // MARK: Reading

    @Test func pausedReadingStopsTheSocketAndLivenessUntilResumed() throws {
        let rig = try Rig()
        try rig.ready()
        #expect(rig.autoRead == nil)
        rig.advance(.seconds(3))
        let ping = try #require(try rig.sent().only)
        rig.connection.pauseReading()
        #expect(rig.autoRead == false)
        #expect(rig.connection.readingPaused)
        // The pong waits unread behind the brain's audio: our not reading is no dead peer.
        rig.advance(.seconds(60))
        #expect(try rig.sent().isEmpty)
        #expect(rig.owner.events.isEmpty)
        let reads = rig.head.reads
        rig.connection.resumeReading()
        #expect(rig.autoRead == true)
        #expect(rig.head.reads == reads + 1, "a read at once")
        try rig.receive(Brain.pong(ping.payload))
        #expect(rig.owner.events.isEmpty, "the ping out when reading stopped is forgotten")
        rig.advance(.seconds(3))
        #expect(try rig.sent().only?.opcode == Opcode.ping)
        rig.advance(.seconds(2) + .milliseconds(5))
        #expect(rig.owner.events == [.ended(ConnectionFailure(.network, "no answer to two pings"))])
    }

    @Test func aBigMessageIsParsedOffTheLoopWhileReadingStopsAndWhatFollowsWaits() throws {
        let rig = try Rig()
        try rig.ready()
        try rig.receive(Brain.bigEvent("session.updated") + Brain.event("after") + Brain.binary([7]))
        #expect(rig.owner.events.isEmpty, "nothing overtakes the message being parsed")
        #expect(rig.parses.held.count == 1)
        #expect(rig.autoRead == false)
        rig.advance(.seconds(10))
        #expect(try rig.sent().isEmpty, "no pings while not reading")
        #expect(rig.owner.events.isEmpty)
        let reads = rig.head.reads
        rig.parses.finishAll()
        #expect(rig.owner.events == [.event("session.updated"), .event("after"), .binary([7])])
        #expect(rig.autoRead == true)
        #expect(rig.head.reads == reads + 1)
        rig.advance(.seconds(3))
        #expect(try rig.sent().only?.opcode == Opcode.ping, "pings again once reading")
    }

    @Test func readingResumesOnlyWhenNeitherTheDownlinkNorAParseHoldsIt() throws {
        let rig = try Rig()
        try rig.ready()
        try rig.receive(Brain.bigEvent("a"))
        rig.connection.pauseReading()
        rig.parses.finishAll()
        #expect(rig.owner.events == [.event("a")])
        #expect(rig.autoRead == false, "the downlink still holds it")
        try rig.receive(Brain.bigEvent("b"))
        rig.connection.resumeReading()
        #expect(rig.autoRead == false, "a parse still holds it")
        rig.parses.finishAll()
        #expect(rig.autoRead == true)
        #expect(rig.owner.events == [.event("a"), .event("b")])
    }

    @Test func writabilityComingBackIsReported() throws {
        let rig = try Rig()
        try rig.ready()
        rig.channel.isWritable = false
        rig.channel.pipeline.fireChannelWritabilityChanged()
        #expect(!rig.connection.isWritable)
        #expect(rig.owner.events.isEmpty)
        rig.channel.isWritable = true
        rig.channel.pipeline.fireChannelWritabilityChanged()
        #expect(rig.connection.isWritable)
        #expect(rig.owner.events == [.writable])
    }

    // MARK: Closing

    @Test func ourCloseSendsItsCodeAtOnceAndDropsTCPOnTheAnswer() throws {
        let rig = try Rig()
        try rig.ready()
        rig.connection.close(code: .goingAway)
        #expect(try rig.sent().map(\.closeCode) == [1001])
        #expect(rig.connection.phase == .closing)
        #expect(rig.channel.isActive, "TCP waits for the answer")
        let closed = rig.connection.closedFuture()
        #expect(!rig.connection.send(.binary([1])), "nothing after our close")
        try rig.receive(Brain.event("late") + Brain.ping([1]) + Brain.binary([2]))
        rig.advance(.milliseconds(900))
        #expect(try rig.sent().isEmpty, "no pong, no ping after our close")
        try rig.receive(Brain.close(1001))
        #expect(rig.head.closes == [.all])
        #expect(rig.connection.phase == .closed)
        var done = false
        closed.assumeIsolated().whenComplete { _ in done = true }
        rig.loop.run()
        #expect(done)
        rig.advance(.seconds(60))
        #expect(rig.owner.events.isEmpty, "a close of ours is never reported")
    }

    @Test func ourCloseDropsTCPAfterTheCloseWaitWithoutAnAnswer() throws {
        let rig = try Rig()
        try rig.ready()
        rig.connection.close(code: .normal)
        #expect(try rig.sent().map(\.closeCode) == [1000])
        rig.advance(.seconds(1) - .milliseconds(1))
        #expect(rig.channel.isActive)
        rig.advance(.milliseconds(1))
        #expect(rig.head.closes == [.all])
        #expect(!rig.channel.isActive)
        #expect(rig.owner.events.isEmpty)
    }

    @Test(arguments: [
        (UInt16?.some(1000), "", UInt16(1000), ConnectionFailure.Kind.transport),
        (1001, "Your session hit the maximum duration of 60 minutes.", 1001, .expired),
        (4001, "policy", 4001, .refused),
        (nil, "", 1000, .transport),
    ])
    func aPeersCloseIsAnsweredWithItsCodeAndReportedOnce(code: UInt16?, reason: String, answer: UInt16, kind: ConnectionFailure.Kind) throws {
        let rig = try Rig()
        try rig.ready()
        // Whatever follows a close in the same read is nothing.
        try rig.receive(Brain.close(code, reason) + Brain.event("late") + Brain.close(1000))
        let reported = ConnectionFailure.closed(code: code ?? 1005, reason: reason)
        #expect(reported.kind == kind)
        #expect(rig.owner.events == [.ended(reported)])
        #expect(try rig.sent().map(\.closeCode) == [answer])
        #expect(rig.head.closes == [.all])
        rig.advance(.seconds(60))
        #expect(rig.owner.events.count == 1)
    }

    @Test func aPeersCloseBehindAParseIsHandledAfterTheMessagesBeforeIt() throws {
        let rig = try Rig()
        try rig.ready()
        try rig.receive(Brain.bigEvent("response.done") + Brain.close(1000, "bye"))
        #expect(rig.owner.events.isEmpty)
        #expect(try rig.sent().isEmpty, "answered once what came before it is delivered")
        rig.parses.finishAll()
        #expect(rig.owner.events == [.event("response.done"), .ended(.closed(code: 1000, reason: "bye"))])
        #expect(try rig.sent().map(\.closeCode) == [1000])
        #expect(rig.head.closes == [.all])
    }

    /// The brain closes (here at its session cap) and drops TCP at once, while a big message
    /// before its close is still being parsed: the message is delivered, and the close is
    /// reported as the close it was (an expiry), not as TCP ending without one.
    @Test func aPeersCloseBehindAParseIsReportedAsSuchWhenTCPEndsFirst() throws {
        let rig = try Rig()
        try rig.ready()
        let cap = "Your session hit the maximum duration of 60 minutes."
        try rig.receive(Brain.bigEvent("response.done") + Brain.close(1001, cap))
        rig.peerClosesTCP()
        #expect(rig.owner.events.isEmpty, "what came before the close comes first")
        rig.parses.finishAll()
        #expect(rig.owner.events == [.event("response.done"), .ended(.closed(code: 1001, reason: cap))])
        #expect(rig.owner.endings.first?.kind == .expired)
        rig.advance(.seconds(60))
        #expect(rig.owner.events.count == 2)
    }

    /// TCP ends with no close frame while a message that came before is out being parsed: the
    /// message is delivered, then the end reported.
    @Test func messagesBeingParsedWhenTCPEndsAreDeliveredBeforeTheEnd() throws {
        let rig = try Rig()
        try rig.ready()
        try rig.receive(Brain.bigEvent("response.done") + Brain.event("after"))
        rig.peerClosesTCP()
        #expect(rig.owner.events.isEmpty)
        rig.parses.finishAll()
        #expect(rig.owner.events == [
            .event("response.done"), .event("after"),
            .ended(ConnectionFailure(.transport, "connection closed without a close frame")),
        ])
    }

    @Test(arguments: [false, true])
    func tcpEndingWithoutACloseFrameEndsItOnceAsTransport(upgraded: Bool) throws {
        let rig = try Rig()
        if upgraded { try rig.ready() }
        rig.peerClosesTCP()
        #expect(rig.owner.events == [.ended(ConnectionFailure(.transport, "connection closed without a close frame"))])
        rig.advance(.seconds(60))
        #expect(rig.owner.events.count == 1)
    }

    @Test(arguments: [false, true])
    func aSocketErrorEndsItOnceAsTransport(upgraded: Bool) throws {
        let rig = try Rig()
        if upgraded { try rig.ready() }
        rig.channel.pipeline.fireErrorCaught(IOError(errnoCode: ECONNRESET, reason: "read"))
        rig.loop.run()
        let detail = upgraded ? "connection error: Connection reset by peer" : "Connection reset by peer"
        #expect(rig.owner.events == [.ended(ConnectionFailure(.transport, detail))])
        #expect(!rig.channel.isActive)
        rig.advance(.seconds(60))
        #expect(rig.owner.events.count == 1)
    }

    static let violations: [(String, [UInt8], UInt16, String)] = [
        ("masked server frame", Brain.frame(Opcode.binary, [1, 2], mask: [1, 2, 3, 4]), 1002, "masked frame from the server"),
        ("invalid UTF-8", Brain.frame(Opcode.text, [0x22, 0xC3, 0x28]), 1007, "text message is not valid UTF-8"),
        ("length header over the limit", [0x82, 0x7F, 0, 0, 0x01, 0, 0, 0, 0, 0], 1009, "frame larger than 1048576 bytes"),
    ]

    @Test(arguments: violations)
    func aProtocolViolationIsReportedThenEndsIt(name: String, bytes: [UInt8], code: UInt16, reason: String) throws {
        let rig = try Rig()
        try rig.ready()
        try rig.receive(bytes)
        #expect(rig.owner.events == [
            .violation(code, reason),
            .ended(ConnectionFailure(.transport, "protocol violation by upstream: \(reason) (closed with \(code))")),
        ], "\(name)")
        #expect(try rig.sent().map(\.closeCode) == [code])
        #expect(rig.head.closes == [.output], "half-closed, draining the peer's data so no RST destroys the close frame")
        rig.loop.advanceTime(by: WebSocketFrameHandler.drainTimeout)
        #expect(rig.head.closes == [.output, .all])
        #expect(rig.owner.events.count == 2)
    }

    @Test func abortResetsTCPWithoutACloseFrameAndReportsNothing() throws {
        let rig = try Rig(dial: .socketLike)
        try rig.ready()
        rig.connection.abort()
        #expect(rig.socket?.lingers == [.init(onoff: 1, seconds: 0, whileOpen: true)], "SO_LINGER 0, then close: a reset")
        #expect(rig.head.closes == [.all])
        #expect(try rig.sent().isEmpty, "no close frame")
        rig.advance(.seconds(60))
        #expect(rig.owner.events.isEmpty)
    }

    @Test func abortOnAChannelWithoutSocketOptionsStillCloses() throws {
        let rig = try Rig()
        try rig.ready()
        rig.connection.abort()
        #expect(rig.head.closes == [.all])
        #expect(try rig.sent().isEmpty)
        #expect(rig.owner.events.isEmpty)
    }

    // MARK: Masking

    @Test func everyFrameTheConnectionSendsIsMasked() throws {
        let rig = try Rig()
        try rig.ready()
        rig.connection.send(.text(Array(#"{"type":"x"}"#.utf8)))
        rig.connection.send(.binary([1, 2, 3]), flush: false)
        #expect(try rig.sent().map(\.opcode) == [Opcode.text], "not flushed yet")
        rig.connection.flush()
        rig.connection.pingNow()
        try rig.receive(Brain.ping([5, 6]))
        rig.connection.close(code: .normal)
        let frames = try rig.sent()
        #expect(frames.map(\.opcode) == [Opcode.binary, Opcode.ping, Opcode.pong, Opcode.close])
        #expect(frames.map(\.payload.count) == [3, 8, 2, 2])
        #expect(frames.allSatisfy { $0.masked })
    }
}
