import Glibc
import Testing
import TetherCore
@testable import TetherLinux

/// The bus delivers on a thread of its own, in publish order, and publishing never waits for a
/// listener: an audio thread that publishes an xrun must not run sd_notify or a control write.
@Suite struct EventBusTests {
    /// What listeners saw, with a condition to wait on (no sleeps: a deadline bounds each wait).
    final class Seen: Sendable {
        struct Record: Sendable {
            var event: TetherEvent
            var thread: pthread_t
            var threadName: String
        }

        let records = Monitor<[Record]>([])

        func add(_ event: TetherEvent) {
            let record = Record(event: event, thread: pthread_self(), threadName: currentThreadName())
            records.withLock { $0.append(record) }
            records.notifyAll()
        }

        func wait(count: Int, within timeout: Duration = .seconds(5)) -> [Record]? {
            records.wait(until: MonoClock.now() + timeout) { $0.count >= count ? $0 : nil }
        }
    }

    @Test func listenersRunOnTheBusThreadNotThePublishers() async throws {
        let bus = EventBus()
        let seen = Seen()
        bus.subscribe { seen.add($0) }
        let publisher = Monitor<pthread_t?>(nil)
        let thread = try DedicatedThread.start(name: "test-capture") {
            publisher.withLock { $0 = pthread_self() }
            bus.publish(.audioXrun(.capture))
        }
        await thread.finish(within: .seconds(10))
        let records = try #require(seen.wait(count: 1))
        let publisherThread = try #require(publisher.withLock { $0 })
        #expect(pthread_equal(records[0].thread, publisherThread) == 0)
        #expect(pthread_equal(records[0].thread, pthread_self()) == 0)
        #expect(records[0].threadName == "tether-events")
        #expect(records[0].event.kind == .audioXrun(.capture))
    }

    @Test func deliveryKeepsPublishOrderAcrossListeners() throws {
        let bus = EventBus()
        let all = Seen()
        let sessionOnly = Seen()
        bus.subscribe { all.add($0) }
        bus.subscribe(topics: [.session]) { sessionOnly.add($0) }
        let count = 500
        for i in 0..<count {
            bus.publish(i.isMultiple(of: 2) ? .linkBlip(durationMs: Int64(i)) : .audioLevel(micDBFS: Double(-i), outDBFS: 0))
        }
        let records = try #require(all.wait(count: count))
        #expect(records.map(\.event.kind) == (0..<count).map {
            $0.isMultiple(of: 2) ? .linkBlip(durationMs: Int64($0)) : .audioLevel(micDBFS: Double(-$0), outDBFS: 0)
        })
        let session = try #require(sessionOnly.wait(count: count / 2))
        #expect(session.map(\.event.kind) == stride(from: 0, to: count, by: 2).map { .linkBlip(durationMs: Int64($0)) })
        #expect(bus.dropped == 0)
    }

    @Test func levelsGoOnlyToWhoAsksForThem() throws {
        let bus = EventBus()
        let withLevels = Seen()
        let withoutLevels = Seen()
        bus.subscribe(topics: [.audio]) { withLevels.add($0) }
        bus.subscribe(topics: [.audio], levels: false) { withoutLevels.add($0) }
        bus.publish(.audioLevel(micDBFS: -30, outDBFS: -90))
        bus.publish(.audioXrun(.playback))
        #expect(try #require(withLevels.wait(count: 2)).map(\.event.name) == ["audio.level", "audio.xrun"])
        #expect(try #require(withoutLevels.wait(count: 1)).map(\.event.name) == ["audio.xrun"])
    }

    /// What nobody listens for is not queued: ten level events a second from the capture thread
    /// would otherwise wake the delivery thread for nothing (issue #14). Seen here by a queue
    /// that overflows only if they go in.
    @Test func anEventNobodyWantsIsNotQueued() async throws {
        let bus = EventBus(capacity: 2)
        let gate = Monitor(false)
        let seen = Seen()
        bus.subscribe(topics: [.audio], levels: false) { event in
            _ = gate.wait(until: MonoClock.now() + .seconds(10)) { $0 ? true : nil }
            seen.add(event)
        }
        bus.publish(.audioXrun(.capture))  // wanted: its listener will hold the delivery thread
        for i in 0..<20 { bus.publish(.audioLevel(micDBFS: Double(-i), outDBFS: 0)) }
        bus.publish(.speechStarted)  // nobody's topic
        #expect(bus.dropped == 0)
        // The same queue does overflow with events that are wanted.
        for _ in 0..<5 { bus.publish(.audioXrun(.playback)) }
        #expect(bus.dropped > 0)
        gate.withLock { $0 = true }
        gate.notifyAll()
        #expect(await bus.flush(within: .seconds(5)))
        #expect(seen.records.withLock { $0 }.allSatisfy { $0.event.name == "audio.xrun" })
    }

    @Test func errorsReachEverySubscriber() throws {
        let bus = EventBus()
        let tools = Seen()
        bus.subscribe(topics: [.tool]) { tools.add($0) }
        bus.publish(.speechStarted)
        bus.publish(.error(code: .upstreamError, message: "x"))
        let records = try #require(tools.wait(count: 1))
        #expect(records.map(\.event.name) == ["error"])
    }

    /// A listener that hangs (a stuck sd_notify) must not stall the publisher: past the queue's
    /// capacity events are dropped and counted, and publishing still returns at once.
    @Test func aStuckListenerCostsDroppedEventsNotABlockedPublisher() async throws {
        let bus = EventBus(capacity: 8)
        let gate = Monitor(false)
        let seen = Seen()
        bus.subscribe { event in
            _ = gate.wait(until: MonoClock.now() + .seconds(10)) { $0 ? true : nil }
            seen.add(event)
        }
        let published = 40
        let started = MonoClock.now()
        for i in 0..<published { bus.publish(.linkBlip(durationMs: Int64(i))) }
        #expect(MonoClock.now() - started < .seconds(1))
        #expect(bus.dropped > 0)
        gate.withLock { $0 = true }
        gate.notifyAll()
        #expect(await bus.flush(within: .seconds(5)))
        let delivered = seen.records.withLock { $0 }
        #expect(delivered.count + bus.dropped == published)
        // What got through is still in order.
        let durations = delivered.compactMap { record -> Int64? in
            if case .linkBlip(let ms) = record.event.kind { return ms } else { return nil }
        }
        #expect(durations == durations.sorted())
        #expect(bus.statusJSON == ["dropped": .number(Double(bus.dropped))])
    }

    @Test func flushWaitsForEverythingPublishedBefore() async throws {
        let bus = EventBus()
        let seen = Seen()
        bus.subscribe { seen.add($0) }
        for i in 0..<50 { bus.publish(.linkBlip(durationMs: Int64(i))) }
        #expect(await bus.flush(within: .seconds(5)))
        #expect(seen.records.withLock { $0.count } == 50)
    }
}

private func currentThreadName() -> String {
    let fd = open("/proc/thread-self/comm", O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return "" }
    defer { close(fd) }
    var bytes = [UInt8](repeating: 0, count: 32)
    let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
    guard n > 0 else { return "" }
    return String(decoding: bytes[0..<n].filter { $0 != 10 }, as: UTF8.self)
}
