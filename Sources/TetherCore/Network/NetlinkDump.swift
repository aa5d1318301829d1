/// The resync protocol, as a pure state machine: dump links, then addresses, then routes,
/// one request at a time, each finished by NLMSG_DONE, into a fresh snapshot.
///
/// The socket stays subscribed to notifications while it dumps, so replies and
/// notifications interleave. Replies are told apart by port and sequence: the kernel
/// answers with our socket's port ID and our request's sequence number. Notifications
/// carry port 0 (the kernel's own news) or the port of whichever process made the change,
/// and are folded into the fresh snapshot too, in arrival order, so nothing that happens
/// during the dump is lost.
///
/// Multicast notifications carry no running sequence number, so a lost notification is
/// only visible as ENOBUFS on the socket; the gaps this machine can see are in its own
/// dumps: a reply to an older request (ignored: stale), NLM_F_DUMP_INTR (the table changed
/// under the dump), NLMSG_OVERRUN, or an error. Each of those restarts the whole resync.
public struct NetlinkDump: Sendable {
    public enum Step: Sendable, Equatable {
        /// Fold this message into the fresh snapshot (a dump reply or a notification).
        case fold
        /// A reply to a request we no longer wait for: stale, drop it.
        case ignore
        /// This table is complete; send these bytes (the next request) and keep going.
        case send([UInt8])
        /// All tables are in: the fresh snapshot replaces the old one.
        case complete
        /// The dump cannot be trusted; start a new resync (after a pause if it keeps failing).
        case restart(reason: String)
    }

    /// Our socket's netlink port ID (from getsockname after bind).
    public let portID: UInt32
    /// The sequence number of the request in flight.
    public private(set) var sequence: UInt32
    public private(set) var current: NetlinkDumpKind?
    private var pending: [NetlinkDumpKind]
    private var interrupted = false
    public private(set) var finished = false

    /// `sequence` is the number for the first request; later requests count up from it.
    public init(portID: UInt32, sequence: UInt32, kinds: [NetlinkDumpKind] = NetlinkDumpKind.allCases) {
        self.portID = portID
        self.sequence = sequence
        self.pending = kinds
    }

    /// The first request to send. Nil if there is nothing to dump.
    public mutating func start() -> [UInt8]? {
        next()
    }

    /// The sequence number the next resync should start from.
    public var nextSequence: UInt32 { sequence &+ 1 }

    /// Whether a message is a reply to one of our requests (any of them, stale or not).
    public static func isReply(_ header: NetlinkHeader, portID: UInt32) -> Bool {
        header.portID == portID && portID != 0
    }

    public mutating func handle(_ message: NetlinkMessage) -> Step {
        guard !finished else { return NetlinkDump.isReply(message.header, portID: portID) ? .ignore : .fold }
        guard NetlinkDump.isReply(message.header, portID: portID) else {
            // A notification. NLMSG_OVERRUN is the kernel telling us it dropped something.
            if case .overrun = message.payload { return fail("overrun") }
            return .fold
        }
        guard message.header.sequence == sequence, current != nil else { return .ignore }
        if message.header.dumpInterrupted { interrupted = true }
        switch message.payload {
        case .done(let status):
            if status < 0 { return fail("dump failed: errno \(0 &- status)") }
            if interrupted { return fail("dump interrupted") }
            if let bytes = next() { return .send(bytes) }
            finished = true
            return .complete
        case .error(let errno, _):
            // We never ask for acks, so even errno 0 here means the request went wrong.
            return fail("request refused: errno \(errno)")
        case .overrun:
            return fail("overrun")
        default:
            return .fold
        }
    }

    private mutating func next() -> [UInt8]? {
        guard !pending.isEmpty else {
            current = nil
            return nil
        }
        let kind = pending.removeFirst()
        if current != nil { sequence &+= 1 }
        current = kind
        interrupted = false
        return NetlinkRequest.dump(kind, sequence: sequence)
    }

    private mutating func fail(_ reason: String) -> Step {
        finished = true
        current = nil
        return .restart(reason: reason)
    }
}
