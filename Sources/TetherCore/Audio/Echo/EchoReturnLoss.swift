/// Echo return loss enhancement as the canceller sees it: how much weaker its output is than
/// the microphone it was given, in periods where the speaker was heard (smoothed power, so a
/// word's gap does not swing it). Near-end speech over the robot lowers it honestly: it is
/// what the installer reads in `status.audio.echo.erle_db` to see the canceller working.
///
/// `converged` once ERLE has stayed above `convergedDB` for `hold` of echo; it is lost at once
/// below `lostDB` (hysteresis), e.g. after the echo path changed, or once ERLE has stayed below
/// `convergedDB` for `hold` of echo: a path that moved before the filter's start leaves the
/// filter cancelling next to nothing, and what the residual echo suppressor still takes off
/// can hold ERLE above `lostDB` for as long as the robot talks. A converged canceller is never
/// realigned by the delay estimator, so it would stay misaligned.
public struct EchoReturnLoss: Sendable {
    public let convergedDB: Double
    public let lostDB: Double
    /// Smoothing per period: 1 - exp(-period / timeConstant), approximated.
    private let alpha: Double
    private let holdPeriods: Int
    private var powerIn: Double = 0
    private var powerOut: Double = 0
    private var above = 0
    private var below = 0
    public private(set) var converged = false
    public private(set) var periods = 0

    public init(period: Duration, timeConstant: Duration = .milliseconds(500), hold: Duration = .seconds(1),
                convergedDB: Double = 10, lostDB: Double = 6) {
        let ratio = Double(period.nanoseconds) / Double(max(1, timeConstant.nanoseconds))
        alpha = min(1, ratio)
        holdPeriods = max(1, Int(hold.nanoseconds / max(1, period.nanoseconds)))
        self.convergedDB = convergedDB
        self.lostDB = lostDB
    }

    /// One period with echo: the microphone's and the output's sums of squares.
    public mutating func record(inputPower: Double, outputPower: Double) {
        if periods == 0 {
            powerIn = inputPower
            powerOut = outputPower
        } else {
            powerIn += alpha * (inputPower - powerIn)
            powerOut += alpha * (outputPower - powerOut)
        }
        periods += 1
        let erle = erleDB
        if erle >= convergedDB {
            above += 1
            below = 0
            if above >= holdPeriods { converged = true }
        } else {
            above = 0
            below += 1
            if erle < lostDB || below >= holdPeriods { converged = false }
        }
    }

    /// 0 before any echo was heard.
    public var erleDB: Double {
        guard periods > 0 else { return 0 }
        return 10 * Decibel.log10(max(powerIn, 1) / max(powerOut, 1))
    }

    public mutating func reset() {
        self = EchoReturnLoss(copying: self)
    }

    private init(copying other: EchoReturnLoss) {
        convergedDB = other.convergedDB
        lostDB = other.lostDB
        alpha = other.alpha
        holdPeriods = other.holdPeriods
    }
}
