import DequeModule

/// An upstream message with its JSON already parsed: what a dialect interprets.
public enum InboundMessage: Sendable, Equatable {
    case text(ParsedJSON)
    case binary([UInt8])
}

public typealias ParsedJSON = Result<JSONValue, JSONParseError>

/// Keeps the upstream's messages in arrival order while big text messages are parsed away from
/// the event loop.
///
/// Parsing is linear, but a 4 MiB frame built to be expensive (400,000 keys) still costs
/// about 200 ms, and the event loop also carries the control socket, the uplink and the pings.
/// So a text message above `inlineLimit` is handed out to be parsed elsewhere; everything that
/// arrives after it waits here until its result is back, then all of it is delivered in order.
/// Small messages (every event a well-behaved brain sends, audio deltas included) are parsed
/// at once, as before. Pure: the connection does the hand-off and the reading.
public struct InboundMessageQueue {
    public enum Arrival: Equatable {
        /// Nothing is waiting: interpret these now, in this order.
        case deliver([InboundMessage])
        /// Parse these bytes away from the loop and report the result with `parsed(ticket:_:)`.
        case parseAway(ticket: UInt64, bytes: [UInt8])
        /// Queued behind a message still being parsed.
        case queued
    }

    private enum Slot {
        case ready(InboundMessage)
        case parsing(ticket: UInt64)
    }

    public static let defaultInlineLimit = 64 * 1024

    public let inlineLimit: Int
    private var slots: Deque<Slot> = []
    private var nextTicket: UInt64 = 1

    public init(inlineLimit: Int = defaultInlineLimit) { self.inlineLimit = inlineLimit }

    /// True while a message is out being parsed: the connection stops reading meanwhile, so
    /// what queues up behind it is bounded by the socket's buffers, not by the brain.
    public var isParsing: Bool {
        slots.contains { if case .parsing = $0 { true } else { false } }
    }

    /// True when nothing waits: a peer's close can be handled at once.
    public var isEmpty: Bool { slots.isEmpty }

    public mutating func arrived(text bytes: [UInt8]) -> Arrival {
        if bytes.count > inlineLimit {
            let ticket = nextTicket
            nextTicket += 1
            slots.append(.parsing(ticket: ticket))
            return .parseAway(ticket: ticket, bytes: bytes)
        }
        return enqueue(.text(Self.parse(bytes)))
    }

    public mutating func arrived(binary bytes: [UInt8]) -> Arrival {
        enqueue(.binary(bytes))
    }

    /// The result of a `parseAway`: returns what can now be delivered, in order (nothing while
    /// an earlier message is still out).
    public mutating func parsed(ticket: UInt64, _ result: ParsedJSON) -> [InboundMessage] {
        guard let index = slots.firstIndex(where: { if case .parsing(ticket) = $0 { true } else { false } }) else {
            return []
        }
        slots[index] = .ready(.text(result))
        var deliverable: [InboundMessage] = []
        while case .ready(let message)? = slots.first {
            deliverable.append(message)
            slots.removeFirst()
        }
        return deliverable
    }

    /// The parse every text message gets, wherever it runs.
    public static func parse(_ bytes: [UInt8]) -> ParsedJSON {
        do {
            return .success(try JSONParser.parse(bytes: bytes))
        } catch {
            return .failure(error)
        }
    }

    private mutating func enqueue(_ message: InboundMessage) -> Arrival {
        if slots.isEmpty { return .deliver([message]) }
        slots.append(.ready(message))
        return .queued
    }
}
