import Glibc
import Logging
import Synchronization
import TetherCore

/// What the monitor thread and the public `NetworkMonitor` API share, behind one lock.
final class NetworkMonitorShared: Sendable {
    struct State {
        var view = NetworkView.offline
        var ready = false
        var stats = NetworkMonitorStats()
        var stopRequested = false
        /// Test-only: break the socket at the loop's next turn (`NetworkMonitor.injectSocketFault`).
        var faultRequested = false
        /// Interface name → usable (up, carrier, running), for tests that must wait until
        /// the monitor has seen a link change before asserting what did not happen.
        var usable: [String: Bool] = [:]
        /// The view derived from the latest snapshot, before debouncing: what the next
        /// evaluation will find.
        var derived: NetworkView?
    }

    let state = Mutex(State())

    var stopRequested: Bool { state.withLock { $0.stopRequested } }
}

struct NetworkMonitorSettings: Sendable {
    var ignoreInterfaces: [String]
    var debounce: Duration
    var heartbeatInterval: Duration
    /// How long after a silent-flush trigger (admin down, link gone, IPv4 address gone) to
    /// re-read the tables: the kernel sends RTM_NEWLINK before its NETDEV_DOWN notifiers
    /// flush the routes, so an immediate dump could still see them.
    var routeSettle: Duration = .milliseconds(50)
    /// A dump that has not finished by then is abandoned and retried.
    var dumpTimeout: Duration = .seconds(3)
    var maxRetryDelay: Duration = .seconds(5)
    /// Consecutive failed resyncs after which the socket is reopened.
    var reopenAfterFailures = 3
    /// Retry delays after the second consecutive failed resync (the first retries at once):
    /// 100 ms doubling to `maxRetryDelay`, without jitter (one socket, nobody to spread out from).
    var retryBackoff: BackoffConfig {
        var config = BackoffConfig()
        config.initial = .milliseconds(100)
        config.max = maxRetryDelay
        config.multiplier = 2
        config.jitter = 0
        return config
    }
    var receiveBufferBytes = 64 << 10
}

/// The monitor thread's loop. All of its state lives on that thread; only
/// `NetworkMonitorShared` crosses threads.
///
/// One poll(2) loop, never blocking anywhere else: the netlink socket, the wake channel
/// for stop, and a timeout that is the earliest of the heartbeat interval, the debouncer's
/// deadline, a scheduled resync and a dump's deadline.
final class NetworkMonitorLoop {
    private var socket: NetlinkSocket
    private let openSocket: @Sendable () throws -> NetlinkSocket
    private let wake: WakeChannel
    private let settings: NetworkMonitorSettings
    private let shared: NetworkMonitorShared
    private let heartbeat: Heartbeat
    private let bus: EventBus
    private let onChange: NetworkMonitor.ChangeHandler
    private let kindOf: NetworkSnapshot.KindLookup
    private let logger: Logger

    private var snapshot: NetworkSnapshot
    private struct Resync {
        var dump: NetlinkDump
        var fresh: NetworkSnapshot
        var deadline: MonoTime
    }
    private var resync: Resync?
    private var resyncDueAt: MonoTime?
    private var resyncReason = "start"
    private var failures = 0
    private var retryBackoff: Backoff
    /// Why the loop must end: set by a fault it cannot ride out.
    private var fatal: String?
    private var synced = false
    private var sequence: UInt32
    private var debouncer: NetworkDebouncer
    /// The last view reported through events and `onChange`; nil until the first.
    private var reported: NetworkView?
    /// The last view derived after a batch of messages, to feed the debouncer only on
    /// changes that matter (noise must not burn the leading edge).
    private var lastDerived: NetworkView?
    private var stats = NetworkMonitorStats()
    /// After a socket error, the socket is left out of poll until the retry: a descriptor
    /// that keeps failing (POLLERR/POLLNVAL at once) must not turn the loop into a spin.
    private var ignoreSocketUntil: MonoTime?

    init(socket: NetlinkSocket, openSocket: @escaping @Sendable () throws -> NetlinkSocket, wake: WakeChannel,
         settings: NetworkMonitorSettings, shared: NetworkMonitorShared, heartbeat: Heartbeat, bus: EventBus,
         kindOf: @escaping NetworkSnapshot.KindLookup, logger: Logger, onChange: @escaping NetworkMonitor.ChangeHandler) {
        self.socket = socket
        self.openSocket = openSocket
        self.wake = wake
        self.settings = settings
        self.shared = shared
        self.heartbeat = heartbeat
        self.bus = bus
        self.kindOf = kindOf
        self.logger = logger
        self.onChange = onChange
        self.snapshot = NetworkSnapshot(ignoreInterfaces: settings.ignoreInterfaces, kindOf: kindOf)
        self.debouncer = NetworkDebouncer(holdOff: settings.debounce)
        self.retryBackoff = Backoff(config: settings.retryBackoff)
        // Distinct from any earlier socket's numbers, though replies are matched by port too.
        self.sequence = UInt32(truncatingIfNeeded: MonoClock.now().nanoseconds / 1_000_000)
    }

    /// Runs until asked to stop (returns nil) or until a fault it cannot ride out (returns why).
    func run() -> String? {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: settings.receiveBufferBytes,
                                                            alignment: MemoryLayout<UInt32>.alignment)
        defer {
            buffer.deallocate()
            socket.close()
        }
        schedule(at: MonoClock.now(), reason: "start")
        while !shared.stopRequested && fatal == nil {
            if shared.state.withLock({ f in defer { f.faultRequested = false }; return f.faultRequested }) {
                logger.warning("network monitor: test fault: clobbering the netlink socket's descriptor")
                socket.clobberForTesting()
            }
            let now = MonoClock.now()
            heartbeat.beat()
            runTimers(now: now)
            publishStats()
            let quiet = ignoreSocketUntil.map { now < $0 } ?? false
            var fds = [
                // poll(2) skips negative descriptors.
                pollfd(fd: quiet ? -1 : socket.fileDescriptor, events: Int16(POLLIN), revents: 0),
                pollfd(fd: wake.readDescriptor, events: Int16(POLLIN), revents: 0),
            ]
            let ready = poll(&fds, nfds_t(fds.count), pollTimeout(now: now))
            if ready < 0 {
                let code = errno
                // Anything but an interruption (EFAULT, EINVAL, ENOMEM) fails again at once:
                // carrying on would only spin.
                if code != EINTR { fatal = "poll failed: \(String(cString: strerror(code)))" }
                continue
            }
            if fds[1].revents != 0 { wake.drain() }
            if fds[0].revents & Int16(POLLNVAL) != 0 {
                fatal = "the netlink socket's descriptor was closed under the monitor"
            } else if fds[0].revents != 0 {
                readSocket(buffer)
            }
        }
        publishStats()
        return shared.stopRequested ? nil : fatal
    }

    /// A descriptor that is closed or no longer a socket is not ours any more: its number may
    /// already belong to another file, so neither using it nor closing it to reopen is safe.
    private func isFatal(_ error: NetlinkSocketError) -> Bool {
        error.errno == EBADF || error.errno == ENOTSOCK
    }

    // MARK: timers

    private func runTimers(now: MonoTime) {
        if let current = resync, now >= current.deadline {
            resync = nil
            failed(now: now, reason: "dump timed out")
        }
        if resync == nil, let due = resyncDueAt, now >= due { beginResync(now: now) }
        if synced, debouncer.tick(now: now) { evaluate() }
    }

    private func pollTimeout(now: MonoTime) -> Int32 {
        var wakeAt = now + settings.heartbeatInterval
        if let until = ignoreSocketUntil, now < until { wakeAt = min(wakeAt, until) }
        if resync == nil, let due = resyncDueAt { wakeAt = min(wakeAt, due) }
        if let current = resync { wakeAt = min(wakeAt, current.deadline) }
        if let deadline = debouncer.deadline { wakeAt = min(wakeAt, deadline) }
        let nanos = max(0, (wakeAt - now).nanoseconds)
        // Round up: waking a hair early would spin until the deadline.
        return Int32(clamping: (nanos + 999_999) / 1_000_000)
    }

    // MARK: reading

    private func readSocket(_ buffer: UnsafeMutableRawBufferPointer) {
        var folded = false
        // Bounded, so a flood cannot keep the loop from beating and checking for stop.
        for _ in 0..<256 {
            let received: NetlinkSocket.Received
            do {
                received = try socket.receive(into: buffer)
            } catch {
                stats.socketErrors += 1
                if isFatal(error) {
                    fatal = "\(error)"
                    return
                }
                logger.warning("network monitor: \(error)")
                resync = nil
                failed(now: MonoClock.now(), reason: "\(error)")
                ignoreSocketUntil = resyncDueAt
                break
            }
            let now = MonoClock.now()
            switch received {
            case .wouldBlock:
                if folded, resync == nil { viewMayHaveChanged(now: now) }
                return
            case .overflow:
                stats.overflows += 1
                lostMessages(now: now, reason: "ENOBUFS: notifications were dropped")
            case .truncated(let size):
                stats.overflows += 1
                lostMessages(now: now, reason: "datagram of \(size) bytes truncated")
            case .foreign:
                stats.foreignDatagrams += 1
            case .datagram(let count):
                let result = NetlinkParser.parse(UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
                stats.messages += result.messages.count
                if !result.errors.isEmpty {
                    stats.parseErrors += result.errorCount
                    logger.warning("network monitor: skipped malformed netlink data",
                                   metadata: ["errors": "\(result.errors)"])
                    // What was skipped may have mattered: re-read, but not in a storm.
                    schedule(at: now + .seconds(1), reason: "malformed message")
                }
                for message in result.messages { handle(message, now: now) }
                folded = true
            }
        }
        if folded, resync == nil { viewMayHaveChanged(now: MonoClock.now()) }
    }

    private func handle(_ message: NetlinkMessage, now: MonoTime) {
        if var current = resync {
            switch current.dump.handle(message) {
            case .fold:
                if current.fresh.apply(message).routesMayBeStale {
                    schedule(at: now + settings.routeSettle, reason: "routes may have been flushed")
                }
                resync = current
            case .ignore:
                stats.staleReplies += 1
                resync = current
            case .send(let bytes):
                resync = current
                send(bytes, now: now)
            case .complete:
                resync = nil
                completeResync(with: current.fresh, now: now)
            case .restart(let reason):
                resync = nil
                failed(now: now, reason: reason)
            }
            return
        }
        if NetlinkDump.isReply(message.header, portID: socket.portID) {
            stats.staleReplies += 1
            return
        }
        if case .overrun = message.payload {
            stats.overflows += 1
            lostMessages(now: now, reason: "overrun")
            return
        }
        if snapshot.apply(message).routesMayBeStale {
            schedule(at: now + settings.routeSettle, reason: "routes may have been flushed")
        }
    }

    // MARK: resync

    private func beginResync(now: MonoTime) {
        resyncDueAt = nil
        var dump = NetlinkDump(portID: socket.portID, sequence: sequence)
        sequence &+= UInt32(NetlinkDumpKind.allCases.count)
        guard let first = dump.start() else { return }
        stats.lastResyncReason = resyncReason
        logger.debug("network monitor: reading links, addresses and routes", metadata: ["reason": "\(resyncReason)"])
        resync = Resync(dump: dump, fresh: NetworkSnapshot(ignoreInterfaces: settings.ignoreInterfaces, kindOf: kindOf),
                        deadline: now + settings.dumpTimeout)
        send(first, now: now)
    }

    private func send(_ bytes: [UInt8], now: MonoTime) {
        do {
            try socket.send(bytes)
        } catch {
            stats.socketErrors += 1
            resync = nil
            if isFatal(error) {
                fatal = "\(error)"
                return
            }
            failed(now: now, reason: "\(error)")
        }
    }

    private func completeResync(with fresh: NetworkSnapshot, now: MonoTime) {
        snapshot = fresh
        failures = 0
        retryBackoff.reset()
        stats.resyncs += 1
        synced = true
        viewMayHaveChanged(now: now)
    }

    /// Notifications were lost: nothing folded since can be trusted. Start over at once
    /// (abandoning a dump under way, whose replies may be among the lost).
    private func lostMessages(now: MonoTime, reason: String) {
        logger.info("network monitor: \(reason); re-reading all tables")
        if resync != nil {
            resync = nil
            failed(now: now, reason: reason)
        } else {
            schedule(at: now, reason: reason)
        }
    }

    /// A resync failed: retry at once the first time, then back off, and reopen the socket
    /// if it keeps failing.
    private func failed(now: MonoTime, reason: String) {
        failures += 1
        stats.failedResyncs += 1
        logger.warning("network monitor: resync failed", metadata: ["reason": "\(reason)", "attempt": "\(failures)"])
        if failures >= settings.reopenAfterFailures {
            do {
                let fresh = try openSocket()
                socket.close()
                socket = fresh
                logger.info("network monitor: reopened the netlink socket")
            } catch {
                logger.error("network monitor: cannot reopen the netlink socket: \(error)")
            }
        }
        // No jitter configured, so the random unit does not matter.
        let delay = failures <= 1 ? .zero : retryBackoff.nextDelay(unit: 0.5)
        resyncDueAt = now + delay
        resyncReason = reason
    }

    private func schedule(at time: MonoTime, reason: String) {
        guard resyncDueAt.map({ time < $0 }) ?? true else { return }
        resyncDueAt = time
        resyncReason = reason
    }

    // MARK: deciding

    private func viewMayHaveChanged(now: MonoTime) {
        guard synced else { return }
        let view = snapshot.view()
        let usable = Dictionary(snapshot.interfaces.values.map { ($0.name, $0.isUsable) }, uniquingKeysWith: { a, _ in a })
        shared.state.withLock {
            $0.usable = usable
            $0.derived = view
        }
        guard view != lastDerived else { return }
        lastDerived = view
        if debouncer.changed(now: now) { evaluate() }
    }

    private func evaluate() {
        let view = snapshot.view()
        let delta = reported.map { NetworkClassifier.classify(old: $0, new: view) } ?? NetworkClassifier.initial(view)
        reported = view
        stats.evaluations += 1
        shared.state.withLock {
            $0.view = view
            $0.ready = true
        }
        guard !delta.isEmpty else { return }
        stats.changes += 1
        logger.info("network: \(view.online ? "online" : "offline")", metadata: [
            "default_interface": "\(view.defaultInterface ?? "-")",
            "kind": "\(view.kind?.rawValue ?? "-")",
            "addresses": "\(view.addresses.joined(separator: ","))",
            "initial": "\(delta.initial)",
        ])
        for event in NetworkEvents.events(for: delta, view: view) { bus.publish(event) }
        publishStats()
        onChange(view, delta)
    }

    private func publishStats() {
        stats.resyncPending = resync != nil || resyncDueAt != nil
        let current = stats
        shared.state.withLock { $0.stats = current }
    }
}
