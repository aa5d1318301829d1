import Testing
@testable import TetherCore

/// Big text messages are parsed away from the event loop, and nothing overtakes them.
@Suite struct InboundMessageQueueTests {
    static let small = Array(#"{"type":"a"}"#.utf8)
    static func big(_ type: String) -> [UInt8] { Array(#"{"type":"\#(type)","pad":"\#(String(repeating: "x", count: 100))"}"#.utf8) }

    @Test func smallMessagesAreParsedAndDeliveredAtOnce() {
        var queue = InboundMessageQueue(inlineLimit: 64)
        #expect(queue.arrived(text: Self.small) == .deliver([.text(.success(["type": "a"]))]))
        #expect(queue.arrived(binary: [1, 2]) == .deliver([.binary([1, 2])]))
        #expect(queue.isEmpty && !queue.isParsing)
    }

    @Test func whatArrivesBehindABigMessageWaitsForItInOrder() throws {
        var queue = InboundMessageQueue(inlineLimit: 64)
        guard case .parseAway(let first, let bytes) = queue.arrived(text: Self.big("b1")) else {
            Issue.record("a big message is parsed away")
            return
        }
        #expect(queue.isParsing)
        #expect(queue.arrived(binary: [7]) == .queued)
        #expect(queue.arrived(text: Self.small) == .queued)
        guard case .parseAway(let second, _) = queue.arrived(text: Self.big("b2")) else {
            Issue.record("a second big message is parsed away too")
            return
        }
        #expect(queue.arrived(binary: [8]) == .queued)
        // The second comes back first: nothing can be delivered yet.
        #expect(queue.parsed(ticket: second, InboundMessageQueue.parse(Self.big("b2"))).isEmpty)
        let delivered = queue.parsed(ticket: first, InboundMessageQueue.parse(bytes))
        let types = delivered.map { message -> String in
            switch message {
            case .text(.success(let value)): return value["type"]?.stringValue ?? "?"
            case .text(.failure): return "error"
            case .binary(let b): return "bin\(b)"
            }
        }
        #expect(types == ["b1", "bin[7]", "a", "b2", "bin[8]"])
        #expect(queue.isEmpty && !queue.isParsing)
    }

    @Test func aParseErrorIsDeliveredInItsPlace() {
        var queue = InboundMessageQueue(inlineLimit: 4)
        guard case .parseAway(let ticket, _) = queue.arrived(text: Array("[1,2,".utf8)) else {
            Issue.record("parsed away")
            return
        }
        let delivered = queue.parsed(ticket: ticket, InboundMessageQueue.parse(Array("[1,2,".utf8)))
        guard case .text(.failure)? = delivered.first else {
            Issue.record("the error is delivered: \(delivered)")
            return
        }
    }

    @Test func anUnknownTicketChangesNothing() {
        var queue = InboundMessageQueue(inlineLimit: 4)
        _ = queue.arrived(text: Array("[1,2,3]".utf8))
        #expect(queue.parsed(ticket: 99, .success(.null)).isEmpty)
        #expect(queue.isParsing)
    }
}
