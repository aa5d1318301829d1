"""An independent upstream peer for the system tests, written on the Python `websockets`
package (not on tether's code): it speaks pcm-stream on /pcm and the openai-realtime subset on
/v1/realtime, records everything it receives with arrival times, and has fault switches."""

import asyncio
import base64
import json
import threading
import time

import websockets
from websockets.asyncio.server import serve


class PeerConnection:
    def __init__(self, number, path, headers):
        self.number = number
        self.path = path
        self.headers = headers
        self.opened_at = time.monotonic()
        self.closed_at = None
        self.close_code = None
        self.close_frame_at = None  # when the client's close frame arrived
        self.pcm = bytearray()
        self.events = []  # client JSON events (audio replaced by its byte count)
        self.texts = []
        self.ws = None


class PythonPeer:
    """Runs on its own asyncio loop in a thread. `port` is picked by the OS."""

    def __init__(self, api_key=None, host="127.0.0.1", netns=None, accepted_keys=None):
        self.api_key = api_key
        self.host = host
        self.netns = netns
        # When set (a set the test may grow while the peer runs), any of these keys is let in
        # instead of `api_key`: tokens handed out by a token endpoint, or a rotated key.
        self.accepted_keys = accepted_keys
        self.connections = []
        self.lock = threading.Lock()
        self.refuse_status = None
        # Answer conversation.item.create with added and done, as the real server does.
        self.confirm_items = True
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.ready.wait(10), "peer did not start"

    # -- lifecycle -----------------------------------------------------------------------

    def _run(self):
        if self.netns:
            # Only this thread (and so the server's sockets) lives in the brain's namespace.
            from netns import enter
            enter(self.netns)
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._start())
        self.ready.set()
        self.loop.run_forever()

    async def _start(self):
        self.server = await serve(self._handle, self.host, 0, process_request=self._process_request,
                                  process_response=self._process_response,
                                  max_size=16 << 20, ping_interval=None, compression=None)
        self.port = self.server.sockets[0].getsockname()[1]

    def close(self):
        async def stop():
            self.server.close()
            for c in self.connections:
                if c.ws is not None:
                    c.ws.transport.abort()
        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)

    def url(self, path="/pcm"):
        return f"ws://{self.host}:{self.port}{path}"

    def call(self, coroutine_fn, *args):
        return asyncio.run_coroutine_threadsafe(coroutine_fn(*args), self.loop).result(10)

    # -- protocol ------------------------------------------------------------------------

    def _process_request(self, connection, request):
        if self.refuse_status:
            return connection.respond(self.refuse_status, "refused by the test\n")
        if not self._authorized(request.headers.get("Authorization")):
            return connection.respond(401, "bad key\n")
        return None

    def _process_response(self, connection, request, response):
        # Recorded before the 101 goes out: a pcm-stream client is live on the upgrade, and a
        # test that saw it live must find the connection here, not race the handler.
        if response.status_code == 101:
            with self.lock:
                c = PeerConnection(len(self.connections) + 1, request.path, request.headers)
                c.ws = connection
                self.connections.append(c)
        return None

    def _authorized(self, header):
        if self.accepted_keys is not None:
            return header in {f"Bearer {key}" for key in set(self.accepted_keys)}
        return self.api_key is None or header == f"Bearer {self.api_key}"

    async def _handle(self, ws):
        with self.lock:
            c = next(c for c in reversed(self.connections) if c.ws is ws)
        self._spy_on_close_frame(ws, c)
        openai = ws.request.path.startswith("/v1/realtime")
        if openai:
            await ws.send(json.dumps({"type": "session.created", "event_id": "e0",
                                      "session": {"id": f"sess_py_{c.number}", "type": "realtime"}}))
        try:
            async for message in ws:
                if isinstance(message, bytes):
                    c.pcm.extend(message)
                    continue
                c.texts.append(message)
                event = json.loads(message)
                if openai and event.get("type") == "input_audio_buffer.append":
                    audio = base64.b64decode(event["audio"])
                    c.pcm.extend(audio)
                    event = dict(event, audio=len(audio))
                c.events.append(event)
                if openai and event.get("type") == "session.update":
                    await ws.send(json.dumps({"type": "session.updated", "event_id": "e1", "session": event.get("session", {})}))
                if openai and event.get("type") == "conversation.item.create" and self.confirm_items:
                    # As the real server does: the item is added, then done (status filled in).
                    item = dict(event.get("item", {}), object="realtime.item")
                    item.setdefault("id", f"item_py_{len(c.events)}")
                    item.setdefault("status", "completed")
                    for kind in ("conversation.item.added", "conversation.item.done"):
                        await ws.send(json.dumps({"type": kind, "event_id": f"e{len(c.events)}", "previous_item_id": None,
                                                  "item": item}))
        except websockets.ConnectionClosed:
            pass
        finally:
            c.closed_at = time.monotonic()

    @staticmethod
    def _spy_on_close_frame(ws, c):
        """Timestamps the moment the client's close frame is parsed off the wire."""
        original = ws.protocol.receive_data

        def receive_data(data):
            original(data)
            if c.close_frame_at is None and ws.protocol.close_rcvd is not None:
                c.close_frame_at = time.monotonic()
                c.close_code = ws.protocol.close_rcvd.code

        ws.protocol.receive_data = receive_data

    # -- test controls -------------------------------------------------------------------

    def latest(self):
        with self.lock:
            return self.connections[-1] if self.connections else None

    def open_connections(self):
        with self.lock:
            return [c for c in self.connections if c.closed_at is None]

    def send(self, connection, message):
        self.call(connection.ws.send, message)

    def stall(self, connection):
        """Stop reading: no more pongs, no close, TCP stays up (a half-open peer)."""
        self.loop.call_soon_threadsafe(connection.ws.transport.pause_reading)

    def drop(self, connection):
        """Vanish without a close frame."""
        self.loop.call_soon_threadsafe(connection.ws.transport.abort)

    def write_raw(self, connection, data):
        """Bytes straight onto the TCP stream, bypassing the WebSocket library (bad frames)."""
        self.loop.call_soon_threadsafe(connection.ws.transport.write, data)

    def close_with(self, connection, code, reason=""):
        self.call(connection.ws.close, code, reason)

    def total_pcm(self):
        with self.lock:
            return b"".join(bytes(c.pcm) for c in self.connections)
