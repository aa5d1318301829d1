import NIOCore

/// One control line, or the news that a line was too long and was thrown away.
enum ControlLine {
    case line([UInt8])
    case tooLong
}

/// Splits the byte stream into newline-terminated lines of at most `maxLength` bytes. A
/// longer line is discarded as it arrives (never buffered whole) and reported once, so a
/// client sending a megabyte without a newline costs us at most `maxLength` of memory.
struct ControlLineDecoder: ByteToMessageDecoder {
    typealias InboundOut = ControlLine

    let maxLength: Int
    private var discarding = false

    init(maxLength: Int) { self.maxLength = maxLength }

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        let newline = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n"))
        if discarding {
            guard let newline else {
                buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
                return .needMoreData
            }
            buffer.moveReaderIndex(to: newline + 1)
            discarding = false
            context.fireChannelRead(Self.wrapInboundOut(.tooLong))
            return .continue
        }
        guard let newline else {
            if buffer.readableBytes > maxLength {
                discarding = true
                buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
            }
            return .needMoreData
        }
        let length = newline - buffer.readerIndex
        if length > maxLength {
            buffer.moveReaderIndex(to: newline + 1)
            context.fireChannelRead(Self.wrapInboundOut(.tooLong))
            return .continue
        }
        var bytes = buffer.readBytes(length: length) ?? []
        buffer.moveReaderIndex(forwardBy: 1)
        if bytes.last == UInt8(ascii: "\r") { bytes.removeLast() }
        context.fireChannelRead(Self.wrapInboundOut(.line(bytes)))
        return .continue
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        // A final line without a newline still counts (`echo -n '{"cmd":"status"}' | nc -U`).
        while try decode(context: context, buffer: &buffer) == .continue {}
        if !discarding, buffer.readableBytes > 0, buffer.readableBytes <= maxLength {
            let bytes = buffer.readBytes(length: buffer.readableBytes) ?? []
            context.fireChannelRead(Self.wrapInboundOut(.line(bytes)))
        }
        buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
        return .needMoreData
    }
}
