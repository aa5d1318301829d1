import Logging
import NIOCore
import TetherCore

/// Reading from the brain follows the speaker (`DownlinkFlow`): after a reply chunk, reading
/// stops once the speaker holds `audio.playback.max_buffer`, and a timer checks every 200 ms
/// whether it has played enough to read again. Confined to the session's loop.
final class DownlinkFollower {
    private let loop: any EventLoop
    private let links: LinkTable
    private let logger: Logger
    private var flow: DownlinkFlow
    private var timer: RepeatedTask?

    static let checkEvery: TimeAmount = .milliseconds(200)

    init(maxBuffer: Duration, loop: any EventLoop, links: LinkTable, logger: Logger) {
        self.loop = loop
        self.links = links
        self.logger = logger
        self.flow = DownlinkFlow(maxBufferMs: Int(maxBuffer.milliseconds))
    }

    var paused: Bool { flow.paused }

    func update(maxBuffer: Duration) { flow.update(maxBufferMs: Int(maxBuffer.milliseconds)) }

    /// After a reply chunk went to the speaker. True when reading was paused now.
    func chunkQueued(on connection: UpstreamConnection, speaker: any SessionAudio) -> Bool {
        guard flow.playbackQueued(ms: speaker.playbackQueuedMs) == .pauseReading else { return false }
        connection.pauseReading()
        logger.debug("speaker holds \(speaker.playbackQueuedMs) ms: reading from the brain paused")
        let generation = connection.generation
        let me = NIOLoopBound(self, eventLoop: loop)
        timer?.cancel()
        timer = loop.scheduleRepeatedTask(initialDelay: Self.checkEvery, delay: Self.checkEvery) { _ in
            me.value.check(generation, speaker: speaker)
        }
        return true
    }

    private func check(_ generation: UInt64, speaker: any SessionAudio) {
        guard let connection = links[generation]?.connection else { return stop() }
        if flow.playbackQueued(ms: speaker.playbackQueuedMs) == .resumeReading {
            connection.resumeReading()
            stop()
        }
    }

    /// A new connection reads from the start.
    func stop() {
        timer?.cancel()
        timer = nil
        flow.connectionChanged()
    }
}
