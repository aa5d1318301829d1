import Glibc
import NIOCore
import NIOEmbedded
import TetherCore
@testable import TetherLinux

/// Everything a connection tells its owner, in order.
final class RecordingOwner: UpstreamConnectionOwner {
    enum Event: Equatable {
        case upgraded
        /// A text message, by its "type".
        case event(String)
        case binary([UInt8])
        case acknowledged(mark: UInt64, rtt: Duration, probe: Bool)
        case writable
        case ended(ConnectionFailure)
        case violation(UInt16, String)
    }

    var events: [Event] = []
    /// The uplink position the next ping vouches for.
    var mark: UInt64 = 0
    private(set) var marksGiven = 0

    var endings: [ConnectionFailure] {
        events.compactMap { if case .ended(let failure) = $0 { failure } else { nil } }
    }

    func connectionUpgraded(_ connection: UpstreamConnection) { events.append(.upgraded) }

    func connection(_ connection: UpstreamConnection, received message: InboundMessage) {
        switch message {
        case .text(let parsed): events.append(.event((try? parsed.get())?["type"]?.stringValue ?? "unparsable"))
        case .binary(let bytes): events.append(.binary(bytes))
        }
    }

    func connection(_ connection: UpstreamConnection, acknowledged mark: UInt64, rtt: Duration, answeredProbe: Bool) {
        events.append(.acknowledged(mark: mark, rtt: rtt, probe: answeredProbe))
    }

    func connectionWritable(_ connection: UpstreamConnection) { events.append(.writable) }

    func connection(_ connection: UpstreamConnection, ended failure: ConnectionFailure) { events.append(.ended(failure)) }

    func connectionViolation(_ connection: UpstreamConnection, code: UInt16, reason: String) {
        events.append(.violation(code, reason))
    }

    func uplinkMark(for connection: UpstreamConnection) -> UInt64 {
        marksGiven += 1
        return mark
    }
}

/// Parses that wait for the test to finish them, so a test sees what waits behind one.
final class HeldParses: OffLoopParser {
    private(set) var held: [(bytes: [UInt8], promise: EventLoopPromise<ParsedJSON>)] = []

    func parse(_ bytes: [UInt8], resultOn loop: any EventLoop) -> EventLoopFuture<ParsedJSON> {
        let promise = loop.makePromise(of: ParsedJSON.self)
        held.append((bytes, promise))
        return promise.futureResult
    }

    /// Finishes every parse still out, oldest first.
    func finishAll() {
        while !held.isEmpty {
            let (bytes, promise) = held.removeFirst()
            promise.succeed(InboundMessageQueue.parse(bytes))
        }
    }
}

/// The connection's clock: the event loop's virtual time, its reads counted.
final class LoopClock {
    let loop: EmbeddedEventLoop
    private(set) var reads = 0

    init(_ loop: EmbeddedEventLoop) { self.loop = loop }

    func now() -> MonoTime {
        reads += 1
        return MonoTime(nanoseconds: Int64(loop.now.uptimeNanoseconds))
    }
}

/// Stands at the head of the pipeline: records the close modes asked of the channel (keeping a
/// half-close from the EmbeddedChannel, which would close it whole) and counts reads asked for.
final class HeadRecorder: ChannelOutboundHandler {
    typealias OutboundIn = NIOAny
    var closes: [CloseMode] = []
    var reads = 0

    func read(context: ChannelHandlerContext) {
        reads += 1
        context.read()
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        closes.append(mode)
        if mode == .output {
            promise?.succeed(())
        } else {
            context.close(mode: mode, promise: promise)
        }
    }
}

/// An EmbeddedChannel that takes socket options as a socket channel does, and records SO_LINGER
/// (EmbeddedChannel is no `SocketOptionProvider`, so `abort` would only close it).
final class SocketLikeChannel: Channel, SocketOptionProvider, @unchecked Sendable {
    struct Linger: Equatable {
        var onoff: Int32
        var seconds: Int32
        /// Whether the channel was still open when it was set.
        var whileOpen: Bool
    }

    let embedded: EmbeddedChannel
    private(set) var lingers: [Linger] = []

    init(_ embedded: EmbeddedChannel) { self.embedded = embedded }

    var allocator: ByteBufferAllocator { embedded.allocator }
    var closeFuture: EventLoopFuture<Void> { embedded.closeFuture }
    var pipeline: ChannelPipeline { embedded.pipeline }
    var localAddress: SocketAddress? { embedded.localAddress }
    var remoteAddress: SocketAddress? { embedded.remoteAddress }
    var parent: (any Channel)? { nil }
    var isWritable: Bool { embedded.isWritable }
    var isActive: Bool { embedded.isActive }
    var _channelCore: any ChannelCore { embedded._channelCore }
    var eventLoop: any EventLoop { embedded.eventLoop }

    func setOption<Option: ChannelOption>(_ option: Option, value: Option.Value) -> EventLoopFuture<Void> {
        embedded.setOption(option, value: value)
    }

    func getOption<Option: ChannelOption>(_ option: Option) -> EventLoopFuture<Option.Value> {
        embedded.getOption(option)
    }

    func unsafeSetSocketOption<Value: Sendable>(level: SocketOptionLevel, name: SocketOptionName, value: Value) -> EventLoopFuture<Void> {
        if level == SocketOptionLevel(SOL_SOCKET), name == SocketOptionName(SO_LINGER), let value = value as? linger {
            lingers.append(Linger(onoff: value.l_onoff, seconds: value.l_linger, whileOpen: embedded.isActive))
        }
        return eventLoop.makeSucceededVoidFuture()
    }

    func unsafeSetSocketOption<Value: Sendable>(level: NIOBSDSocket.OptionLevel, name: NIOBSDSocket.Option, value: Value) -> EventLoopFuture<Void> {
        unsafeSetSocketOption(level: SocketOptionLevel(level.rawValue), name: SocketOptionName(name.rawValue), value: value)
    }

    func unsafeGetSocketOption<Value: Sendable>(level: SocketOptionLevel, name: SocketOptionName) -> EventLoopFuture<Value> {
        eventLoop.makeFailedFuture(ChannelError.operationUnsupported)
    }

    func unsafeGetSocketOption<Value: Sendable>(level: NIOBSDSocket.OptionLevel, name: NIOBSDSocket.Option) -> EventLoopFuture<Value> {
        eventLoop.makeFailedFuture(ChannelError.operationUnsupported)
    }
}

typealias Opcode = WebSocketStateMachine.Opcode

/// What a brain puts on the wire: server frames, unmasked unless a mask is given.
enum Brain {
    static func frame(_ opcode: UInt8, _ payload: [UInt8], fin: Bool = true, mask: [UInt8]? = nil) -> [UInt8] {
        var bytes: [UInt8] = [(fin ? 0x80 : 0) | opcode]
        let maskBit: UInt8 = mask == nil ? 0 : 0x80
        switch payload.count {
        case 0...125:
            bytes.append(maskBit | UInt8(payload.count))
        case 126...0xFFFF:
            bytes += [maskBit | 126, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
        default:
            bytes.append(maskBit | 127)
            bytes += (0..<8).reversed().map { UInt8(truncatingIfNeeded: payload.count >> ($0 * 8)) }
        }
        guard let mask else { return bytes + payload }
        return bytes + mask + payload.enumerated().map { $1 ^ mask[$0 % 4] }
    }

    /// A text message `{"type":...}`.
    static func event(_ type: String) -> [UInt8] { frame(Opcode.text, Array(#"{"type":"\#(type)"}"#.utf8)) }

    /// A text message over `InboundMessageQueue`'s inline limit: it is parsed off the loop.
    static func bigEvent(_ type: String) -> [UInt8] {
        let pad = String(repeating: "x", count: InboundMessageQueue.defaultInlineLimit)
        return frame(Opcode.text, Array(#"{"type":"\#(type)","pad":"\#(pad)"}"#.utf8))
    }

    static func binary(_ bytes: [UInt8]) -> [UInt8] { frame(Opcode.binary, bytes) }
    static func ping(_ payload: [UInt8]) -> [UInt8] { frame(Opcode.ping, payload) }
    static func pong(_ payload: [UInt8]) -> [UInt8] { frame(Opcode.pong, payload) }

    /// A close frame; without a code, an empty one.
    static func close(_ code: UInt16?, _ reason: String = "") -> [UInt8] {
        frame(Opcode.close, code.map { [UInt8($0 >> 8), UInt8($0 & 0xFF)] + Array(reason.utf8) } ?? [])
    }

    /// The answer to an upgrade request with this accept value.
    static func switchingProtocols(accept: String) -> [UInt8] {
        Array("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: \(accept)\r\n\r\n".utf8)
    }

    /// The Sec-WebSocket-Accept a server owes a request key (RFC 6455 4.2.2).
    static func accept(for key: String) -> String {
        Base64.encode(SHA1.hash(Array((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").utf8)))
    }
}

/// One frame the connection wrote, unmasked.
struct SentFrame: Equatable {
    var fin: Bool
    var opcode: UInt8
    var masked: Bool
    var payload: [UInt8]

    var closeCode: UInt16? {
        guard opcode == Opcode.close, payload.count >= 2 else { return nil }
        return UInt16(payload[0]) << 8 | UInt16(payload[1])
    }
}

/// Reads client frames back off the wire bytes, keeping a partial frame for the next call.
struct ClientWire {
    private var pending: [UInt8] = []

    mutating func frames(appending bytes: [UInt8]) -> [SentFrame] {
        pending += bytes
        var frames: [SentFrame] = []
        var index = 0
        while pending.count - index >= 2 {
            let first = pending[index], second = pending[index + 1]
            var at = index + 2
            var length = Int(second & 0x7F)
            if length == 126 {
                guard pending.count >= at + 2 else { break }
                length = Int(pending[at]) << 8 | Int(pending[at + 1])
                at += 2
            } else if length == 127 {
                guard pending.count >= at + 8 else { break }
                length = pending[at..<at + 8].reduce(0) { $0 << 8 | Int($1) }
                at += 8
            }
            let masked = second & 0x80 != 0
            var key: [UInt8] = [0, 0, 0, 0]
            if masked {
                guard pending.count >= at + 4 else { break }
                key = Array(pending[at..<at + 4])
                at += 4
            }
            guard pending.count >= at + length else { break }
            let payload = pending[at..<at + length].enumerated().map { $1 ^ key[$0 % 4] }
            frames.append(SentFrame(fin: first & 0x80 != 0, opcode: first & 0x0F, masked: masked, payload: payload))
            index = at + length
        }
        pending.removeFirst(index)
        return frames
    }
}

/// SHA-1 (FIPS 180-4), only for the accept value a test server owes the connection's random key.
enum SHA1 {
    static func hash(_ message: [UInt8]) -> [UInt8] {
        var h: [UInt32] = [0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0]
        var bytes = message
        bytes.append(0x80)
        while bytes.count % 64 != 56 { bytes.append(0) }
        let bits = UInt64(message.count) * 8
        bytes += (0..<8).reversed().map { UInt8(truncatingIfNeeded: bits >> UInt64($0 * 8)) }
        func rotl(_ x: UInt32, _ n: UInt32) -> UInt32 { x << n | x >> (32 - n) }
        for block in stride(from: 0, to: bytes.count, by: 64) {
            var w = [UInt32](repeating: 0, count: 80)
            for i in 0..<16 {
                w[i] = bytes[block + 4 * i..<block + 4 * i + 4].reduce(0) { $0 << 8 | UInt32($1) }
            }
            for i in 16..<80 { w[i] = rotl(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1) }
            var (a, b, c, d, e) = (h[0], h[1], h[2], h[3], h[4])
            for i in 0..<80 {
                let f: UInt32, k: UInt32
                switch i {
                case 0..<20: (f, k) = ((b & c) | (~b & d), 0x5A82_7999)
                case 20..<40: (f, k) = (b ^ c ^ d, 0x6ED9_EBA1)
                case 40..<60: (f, k) = ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC)
                default: (f, k) = (b ^ c ^ d, 0xCA62_C1D6)
                }
                let t = rotl(a, 5) &+ f &+ e &+ k &+ w[i]
                (e, d, c, b, a) = (d, c, rotl(b, 30), a, t)
            }
            h[0] &+= a
            h[1] &+= b
            h[2] &+= c
            h[3] &+= d
            h[4] &+= e
        }
        return h.flatMap { word in [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: word >> UInt32($0)) } }
    }
}

extension Array {
    /// The one element, if there is exactly one.
    var only: Element? { count == 1 ? first : nil }
}
