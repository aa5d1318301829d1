"""A WebSocket server written from the RFC's wire format, not from a library, so it can send
what no library would: masked server frames, reserved bits, oversized or fragmented control
frames, lengths beyond any limit, stray continuations, text split inside a UTF-8 sequence,
invalid close codes. Each connection gets a run of edge cases that a conformant client must
survive (pings inside fragmented messages, empty frames, interleaved control frames) and then,
usually, one violation; the peer records which close code came back, every pong, and the
client's binary frames (mic audio) so tests can check nothing was lost across the reconnects.
Only the standard library; one thread, one selector-driven accept loop per connection."""

import base64
import hashlib
import os
import socket
import struct
import threading

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def unmask(data, mask):
    """XOR with the repeating 4-byte key, as one big integer (a byte loop would cost this
    peer more CPU than the client under test)."""
    n = len(data)
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")


def frame(opcode, payload=b"", fin=True, rsv=0, mask=None, length=None):
    """One frame as bytes. `length` overrides the header's length (for lying headers)."""
    n = len(payload) if length is None else length
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    mask_bit = 0x80 if mask is not None else 0
    if n < 126:
        head += bytes([mask_bit | n])
    elif n < 1 << 16:
        head += bytes([mask_bit | 126]) + struct.pack(">H", n)
    else:
        head += bytes([mask_bit | 127]) + struct.pack(">Q", n)
    if mask is not None:
        head += mask
        payload = unmask(payload, mask)
    return head + payload


def close_payload(code, reason=b""):
    return struct.pack(">H", code) + reason


# Violations: (name, frames to send, the close code a conformant client answers with).
VIOLATIONS = [
    ("masked server frame", [frame(2, b"\0\0", mask=b"abcd")], 1002),
    ("reserved bit without an extension", [frame(2, b"\0\0", rsv=4)], 1002),
    ("control frame over 125 bytes", [frame(9, b"x" * 126)], 1002),
    ("fragmented control frame", [frame(9, b"ping", fin=False)], 1002),
    ("64-bit length beyond max_frame_bytes", [frame(2, b"", length=1 << 40)], 1009),
    ("continuation without a start", [frame(0, b"\0\0")], 1002),
    ("new message inside a fragmented one", [frame(2, b"\0\0", fin=False), frame(2, b"\0\0")], 1002),
    ("invalid UTF-8 split across fragments", [frame(1, b'{"type":"x","t":"\xe2', fin=False), frame(0, b'\x28\xa1"}')], 1007),
    ("unknown opcode", [frame(3, b"")], 1002),
    ("close with a one-byte payload", [frame(8, b"\x03")], 1002),
    ("close with invalid UTF-8", [frame(8, close_payload(1000, b"\xff\xfe"))], 1007),
] + [(f"close code {code}", [frame(8, close_payload(code))], 1002) for code in (0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535)]


def edge_cases(rng, count):
    """Frames a conformant client must take in its stride; returns (frames, pings sent)."""
    out, pings = [], []
    for i in range(count):
        kind = rng.randrange(6)
        if kind == 0:  # a ping, answered with the same payload
            payload = os.urandom(rng.randrange(0, 126))
            pings.append(payload)
            out.append(frame(9, payload))
        elif kind == 1:  # an unsolicited pong: ignored
            out.append(frame(10, os.urandom(rng.randrange(0, 126))))
        elif kind == 2:  # a fragmented text message with a ping in the middle
            payload = os.urandom(8)
            pings.append(payload)
            out += [frame(1, b'{"type":"ed', fin=False), frame(9, payload), frame(0, b"", fin=False), frame(0, b'ge"}')]
        elif kind == 3:  # an empty binary message (zero samples)
            out.append(frame(2, b""))
        elif kind == 4:  # a text message of an unknown type, non-ASCII inside
            out.append(frame(1, ('{"type":"fuzz.%d","note":"h\u00e9 \u20ac \U0001f600"}' % i).encode()))
        else:  # a binary message fragmented into single bytes (4 bytes of silence)
            out += [frame(2, b"\0", fin=False), frame(0, b"\0", fin=False), frame(0, b"\0", fin=False), frame(0, b"\0")]
    return out, pings


class Connection:
    def __init__(self, number):
        self.number = number
        self.pcm = bytearray()
        self.pongs = []
        self.close_code = None
        self.close_reason = None
        self.expected_close = None
        self.violation = None
        self.frames_sent = 0
        self.ended = None  # why the reader stopped: "close", "eof", "recv: ...", "send: ..."
        # The frame sender and the reader's pongs share the socket: a frame is written whole
        # before another starts (a 4 MiB frame takes many writes).
        self.send_lock = threading.Lock()

    def send(self, sock, data):
        with self.send_lock:
            sock.sendall(data)


class FuzzPeer:
    """Listens on 127.0.0.1; `plan(number)` says what connection `number` gets:
    (edge case count, violation index or None[, frames to send after the edge cases])."""

    def __init__(self, plan, seed=1):
        import random
        self.rng = random.Random(seed)
        self.plan = plan
        self.connections = []
        self.lock = threading.Lock()
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.running = True
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def url(self, path="/pcm"):
        return f"ws://127.0.0.1:{self.port}{path}"

    def close(self):
        self.running = False
        self.server.close()

    def _accept(self):
        while self.running:
            try:
                sock, _ = self.server.accept()
            except OSError:
                return
            with self.lock:
                c = Connection(len(self.connections) + 1)
                self.connections.append(c)
            threading.Thread(target=self._serve, args=(sock, c), daemon=True).start()

    # -- one connection --------------------------------------------------------------------

    def _serve(self, sock, c):
        sock.settimeout(10)
        try:
            if not self._upgrade(sock):
                return
            count, violation, *extra = self.plan(c.number)
            frames, pings = edge_cases(self.rng, count)
            frames += extra[0] if extra else []
            if violation is not None:
                name, bad, code = VIOLATIONS[violation]
                c.violation, c.expected_close = name, code
                frames = frames + bad
            reader = threading.Thread(target=self._read, args=(sock, c), daemon=True)
            reader.start()
            c.pings_sent = pings
            for data in frames:
                c.send(sock, data)
                c.frames_sent += 1
            reader.join(15)
        except OSError as error:
            c.ended = c.ended or f"send: {error}"
            reader.join(5)
        finally:
            sock.close()

    def _upgrade(self, sock):
        request = b""
        while b"\r\n\r\n" not in request:
            chunk = sock.recv(4096)
            if not chunk:
                return False
            request += chunk
        key = next(line.split(b":", 1)[1].strip() for line in request.split(b"\r\n") if line.lower().startswith(b"sec-websocket-key:"))
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
        sock.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
        return True

    def _read(self, sock, c):
        """Reads the client's frames until it closes: pongs, mic audio, its close code. Pings
        from the client are answered, as a brain does."""
        buffer = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except OSError as error:
                c.ended = c.ended or f"recv: {error}"
                return
            if not chunk:
                c.ended = c.ended or "eof"
                return
            buffer += chunk
            while True:
                parsed = self._parse(buffer)
                if parsed is None:
                    break
                opcode, payload, used = parsed
                buffer = buffer[used:]
                if opcode == 2:
                    c.pcm += payload
                elif opcode == 9:
                    try:
                        c.send(sock, frame(10, payload))
                    except OSError:
                        return
                elif opcode == 10:
                    c.pongs.append(payload)
                elif opcode == 8:
                    c.close_code = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else 1005
                    c.close_reason = payload[2:]
                    c.ended = "close"
                    try:
                        c.send(sock, frame(8, payload[:2]))
                    except OSError:
                        pass
                    return

    @staticmethod
    def _parse(buffer):
        """(opcode, unmasked payload, bytes used) of the first whole client frame, or None."""
        if len(buffer) < 2:
            return None
        opcode = buffer[0] & 0x0F
        masked = buffer[1] & 0x80
        n = buffer[1] & 0x7F
        offset = 2
        if n == 126:
            if len(buffer) < 4:
                return None
            n = struct.unpack(">H", buffer[2:4])[0]
            offset = 4
        elif n == 127:
            if len(buffer) < 10:
                return None
            n = struct.unpack(">Q", buffer[2:10])[0]
            offset = 10
        assert masked, "a client frame without a mask"
        mask = buffer[offset:offset + 4]
        offset += 4
        if len(buffer) < offset + n:
            return None
        payload = unmask(buffer[offset:offset + n], mask)
        return opcode, payload, offset + n
