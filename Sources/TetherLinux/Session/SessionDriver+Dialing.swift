import NIOCore
import NIOPosix
import TetherCore

/// How a connection attempt of the machine becomes a link: credentials first (a token
/// endpoint may need a round trip), then the upgrade request's headers, then the connection
/// and its dialect, entered in the link table together.
extension SessionDriver {
    func openConnection(_ generation: UInt64) {
        if let immediate = settings.credentials.immediate {
            dial(generation, key: immediate)
            return
        }
        let credentials = settings.credentials
        let me = NIOLoopBound(self, eventLoop: loop)
        Task {
            let result = await credentials.authorization()
            me.eventLoop.execute { me.value.credentials(result, for: generation) }
        }
    }

    private func credentials(_ result: Result<Secret?, ConnectionFailure>, for generation: UInt64) {
        switch result {
        case .success(let key):
            dial(generation, key: key)
        case .failure(let failure):
            // The attempt may have been abandoned while credentials were fetched.
            guard machine.isDialling(generation) else { return }
            recordFailure(failure, "no credentials for the upstream", generation: generation)
            perform(machine.failed(generation: generation, failure, now: MonoClock.now(), random: .random(in: 0..<1)))
        }
    }

    private func dial(_ generation: UInt64, key: Secret?) {
        guard machine.isDialling(generation) else { return }
        var headers = settings.upstream.headers
        if let key { headers.append(HTTPHeader(name: "Authorization", value: "Bearer \(key.exposedValue)")) }
        let upstream = settings.upstream
        let connectionSettings = UpstreamConnectionSettings(
            url: upstream.url, headers: headers, tls: settings.tls,
            connectTimeout: upstream.connectTimeout, handshakeTimeout: upstream.handshakeTimeout,
            pingInterval: upstream.pingInterval, maxMessageBytes: upstream.maxFrameBytes)
        let connection = UpstreamConnection(generation: generation, loop: loop, settings: connectionSettings,
                                            parsingPool: blockingPool, owner: self)
        let dialect = UpstreamDialects.make(upstream.protocolKind, session: upstream.session, rate: settings.rate,
                                            conversation: conversationSeed(for: generation))
        links.add(UpstreamLink(connection: connection, dialect: dialect))
        connection.start()
    }
}
