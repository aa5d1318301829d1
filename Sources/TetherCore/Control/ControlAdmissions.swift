/// Who may open another control connection: limited per peer uid and in total, so one leaking
/// robot process (or any member of the control group) cannot lock everybody out. Root and
/// tetherd's own user are never refused because of others: they count against their own
/// per-uid limit only. Pure bookkeeping; the control server asks it under a lock.
public struct ControlAdmissions: Sendable, Equatable {
    public struct Limits: Sendable, Equatable {
        public var perUID: Int
        public var total: Int
        public init(perUID: Int = 16, total: Int = 128) {
            self.perUID = perUID
            self.total = total
        }
    }

    public enum Verdict: Sendable, Equatable {
        case admitted
        /// The peer's uid holds `perUID` connections already.
        case uidAtLimit
        /// Unprivileged connections hold `total` already.
        case full
    }

    public let limits: Limits
    public private(set) var open: [UInt32: Int] = [:]
    public private(set) var refused: [UInt32: Int] = [:]
    /// Connections of unprivileged peers: what `total` bounds.
    public private(set) var unprivilegedOpen = 0

    public init(limits: Limits = .init()) { self.limits = limits }

    public mutating func admit(uid: UInt32, privileged: Bool) -> Verdict {
        let verdict: Verdict
        if open[uid, default: 0] >= limits.perUID {
            verdict = .uidAtLimit
        } else if !privileged && unprivilegedOpen >= limits.total {
            verdict = .full
        } else {
            verdict = .admitted
        }
        guard verdict == .admitted else {
            refused[uid, default: 0] += 1
            return verdict
        }
        open[uid, default: 0] += 1
        if !privileged { unprivilegedOpen += 1 }
        return .admitted
    }

    public mutating func release(uid: UInt32, privileged: Bool) {
        guard let count = open[uid], count > 0 else { return }
        open[uid] = count == 1 ? nil : count - 1
        if !privileged { unprivilegedOpen = max(0, unprivilegedOpen - 1) }
    }

    public var totalOpen: Int { open.values.reduce(0, +) }
}
