import Glibc
import Synchronization
import TetherCore

/// An rtnetlink socket subscribed to link, address and route news (RTMGRP_LINK,
/// RTMGRP_IPV4/IPV6_IFADDR, RTMGRP_IPV4/IPV6_ROUTE). Non-blocking and close-on-exec; the
/// monitor polls it. Only the kernel's datagrams are accepted.
///
/// The socket belongs to the network namespace of the thread that opened it, for good:
/// tests open it on a thread that has entered a scratch namespace.
public final class NetlinkSocket: Sendable {
    /// What one `receive` produced.
    public enum Received: Sendable, Equatable {
        /// This many bytes of one datagram are in the buffer.
        case datagram(Int)
        /// Nothing queued.
        case wouldBlock
        /// ENOBUFS: the kernel dropped notifications because our queue was full. State is
        /// unknown until the next full dump.
        case overflow
        /// A datagram larger than the buffer: the tail is lost, so is the state.
        case truncated(Int)
        /// A datagram not from the kernel (another process's port): dropped.
        case foreign
    }

    public static let defaultReceiveBufferBytes = 4 << 20

    public let fileDescriptor: Int32
    /// Our netlink port ID: dump replies are addressed to it.
    public let portID: UInt32
    /// SO_RCVBUF as the kernel granted it (it doubles the request for bookkeeping).
    public let receiveBufferBytes: Int
    private let closed = Mutex(false)

    /// `sockaddr_nl`: family, pad, port ID, multicast groups.
    private struct SocketAddress {
        var family = UInt16(AF_NETLINK)
        var pad: UInt16 = 0
        var portID: UInt32 = 0
        var groups: UInt32 = 0
    }

    /// NETLINK_ROUTE.
    private static let protocolRoute: Int32 = 0

    public init(groups: UInt32 = Netlink.Group.monitor,
                receiveBufferBytes: Int = NetlinkSocket.defaultReceiveBufferBytes) throws(NetlinkSocketError) {
        let type = Int32(SOCK_RAW.rawValue | SOCK_CLOEXEC.rawValue | SOCK_NONBLOCK.rawValue)
        let fd = Glibc.socket(AF_NETLINK, type, NetlinkSocket.protocolRoute)
        guard fd >= 0 else { throw NetlinkSocketError("socket", errno) }
        // A burst of route changes (a VPN coming up, a DHCP renewal on many interfaces) can
        // overrun the default ~200 KiB queue; ENOBUFS then costs a full resync. As root
        // (or with CAP_NET_ADMIN) SO_RCVBUFFORCE may exceed net.core.rmem_max.
        var size = Int32(clamping: receiveBufferBytes)
        let length = socklen_t(MemoryLayout<Int32>.size)
        if setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, length) != 0 {
            _ = setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, length)
        }
        var granted: Int32 = 0
        var grantedLength = length
        _ = getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &granted, &grantedLength)

        var address = SocketAddress(groups: groups)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<SocketAddress>.size))
            }
        }
        guard bound == 0 else {
            let code = errno
            Glibc.close(fd)
            throw NetlinkSocketError("bind", code)
        }
        var local = SocketAddress()
        var localLength = socklen_t(MemoryLayout<SocketAddress>.size)
        let named = withUnsafeMutablePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &localLength) }
        }
        guard named == 0 else {
            let code = errno
            Glibc.close(fd)
            throw NetlinkSocketError("getsockname", code)
        }
        self.fileDescriptor = fd
        self.portID = local.portID
        self.receiveBufferBytes = Int(granted)
    }

    deinit { close() }

    /// Sends one request to the kernel.
    public func send(_ bytes: [UInt8]) throws(NetlinkSocketError) {
        var kernel = SocketAddress()
        while true {
            let sent = bytes.withUnsafeBytes { buffer in
                withUnsafePointer(to: &kernel) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        sendto(fileDescriptor, buffer.baseAddress, buffer.count, Int32(MSG_NOSIGNAL), $0,
                               socklen_t(MemoryLayout<SocketAddress>.size))
                    }
                }
            }
            if sent == bytes.count { return }
            if sent < 0 && errno == EINTR { continue }
            throw NetlinkSocketError("sendto", sent < 0 ? errno : EMSGSIZE)
        }
    }

    /// Reads one datagram into `buffer`, without blocking.
    public func receive(into buffer: UnsafeMutableRawBufferPointer) throws(NetlinkSocketError) -> Received {
        while true {
            var source = SocketAddress()
            var sourceLength = socklen_t(MemoryLayout<SocketAddress>.size)
            // MSG_TRUNC makes recvfrom return the datagram's real size, so a cut is visible.
            let count = withUnsafeMutablePointer(to: &source) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    recvfrom(fileDescriptor, buffer.baseAddress, buffer.count, Int32(MSG_TRUNC), $0, &sourceLength)
                }
            }
            if count < 0 {
                switch errno {
                case EINTR: continue
                case EAGAIN, EWOULDBLOCK: return .wouldBlock
                case ENOBUFS: return .overflow
                case let code: throw NetlinkSocketError("recvfrom", code)
                }
            }
            if source.portID != 0 { return .foreign }
            if count > buffer.count { return .truncated(count) }
            return .datagram(count)
        }
    }

    /// Test-only (the `debug-fault network-monitor` control command): puts /dev/null in place
    /// of the socket under the same descriptor number, atomically (dup2), so that the next call
    /// fails with ENOTSOCK as on a descriptor clobbered elsewhere in the process, without the
    /// number ever being free for another file to take.
    func clobberForTesting() {
        let null = Glibc.open("/dev/null", O_RDONLY | O_CLOEXEC)
        guard null >= 0 else { return }
        _ = dup2(null, fileDescriptor)
        Glibc.close(null)
    }

    /// Idempotent.
    public func close() {
        closed.withLock { isClosed in
            guard !isClosed else { return }
            isClosed = true
            Glibc.close(fileDescriptor)
        }
    }
}

/// A failed socket call, with the errno that explains it.
public struct NetlinkSocketError: Error, Sendable, Equatable, CustomStringConvertible {
    public var operation: String
    public var errno: Int32

    public init(_ operation: String, _ errno: Int32) {
        self.operation = operation
        self.errno = errno
    }

    public var description: String { "netlink \(operation): \(String(cString: strerror(errno)))" }
}
