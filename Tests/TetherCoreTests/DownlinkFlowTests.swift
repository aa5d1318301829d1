import Testing
@testable import TetherCore

@Suite struct DownlinkFlowTests {
    @Test func pausesAtTheLimitAndResumesOnceAQuarterHasPlayed() {
        var flow = DownlinkFlow(maxBufferMs: 120_000)
        #expect(flow.resumeBelowMs == 90_000)
        #expect(flow.playbackQueued(ms: 119_999) == nil)
        #expect(flow.playbackQueued(ms: 120_000) == .pauseReading)
        #expect(flow.playbackQueued(ms: 130_000) == nil, "already paused")
        #expect(flow.playbackQueued(ms: 90_000) == nil)
        #expect(flow.playbackQueued(ms: 89_999) == .resumeReading)
        #expect(flow.playbackQueued(ms: 89_000) == nil)
    }

    @Test func smallLimitsKeepASecondOfHysteresis() {
        var flow = DownlinkFlow(maxBufferMs: 2000)
        #expect(flow.resumeBelowMs == 1000)
        #expect(flow.playbackQueued(ms: 2500) == .pauseReading)
        #expect(flow.playbackQueued(ms: 1200) == nil)
        #expect(flow.playbackQueued(ms: 0) == .resumeReading)
    }

    @Test func aNewConnectionReadsAgain() {
        var flow = DownlinkFlow(maxBufferMs: 5000)
        _ = flow.playbackQueued(ms: 6000)
        flow.connectionChanged()
        #expect(!flow.paused)
        #expect(flow.playbackQueued(ms: 6000) == .pauseReading)
    }

    @Test func aReloadedLimitKeepsAPausedReaderPausedUntilTheNewThreshold() {
        var flow = DownlinkFlow(maxBufferMs: 8000)
        #expect(flow.playbackQueued(ms: 8000) == .pauseReading)
        flow.update(maxBufferMs: 20_000)
        #expect(flow.paused)
        #expect(flow.resumeBelowMs == 15_000)
        #expect(flow.playbackQueued(ms: 15_500) == nil)
        #expect(flow.playbackQueued(ms: 14_000) == .resumeReading)
        #expect(flow.playbackQueued(ms: 19_000) == nil, "below the new limit")
    }
}
