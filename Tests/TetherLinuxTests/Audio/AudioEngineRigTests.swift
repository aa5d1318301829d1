import Foundation
import Logging
import Synchronization
import Testing
import TetherCore
@testable import TetherLinux

/// The audio engine against real ALSA (libasound's `file` plugin over `null`), paced in real
/// time by Tests/rig/alsa_rig.py. Serialized: ALSA's configuration path is process-wide.
@Suite(.serialized) struct AudioEngineRigTests {
    static let sentence = "Hello. I am a robot, and I can hear you clearly over this link."

    private func makeEngine(_ config: AudioConfig, _ recorder: AudioRecorder, health: HealthRegistry = HealthRegistry(),
                            events: EventBus = EventBus(), backoff: BackoffConfig = AudioEngine.defaultReopenBackoff) -> AudioEngine {
        recorder.listen(to: events)
        var logger = Logger(label: "tether.audio.test")
        logger.logLevel = .warning
        return AudioEngine(config: config, health: health, events: events, logger: logger,
                           heartbeatInterval: .milliseconds(200), uplinkBatch: .milliseconds(40), reopenBackoff: backoff, onCapturedFrame: recorder.sink)
    }

    private func state(_ engine: AudioEngine, _ direction: String) -> String? {
        engine.status().path(direction, "state")?.stringValue
    }

    // MARK: - Capture

    @Test func speechFedToTheMicArrivesByteIdenticalAndInOrder() async throws {
        let format = AudioRig.Format()
        let clip = try AudioRig.speech(Self.sentence, rate: format.rate)
        let rig = try AudioRig("capture")
        try rig.startFeeder(input: clip, format: format, leadMs: 200)
        try rig.startReader(format: format)
        let recorder = AudioRecorder()
        let health = HealthRegistry()
        let engine = makeEngine(rigAudioConfig(), recorder, health: health)
        engine.start()

        let needed = format.bytes(ms: 200) + clip.count + format.periodBytes
        let arrived = waitFor(.milliseconds(Int64(format.ms(bytes: needed)) + 3000)) { recorder.capturedBytes.count >= needed }
        let status = engine.status()
        let verdict = health.verdict(maxAge: .milliseconds(500))
        let loops = health.loops
        let stopStart = MonoClock.now()
        await engine.stop()
        let stopTook = MonoClock.now() - stopStart

        #expect(arrived)
        let captured = recorder.capturedBytes
        #expect(locate(clip, in: captured) != nil, "the clip must arrive bit-exact")
        let frames = recorder.frames.withLock { $0 }
        #expect(frames.allSatisfy { $0.pcm.count == format.periodBytes && $0.duration == .milliseconds(20) && !$0.gated })
        #expect(zip(frames, frames.dropFirst()).allSatisfy { $0.capturedAt < $1.capturedAt }, "in capture order")
        #expect(status.path("capture", "state")?.stringValue == "running")
        #expect(status.path("capture", "device")?.stringValue == "tether_capture")
        #expect(status.path("capture", "period_frames")?.intValue == 480)
        #expect(loops.contains("capture") && loops.contains("playback"))
        #expect(verdict.healthy, "both audio loops beat: \(verdict.stale)")
        #expect(stopTook < .milliseconds(200), "stop joins within 200 ms, took \(stopTook)")
        #expect(!health.loops.contains("capture"), "a stopped loop is no longer judged")
    }

    @Test func stereoMicIsDownmixedToMono() async throws {
        let format = AudioRig.Format(rate: 24000, channels: 2)
        let clip = try AudioRig.speech(Self.sentence, rate: format.rate)
        let rig = try AudioRig("stereo")
        // The same signal on both channels: the mono mix must equal it exactly.
        try rig.startFeeder(input: clip, monoInput: true, format: format, leadMs: 100)
        try rig.startReader(format: .init())
        let recorder = AudioRecorder()
        let engine = makeEngine(rigAudioConfig(capture: format), recorder)
        engine.start()
        let needed = 24000 * 2 / 10 + clip.count
        let arrived = waitFor(.seconds(8)) { recorder.capturedBytes.count >= needed }
        await engine.stop()
        #expect(arrived)
        #expect(recorder.frames.withLock { $0.first?.pcm.count } == 960, "mono periods")
        #expect(locate(clip, in: recorder.capturedBytes) != nil)
    }

    @Test func muteHandsNothingOn() async throws {
        let format = AudioRig.Format()
        let rig = try AudioRig("mute")
        try rig.startFeeder(input: try AudioRig.tone(ms: 3000, rate: 24000), format: format)
        try rig.startReader(format: format)
        let recorder = AudioRecorder()
        let engine = makeEngine(rigAudioConfig(), recorder)
        engine.start()
        #expect(waitFor(.seconds(3)) { recorder.frameCount >= 5 })
        engine.setMuted(true)
        let atMute = recorder.frameCount
        let mutedAt = MonoClock.now()
        // Frames already on their way may land; then nothing for a good while (levels keep
        // coming: the silent mic is reported at the 1 s keep-alive).
        let levels0 = recorder.events(named: "audio.level").count
        #expect(waitFor(.seconds(3)) { recorder.events(named: "audio.level").count >= levels0 + 2 })
        #expect(MonoClock.now() - mutedAt >= .milliseconds(900))
        let whileMuted = recorder.frameCount - atMute
        engine.setMuted(false)
        #expect(waitFor(.seconds(2)) { recorder.frameCount > atMute + whileMuted + 5 })
        let status = engine.status()
        await engine.stop()
        #expect(whileMuted <= 1)
        #expect(status.path("muted")?.boolValue == false)
        // Levels went on while muted, and said silence.
        let mutedLevels = recorder.events(named: "audio.level").dropFirst(levels0 + 1).prefix(1)
        #expect(!mutedLevels.isEmpty && mutedLevels.allSatisfy { $0.event.data["mic_dbfs"]?.doubleValue == LevelMeter.floor })
    }

    // MARK: - Device faults

    @Test func vanishedMicIsReportedAndComesBackByItself() async throws {
        let format = AudioRig.Format()
        let rig = try AudioRig("vanish")
        let feeder = try rig.startFeeder(input: try AudioRig.tone(ms: 1000, rate: 24000), format: format)
        try rig.startReader(format: format)
        let recorder = AudioRecorder()
        let health = HealthRegistry()
        let engine = makeEngine(rigAudioConfig(), recorder, health: health)
        engine.start()
        #expect(waitFor(.seconds(3)) { recorder.frameCount >= 10 })

        // Unplug: the feeder closes and deletes the FIFO. The plugin now sees end-of-file
        // (it would repeat stale data forever); the engine must notice and report it.
        rig.stop(feeder)
        let failed = waitFor(.seconds(3)) { state(engine, "capture") == "error" }
        #expect(failed)
        // Let it retry a few times: it stays in error, says why, keeps beating, and the
        // speaker side is untouched.
        #expect(waitFor(.seconds(2)) { (engine.status().path("capture", "error")?.stringValue ?? "").contains("capture.fifo") })
        let error = engine.status().path("capture", "error")?.stringValue ?? ""
        #expect(error.contains("tether_capture"), "names the device: \(error)")
        #expect(health.verdict(maxAge: .milliseconds(600)).healthy, "the capture loop beats while it waits to reopen")
        #expect(state(engine, "playback") == "idle")
        let countAtReturn = recorder.frameCount

        // Plug it back in: capture resumes without anyone asking.
        try rig.startFeeder(input: try AudioRig.tone(ms: 1000, rate: 24000, freq: 880), format: format)
        let resumed = waitFor(.seconds(6)) { state(engine, "capture") == "running" && recorder.frameCount >= countAtReturn + 10 }
        let finalStatus = engine.status()
        await engine.stop()
        #expect(resumed)
        #expect(finalStatus.path("capture", "error") == nil)
    }

    @Test func micStuckInTheDeviceStopsBeatingAndDoesNotHoldUpStop() async throws {
        let format = AudioRig.Format()
        let rig = try AudioRig("stuck")
        // 300 ms of tone, then the feeder keeps the device open but writes nothing more: the
        // capture thread blocks inside the ALSA read, as on a wedged USB microphone.
        try rig.startFeeder(input: try AudioRig.tone(ms: 300, rate: 24000), format: format, tailMs: 0)
        try rig.startReader(format: format)
        let recorder = AudioRecorder()
        let health = HealthRegistry()
        let engine = makeEngine(rigAudioConfig(), recorder, health: health)
        engine.start()
        #expect(waitFor(.seconds(3)) { recorder.frameCount >= 5 })
        let stale = waitFor(.seconds(3)) { health.verdict(maxAge: .milliseconds(400)).stale == ["capture"] }
        #expect(stale, "only the stuck loop goes stale: \(health.verdict(maxAge: .milliseconds(400)).stale)")
        let before = MonoClock.now()
        await engine.stop(timeout: .milliseconds(300))
        let took = MonoClock.now() - before
        #expect(took < .seconds(1), "stop gave up on the stuck thread after its timeout: \(took)")
        #expect(health.loops.isEmpty)
    }

    @Test func engineRestartsAfterStop() async throws {
        let format = AudioRig.Format()
        let rig = try AudioRig("restart")
        try rig.startFeeder(input: try AudioRig.tone(ms: 5000, rate: 24000), format: format)
        try rig.startReader(format: format)
        let recorder = AudioRecorder()
        let health = HealthRegistry()
        let engine = makeEngine(rigAudioConfig(), recorder, health: health)
        engine.start()
        engine.start()  // idempotent
        #expect(waitFor(.seconds(3)) { recorder.frameCount >= 5 })
        await engine.stop()
        #expect(health.loops.isEmpty)
        #expect(state(engine, "capture") == "stopped" && state(engine, "playback") == "stopped")
        let count = recorder.frameCount
        engine.start()
        #expect(waitFor(.seconds(3)) { recorder.frameCount >= count + 5 && state(engine, "playback") == "idle" })
        #expect(Set(health.loops) == ["capture", "playback"])
        await engine.stop()
    }

    @Test func missingDeviceAtStartIsAnErrorUntilReconfigured() async throws {
        let format = AudioRig.Format()
        let rig = try AudioRig("missing")
        try rig.startFeeder(format: format)
        try rig.startReader(format: format)
        var config = rigAudioConfig()
        config.capture.device = "tether_no_such_mic"
        let recorder = AudioRecorder()
        let engine = makeEngine(config, recorder)
        engine.start()
        #expect(waitFor(.seconds(2)) { state(engine, "capture") == "error" })
        let error = engine.status().path("capture", "error")?.stringValue ?? ""
        #expect(error.contains("tether_no_such_mic"))
        #expect(waitFor(.seconds(2)) { state(engine, "playback") == "idle" }, "the speaker does not care")

        // A reload that names the right device reopens it; one that changes nothing does not.
        config.capture.device = "tether_capture"
        engine.reconfigure(config)
        #expect(waitFor(.seconds(6)) { state(engine, "capture") == "running" && recorder.frameCount > 5 })
        let opens = engine.deviceSnapshots
        #expect(opens.capture.opens == 1 && opens.playback.opens == 1)
        engine.reconfigure(config)
        config.playback.prebuffer = .milliseconds(100)  // not a device setting
        config.volume = 30
        engine.reconfigure(config)
        let count = recorder.frameCount
        #expect(waitFor(.seconds(2)) { recorder.frameCount > count + 10 })
        #expect(engine.deviceSnapshots.capture.opens == 1, "no reopen when the device settings did not change")
        #expect(engine.deviceSnapshots.playback.opens == 1)
        #expect(engine.volume == 30, "a changed configured volume applies")
        await engine.stop()
    }

    // MARK: - Playback

    @Test func replyAudioComesOutIntactInOrderAndPromptly() async throws {
        let format = AudioRig.Format()
        let clip = try AudioRig.speech(Self.sentence, rate: format.rate)
        let rig = try AudioRig("playback")
        try rig.startFeeder(format: format)
        try rig.startReader(format: format)
        let recorder = AudioRecorder()
        let engine = makeEngine(rigAudioConfig(), recorder)
        engine.start()
        #expect(waitFor(.seconds(3)) { state(engine, "playback") == "idle" })

        let enqueuedAt = MonoClock.now()
        // In network-sized chunks, as the session delivers them.
        var offset = 0
        while offset < clip.count {
            let end = min(clip.count, offset + 4800)
            engine.enqueuePlayback(itemID: "item_1", pcm: Array(clip[offset..<end]))
            offset = end
        }
        engine.finishItem(itemID: "item_1")
        let clipMs = format.ms(bytes: clip.count)
        let done = waitFor(.milliseconds(Int64(clipMs) + 3000)) { !recorder.events(named: "response.audio.done").isEmpty }
        // The rig's pipe page still holds the tail when the engine reports done.
        let drained = waitFor(.seconds(1)) { rig.played().count >= clip.count }
        let status = engine.status()
        await engine.stop()

        #expect(done && drained)
        let played = rig.played()
        #expect(locate(clip, in: played) == 0, "the reply arrives first thing, bit-exact (volume 100)")
        let reads = rig.playbackReads()
        let first = try #require(reads.first)
        let latency = first.time - enqueuedAt
        print("playback: first audio at the reader \(latency) after enqueue")
        #expect(latency <= .milliseconds(60 + 20), "first audio after at most prebuffer + one period, took \(latency)")
        // It played in real time, not in a burst.
        let lastAudio = try #require(reads.last { $0.offset < clip.count })
        let span = Double((lastAudio.time - first.time).nanoseconds) / 1e6
        #expect(abs(span - (clipMs - 20)) < 100, "played over \(span) ms for \(clipMs) ms of audio")
        // The events bracket it, with the item id.
        let started = recorder.events(named: "response.audio.started")
        let finished = recorder.events(named: "response.audio.done")
        #expect(started.count == 1 && finished.count == 1)
        #expect(started.first?.event.data["item_id"]?.stringValue == "item_1")
        #expect(finished.first?.event.data["item_id"]?.stringValue == "item_1")
        if let s = started.first, let d = finished.first {
            #expect(s.time < first.time + .milliseconds(20))
            #expect(d.time >= lastAudio.time - .milliseconds(100))
        }
        #expect(status.path("playback", "state")?.stringValue == "idle", "stopped once it played out")
        #expect(status.path("playback", "underruns")?.intValue == 0)
        // Levels were reported while it spoke, at most 10 Hz.
        let levels = recorder.events(named: "audio.level")
        #expect(levels.contains { ($0.event.data["out_dbfs"]?.doubleValue ?? -200) > -40 })
        // Over any second there are at most 10 (11 counting both ends).
        let times = levels.map(\.time)
        for (i, t) in times.enumerated() {
            let inSecond = times[i...].prefix { $0 - t <= .seconds(1) }.count
            #expect(inSecond <= 11)
        }
    }

    /// Barge-in at 48 kHz stereo: there one period (3840 bytes) nearly fills the rig's pipe
    /// page (4096, the kernel's minimum), so the rig adds at most one period of its own FIFO,
    /// as a hardware FIFO would add a few frames.
    @Test func bargeInSilencesWithinAPeriodAndReportsWhatWasPlayed() async throws {
        let format = AudioRig.Format(rate: 48000, channels: 2)
        let clip = try AudioRig.speech(Self.sentence + " " + Self.sentence, rate: 48000)
        let rig = try AudioRig("barge")
        try rig.startFeeder(format: .init())
        try rig.startReader(format: format)
        let recorder = AudioRecorder()
        let engine = makeEngine(rigAudioConfig(playback: format), recorder)
        engine.start()
        #expect(waitFor(.seconds(3)) { state(engine, "playback") == "idle" })

        engine.enqueuePlayback(itemID: "resp_7", pcm: clip)
        engine.finishItem(itemID: "resp_7")
        let oneSecond = format.bytes(ms: 1000)
        #expect(waitFor(.seconds(4)) { rig.playbackReads().reduce(0) { $0 + $1.length } >= oneSecond })

        let bargeAt = MonoClock.now()
        let result = engine.bargeIn()
        let answeredAt = MonoClock.now()
        // Wait until the reader has had nothing new for a while.
        var lastCount = -1
        _ = waitFor(.seconds(3), poll: .milliseconds(150)) {
            let count = rig.playbackReads().count
            defer { lastCount = count }
            return count == lastCount
        }
        let again = engine.bargeIn()
        let status = engine.status()
        await engine.stop()

        let period = Duration.milliseconds(20)
        #expect(answeredAt - bargeAt <= period + .milliseconds(10), "the device was silenced within one period: \(answeredAt - bargeAt)")
        let reads = rig.playbackReads()
        let played = rig.played()
        // Audio the reader got after the barge-in: the rig's own pipe page (one period here)
        // plus at most one period the engine could not take back.
        let leftChannel = stride(from: 0, to: played.count - 3, by: 4).flatMap { [played[$0], played[$0 + 1]] }
        let lastSound = stride(from: leftChannel.count - 2, through: 0, by: -2).first { leftChannel[$0] != 0 || leftChannel[$0 + 1] != 0 } ?? 0
        let lastSoundOffset = lastSound * 2  // back to the stereo stream
        let audioAfter = reads.filter { $0.time > bargeAt && $0.offset < lastSoundOffset }.reduce(0) { $0 + $1.length }
        #expect(format.ms(bytes: audioAfter) <= 2 * 20 + 10, "\(format.ms(bytes: audioAfter)) ms of audio after barge-in")
        if let lastRead = reads.last(where: { $0.offset <= lastSoundOffset }) {
            #expect(lastRead.time - bargeAt <= period * 2 + .milliseconds(10), "silent by \(lastRead.time - bargeAt)")
        }
        // What the engine says was played is what came out, within a period.
        let r = try #require(result)
        #expect(r.itemID == "resp_7")
        let heardBytes = matchingPrefix(leftChannel, clip)
        let heardMs = Double(heardBytes) * 1000 / Double(48000 * 2)
        print("barge-in: answered after \(answeredAt - bargeAt), \(format.ms(bytes: audioAfter)) ms of audio reached the reader afterwards, reported \(r.playedMs) ms played, reader heard \(heardMs) ms")
        #expect(abs(Double(r.playedMs) - heardMs) <= 20, "reported \(r.playedMs) ms, the reader heard \(heardMs) ms")
        #expect(heardBytes < clip.count, "it was cut short")
        #expect(again == nil, "nothing left to interrupt")
        let done = recorder.events(named: "response.audio.done")
        #expect(done.count == 1)
        #expect(done.first?.event.data["interrupted"] == .bool(true))
        #expect(done.first?.event.data["played_ms"]?.intValue == r.playedMs)
        #expect(status.path("playback", "state")?.stringValue == "idle")
        // Late audio of the interrupted item is dropped, not played.
    }

    @Test func lateAudioOfAnInterruptedItemIsNotPlayed() async throws {
        let format = AudioRig.Format()
        let rig = try AudioRig("late")
        try rig.startFeeder(format: format)
        try rig.startReader(format: format)
        let recorder = AudioRecorder()
        let engine = makeEngine(rigAudioConfig(), recorder)
        engine.start()
        #expect(waitFor(.seconds(3)) { state(engine, "playback") == "idle" })
        let tone = try AudioRig.tone(ms: 2000, rate: 24000)
        engine.enqueuePlayback(itemID: "a", pcm: tone)
        #expect(waitFor(.seconds(2)) { !recorder.events(named: "response.audio.started").isEmpty })
        _ = engine.bargeIn()
        engine.enqueuePlayback(itemID: "a", pcm: tone)
        engine.finishItem(itemID: "a")
        let quiet = !waitFor(.milliseconds(500)) { recorder.events(named: "response.audio.started").count > 1 }
        await engine.stop()
        #expect(quiet)
    }

    // MARK: - Echo gate

    @Test func echoGateSilencesTheMicWhileTheSpeakerPlaysAndKeepsTheTimeline() async throws {
        let format = AudioRig.Format()
        let rig = try AudioRig("echo")
        try rig.startFeeder(input: try AudioRig.tone(ms: 20000, rate: 24000), format: format)
        try rig.startReader(format: format)
        let recorder = AudioRecorder()
        var config = rigAudioConfig(echo: .gate)
        config.echoTail = .milliseconds(200)
        let engine = makeEngine(config, recorder)
        engine.start()
        #expect(waitFor(.seconds(3)) { recorder.frameCount >= 10 && state(engine, "playback") == "idle" })

        func speak(_ id: String) -> (start: MonoTime, end: MonoTime)? {
            let before = recorder.events(named: "response.audio.done").count
            engine.enqueuePlayback(itemID: id, pcm: try! AudioRig.tone(ms: 600, rate: 24000, freq: 300))
            engine.finishItem(itemID: id)
            guard waitFor(.seconds(4), { recorder.events(named: "response.audio.done").count > before }) else { return nil }
            let start = recorder.events(named: "response.audio.started").last!.time
            let end = recorder.events(named: "response.audio.done").last!.time
            // And some mic audio after the tail.
            let until = end + .milliseconds(500)
            _ = waitFor(.seconds(2)) { (recorder.frames.withLock { $0.last?.capturedAt } ?? .zero) > until }
            return (start, end)
        }

        let gated = try #require(speak("g1"))
        let gateFrames = recorder.frames.withLock { $0 }
        engine.reconfigure({ var c = config; c.echo = .none; return c }())
        let open = try #require(speak("n1"))
        let allFrames = recorder.frames.withLock { $0 }
        let status = engine.status()
        await engine.stop()

        let period = Duration.milliseconds(20)
        func frames(_ list: [CapturedFrame], from a: MonoTime, to b: MonoTime) -> [CapturedFrame] {
            list.filter { $0.capturedAt >= a && $0.capturedAt + period <= b }
        }
        let silent = { (f: CapturedFrame) in f.pcm.allSatisfy { $0 == 0 } }
        // gate: everything from the speaker's start to its end plus the tail is silence...
        let during = frames(gateFrames, from: gated.start + period, to: gated.end + .milliseconds(200) - period)
        #expect(during.count >= 30)
        #expect(during.allSatisfy { silent($0) && $0.gated })
        // ...and the mic is live before and after.
        let before = frames(gateFrames, from: gated.start - .milliseconds(300), to: gated.start - period)
        let after = frames(gateFrames, from: gated.end + .milliseconds(200) + period, to: gated.end + .milliseconds(500))
        #expect(!before.isEmpty && before.allSatisfy { !silent($0) && !$0.gated })
        #expect(!after.isEmpty && after.allSatisfy { !silent($0) && !$0.gated })
        // The timeline has no holes: one frame per period throughout (a hole is a run of missing
        // periods; the rig's feeder, paced by a Python thread, may stamp a period or two late at
        // either end of the window on a loaded machine: 63 frames for 63.016 + 4 periods seen).
        let around = frames(gateFrames, from: gated.start - .milliseconds(300), to: gated.end + .milliseconds(500))
        let expected = Double((gated.end - gated.start + .milliseconds(800)).nanoseconds) / 20e6
        #expect(Double(around.count) >= expected - 5, "\(around.count) frames for \(expected) periods")

        // none: the mic passes while the speaker plays.
        let openFrames = frames(allFrames, from: open.start, to: open.end)
        #expect(openFrames.count >= 20)
        #expect(openFrames.allSatisfy { !silent($0) && !$0.gated })
        #expect(status.path("echo", "mode")?.stringValue == "none")
    }

    // MARK: - Volume

    @Test func volumeScalesThePlayedAudio() async throws {
        let format = AudioRig.Format()
        let rig = try AudioRig("volume")
        try rig.startFeeder(format: format)
        try rig.startReader(format: format)
        let recorder = AudioRecorder()
        let engine = makeEngine(rigAudioConfig(volume: 50), recorder)
        engine.start()
        #expect(waitFor(.seconds(3)) { state(engine, "playback") == "idle" })
        let tone = [UInt8](PCM16.bytes([Int16](repeating: 8000, count: 24000 / 2)))
        engine.enqueuePlayback(itemID: "v", pcm: tone)
        engine.finishItem(itemID: "v")
        #expect(waitFor(.seconds(3)) { !recorder.events(named: "response.audio.done").isEmpty })
        #expect(waitFor(.seconds(1)) { rig.played().count >= tone.count })
        engine.setVolume(140)
        let status = engine.status()
        await engine.stop()
        let samples = PCM16.samples(fromLittleEndian: rig.played())
        // 50 -> gain 0.125: 8000 -> 1000 once past the start.
        #expect(samples.filter { $0 != 0 }.allSatisfy { $0 == 1000 })
        #expect(samples.filter { $0 == 1000 }.count == 12000)
        #expect(status.path("volume")?.intValue == 100, "clamped")
    }
}

/// How many leading bytes of `a` equal `b`, aligned on the first sound in each.
private func matchingPrefix(_ stream: [UInt8], _ clip: [UInt8]) -> Int {
    func firstSound(_ b: [UInt8]) -> Int? {
        stride(from: 0, to: b.count - 1, by: 2).first { b[$0] != 0 || b[$0 + 1] != 0 }
    }
    guard let s = firstSound(stream), let c = firstSound(clip), s >= c else { return 0 }
    var n = 0
    let base = s - c
    while base + n < stream.count && n < clip.count && stream[base + n] == clip[n] { n += 1 }
    return n - n % 2
}

/// Opt-in (TETHER_AUDIO_BENCH=<seconds>): full-duplex streaming for that long, then the CPU
/// time of the two audio threads and of the whole test process. The daemon's budget is 0.15
/// CPU-seconds per 60 s for everything, so the audio threads must stay well below that.
@Suite(.serialized) struct AudioEngineBench {
    @Test(.enabled(if: ProcessInfo.processInfo.environment["TETHER_AUDIO_BENCH"] != nil))
    func fullDuplexCPU() async throws {
        let seconds = Int(ProcessInfo.processInfo.environment["TETHER_AUDIO_BENCH"] ?? "") ?? 60
        let format = AudioRig.Format()
        let rig = try AudioRig("bench")
        try rig.startFeeder(input: try AudioRig.tone(ms: (seconds + 5) * 1000, rate: 24000), format: format)
        try rig.startReader(format: format)
        let recorder = AudioRecorder()
        let events = EventBus()
        recorder.listen(to: events)
        let frames = Atomic<Int>(0)
        var logger = Logger(label: "bench")
        logger.logLevel = .warning
        let engine = AudioEngine(config: rigAudioConfig(echo: .none, volume: 80), health: HealthRegistry(), events: events,
                                 logger: logger, heartbeatInterval: .seconds(1), uplinkBatch: .milliseconds(40)) { _ in frames.add(1, ordering: .relaxed) }
        engine.start()
        #expect(waitFor(.seconds(3)) { frames.load(ordering: .relaxed) > 5 })
        let tone = try AudioRig.tone(ms: 100, rate: 24000, freq: 330)
        let cpu0 = (threadCPU(named: "tether-capture") ?? .zero, threadCPU(named: "tether-playback") ?? .zero, processCPU())
        let start = MonoClock.now()
        // The session's side: 100 ms of reply audio every 100 ms, one endless item (or, with
        // TETHER_AUDIO_BENCH_MODE=capture, no playback at all).
        let duplex = ProcessInfo.processInfo.environment["TETHER_AUDIO_BENCH_MODE"] != "capture"
        var next = start
        while MonoClock.now() - start < .seconds(seconds) {
            if duplex { engine.enqueuePlayback(itemID: "bench", pcm: tone) }
            next = next + .milliseconds(100)
            sleep(until: next)
        }
        let cpu1 = (threadCPU(named: "tether-capture") ?? .zero, threadCPU(named: "tether-playback") ?? .zero, processCPU())
        let status = engine.status()
        let split = (threadUserSystem(named: "tether-capture"), threadUserSystem(named: "tether-playback"))
        await engine.stop()
        print("bench user/system: capture \(String(describing: split.0)), playback \(String(describing: split.1))")
        let per60 = { (d: Duration) in Double(d.nanoseconds) / 1e9 * 60 / Double(seconds) }
        print("bench \(seconds) s full duplex: capture thread \(per60(cpu1.0 - cpu0.0)) s/60s, playback thread \(per60(cpu1.1 - cpu0.1)) s/60s, whole test process \(per60(cpu1.2 - cpu0.2)) s/60s; frames \(frames.load(ordering: .relaxed)), underruns \(status.path("playback", "underruns")?.intValue ?? -1), level events \(recorder.events(named: "audio.level").count)")
        #expect(per60(cpu1.0 - cpu0.0) + per60(cpu1.1 - cpu0.1) < 0.1)
    }
}

