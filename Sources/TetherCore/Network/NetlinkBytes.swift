/// Bounds-checked reads from a received datagram. Every accessor returns nil instead of
/// reading past the end, so no length field from the wire can make the parser trap.
/// Integers are in host byte order, as netlink sends them; addresses inside attributes are
/// in network order and are read byte by byte by `IPAddress`.
struct NetlinkBytes {
    let buffer: UnsafeRawBufferPointer

    var count: Int { buffer.count }

    func contains(_ offset: Int, length: Int) -> Bool {
        offset >= 0 && length >= 0 && offset <= buffer.count && length <= buffer.count - offset
    }

    func u8(_ offset: Int) -> UInt8? {
        contains(offset, length: 1) ? buffer[offset] : nil
    }

    func u16(_ offset: Int) -> UInt16? {
        contains(offset, length: 2) ? buffer.loadUnaligned(fromByteOffset: offset, as: UInt16.self) : nil
    }

    func u32(_ offset: Int) -> UInt32? {
        contains(offset, length: 4) ? buffer.loadUnaligned(fromByteOffset: offset, as: UInt32.self) : nil
    }

    func i32(_ offset: Int) -> Int32? {
        contains(offset, length: 4) ? buffer.loadUnaligned(fromByteOffset: offset, as: Int32.self) : nil
    }

    func slice(_ range: Range<Int>) -> UnsafeRawBufferPointer.SubSequence? {
        contains(range.lowerBound, length: range.count) ? buffer[range] : nil
    }

    /// Walks `rtattr`s (or `nlattr`s: same layout) in `range`, calling `visit` with each
    /// attribute's type (flag bits stripped) and value range. Returns false if an attribute
    /// header is malformed or `visit` rejects a value; the walk stops there.
    func forEachAttribute(in range: Range<Int>, _ visit: (UInt16, Range<Int>) -> Bool) -> Bool {
        guard contains(range.lowerBound, length: range.count) else { return false }
        var offset = range.lowerBound
        while range.upperBound - offset >= 4 {
            guard let length = u16(offset), let rawType = u16(offset + 2) else { return false }
            let len = Int(length)
            guard len >= 4, len <= range.upperBound - offset else { return false }
            // NLA_F_NESTED and NLA_F_NET_BYTEORDER live in the top two bits of the type.
            guard visit(rawType & 0x3FFF, (offset + 4)..<(offset + len)) else { return false }
            offset += Netlink.align(len)
        }
        // Fewer than 4 bytes left cannot hold an attribute header: trailing slack, ignored.
        return true
    }
}
