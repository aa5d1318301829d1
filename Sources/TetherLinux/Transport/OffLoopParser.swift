import NIOCore
import NIOPosix
import TetherCore

/// Where a connection parses the text messages too big for its event loop
/// (`InboundMessageQueue`): the daemon's blocking thread pool. A test holds a parse open to see
/// what waits behind it (a thread pool cannot complete on an EmbeddedEventLoop).
protocol OffLoopParser {
    /// `InboundMessageQueue.parse(bytes)` away from `loop`; the result completes on `loop`.
    func parse(_ bytes: [UInt8], resultOn loop: any EventLoop) -> EventLoopFuture<ParsedJSON>
}

extension NIOThreadPool: OffLoopParser {
    func parse(_ bytes: [UInt8], resultOn loop: any EventLoop) -> EventLoopFuture<ParsedJSON> {
        runIfActive(eventLoop: loop) { InboundMessageQueue.parse(bytes) }
            // The pool refuses work only while the process shuts down: parse here then.
            .recover { _ in InboundMessageQueue.parse(bytes) }
    }
}
