/// Counters of the network monitor, for `status` and tests: bad input and lost messages are
/// counted, never silent (rule 11).
public struct NetworkMonitorStats: Sendable, Equatable {
    /// Messages decoded from the kernel.
    public var messages = 0
    /// Messages or datagram tails the parser had to skip.
    public var parseErrors = 0
    /// Full dumps completed (the first one included).
    public var resyncs = 0
    public var failedResyncs = 0
    /// ENOBUFS, overruns and truncated datagrams: notifications were lost.
    public var overflows = 0
    /// Replies to dump requests we had given up on.
    public var staleReplies = 0
    /// Datagrams from other processes' sockets, dropped.
    public var foreignDatagrams = 0
    public var socketErrors = 0
    /// Views derived and compared (coalesced by the debouncer).
    public var evaluations = 0
    /// Deltas reported through events and `onChange`.
    public var changes = 0
    public var lastResyncReason: String?
    /// A resync is scheduled or under way: the view may be about to change.
    public var resyncPending = false

    public init() {}
}
