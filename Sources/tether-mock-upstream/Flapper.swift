import NIOCore
import TetherCore

extension SplitMix64 {
    /// Uniform in `0..<n`.
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }

    /// Uniform in `lower...upper` milliseconds.
    mutating func milliseconds(_ lower: Int, _ upper: Int) -> Int { lower + below(upper - lower + 1) }
}

/// One fault of a flap schedule.
enum FlapAction: String, CaseIterable, Sendable {
    case drop
    case stall = "stall-3s"
    case refuseAuth = "refuse-auth-once"
    case close1011 = "close-1011"
}

/// A seeded flap schedule: from the start, after each gap of `gaps` (200-1500 ms unless told)
/// one of the actions, until `seconds` have passed. Pure, so the same seed always gives the
/// same plan.
struct FlapPlan {
    struct Step: Equatable {
        var atMs: Int
        var action: FlapAction
    }

    var seed: UInt64
    var seconds: Double
    var steps: [Step]

    static let defaultGaps = 200...1500

    init(seed: UInt64, seconds: Double, gaps: ClosedRange<Int> = FlapPlan.defaultGaps) {
        self.seed = seed
        self.seconds = seconds
        var random = SplitMix64(seed: seed)
        let endMs = Int(seconds * 1000)
        var t = 0
        var steps: [Step] = []
        while true {
            t += random.milliseconds(gaps.lowerBound, gaps.upperBound)
            guard t <= endMs else { break }
            steps.append(Step(atMs: t, action: FlapAction.allCases[random.below(FlapAction.allCases.count)]))
        }
        self.steps = steps
    }
}

/// Runs a `FlapPlan` on the event loop.
final class Flapper {
    let plan: FlapPlan
    private let loop: EventLoop
    private let perform: (FlapAction) -> Void
    private let startedAt = NIODeadline.now()
    private var scheduled: Scheduled<Void>?
    private(set) var nextIndex = 0
    private(set) var counts: [FlapAction: Int] = [:]
    private(set) var lastAction: FlapAction?

    init(plan: FlapPlan, loop: EventLoop, perform: @escaping (FlapAction) -> Void) {
        self.plan = plan
        self.loop = loop
        self.perform = perform
    }

    var isActive: Bool { nextIndex < plan.steps.count && scheduled != nil }

    func start() { scheduleNext() }

    func stop() {
        scheduled?.cancel()
        scheduled = nil
    }

    private func scheduleNext() {
        guard nextIndex < plan.steps.count else {
            scheduled = nil
            return
        }
        let step = plan.steps[nextIndex]
        scheduled = loop.assumeIsolated().scheduleTask(deadline: startedAt + .milliseconds(Int64(step.atMs))) {
            [weak self] in
            guard let self else { return }
            self.nextIndex += 1
            self.counts[step.action, default: 0] += 1
            self.lastAction = step.action
            self.perform(step.action)
            self.scheduleNext()
        }
    }
}
