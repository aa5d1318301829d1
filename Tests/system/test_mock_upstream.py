"""System tests of tether-mock-upstream: the real binary against the independent `websockets`
client. Every wait has a deadline; nothing sleeps blindly.

Run: TETHER_BIN_DIR=.build/debug .venv/bin/pytest Tests/system/test_mock_upstream.py
"""

import base64
import json
import math
import os
import selectors
import signal
import socket
import struct
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from container import wait_until
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

ROOT = Path(__file__).resolve().parents[2]
BIN_DIR = Path(os.environ.get("TETHER_BIN_DIR", ROOT / ".build" / "debug"))
MOCK = BIN_DIR / "tether-mock-upstream"
RATE = 24000
FRAME_BYTES = RATE // 50 * 2  # 20 ms of PCM16 mono


# ---------------------------------------------------------------- helpers


def tone(ms, freq=440.0, amp=8000, rate=RATE, start=0):
    n = rate * ms // 1000
    return b"".join(
        struct.pack("<h", int(round(amp * math.sin(2 * math.pi * freq * (start + i) / rate)))) for i in range(n)
    )


def silence(ms, rate=RATE):
    return bytes(rate * ms // 1000 * 2)


def chunks(data, size=FRAME_BYTES):
    return [data[i : i + size] for i in range(0, len(data), size)]


def wait_for(predicate, timeout=5.0, interval=0.02, what="condition"):
    return wait_until(predicate, timeout, interval=interval, what=what)


def same_pcm(a, b, tolerance=1):
    """PCM16 equality up to `tolerance` LSB per sample (libm rounding may differ by one)."""
    if len(a) != len(b):
        return False
    sa = struct.unpack(f"<{len(a) // 2}h", a)
    sb = struct.unpack(f"<{len(b) // 2}h", b)
    return all(abs(x - y) <= tolerance for x, y in zip(sa, sb))


class Mock:
    """A running tether-mock-upstream on a free port."""

    def __init__(self, tmp_path, *args, record=True):
        if not MOCK.exists():
            pytest.fail(f"{MOCK} not built (swift build --product tether-mock-upstream)")
        self.record = tmp_path / "rec" if record else None
        self.stderr_path = tmp_path / "mock.stderr"
        cmd = [str(MOCK), "--port", "0", *args]
        if self.record:
            cmd += ["--record", str(self.record)]
        self.stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.stderr)
        line = self._read_line(10.0)
        assert line.startswith("listening on ws://127.0.0.1:"), line
        self.port = int(line.rsplit(":", 1)[1])
        assert self.port > 0
        self.url = f"ws://127.0.0.1:{self.port}"

    def _read_line(self, timeout):
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        data = b""
        while b"\n" not in data:
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                raise AssertionError(f"no listening line within {timeout}s; stderr: {self.stderr_text()}")
            chunk = os.read(self.proc.stdout.fileno(), 4096)
            if not chunk:
                raise AssertionError(f"mock exited early; stderr: {self.stderr_text()}")
            data += chunk
        return data.split(b"\n", 1)[0].decode()

    def stderr_text(self):
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    def http(self, method, path, query=None):
        url = f"http://127.0.0.1:{self.port}{path}"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        req = urllib.request.Request(url, method=method)
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def post(self, action, **query):
        status, body = self.http("POST", f"/mock/{action}", query)
        assert status == 200, body
        return body

    def status(self):
        status, body = self.http("GET", "/mock/status")
        assert status == 200
        return body

    def connect(self, path="/v1/realtime?model=gpt-realtime", **kwargs):
        kwargs.setdefault("open_timeout", 5)
        kwargs.setdefault("ping_interval", None)
        kwargs.setdefault("close_timeout", 2)
        kwargs.setdefault("max_size", 16 << 20)
        kwargs.setdefault("proxy", None)
        kwargs.setdefault("compression", None)
        return connect(self.url + path, **kwargs)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("mock did not stop within 5s of SIGTERM")
        self.stderr.close()
        return self.proc.returncode

    def file(self, name):
        return (self.record / name).read_bytes()

    def lines(self, name):
        return [json.loads(l) for l in (self.record / name).read_text().splitlines() if l.strip()]


@pytest.fixture
def mock_factory(tmp_path):
    started = []

    def make(*args, **kwargs):
        sub = tmp_path / f"m{len(started)}"
        sub.mkdir()
        m = Mock(sub, *args, **kwargs)
        started.append(m)
        return m

    yield make
    for m in started:
        code = m.stop()
        assert code == 0, f"mock exit code {code}; stderr: {m.stderr_text()}"


@pytest.fixture
def mock(mock_factory):
    return mock_factory()


def recv_json(ws, timeout=5.0):
    msg = ws.recv(timeout=timeout)
    assert isinstance(msg, str), f"expected a text frame, got {len(msg)} bytes"
    return json.loads(msg)


def recv_until(ws, type_, timeout=5.0):
    """Events up to and including the first of `type_`."""
    deadline = time.monotonic() + timeout
    seen = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no {type_} within {timeout}s; saw {[e['type'] for e in seen]}")
        event = recv_json(ws, left)
        seen.append(event)
        if event["type"] == type_:
            return seen


def append_event(pcm):
    return json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm).decode()})


# ---------------------------------------------------------------- startup and control


def test_listening_line_and_status(mock):
    status = mock.status()
    assert status["ok"] is True
    assert status["port"] == mock.port
    for key in ("connections_total", "connections_open", "received_pcm_bytes", "events_received",
                "pings_answered", "last_close_code", "protocol_errors", "sessions_expired", "items_created",
                "hellos", "transcripts", "max_session_seconds"):
        assert key in status
    assert mock.http("GET", "/mock/nope")[0] == 405
    assert mock.http("POST", "/mock/nope")[0] == 404
    assert mock.http("GET", "/elsewhere")[0] == 404
    assert mock.http("POST", "/mock/close", {"code": 99})[0] == 400
    assert mock.http("POST", "/mock/max-session", {"seconds": -1})[0] == 400
    assert mock.http("POST", "/mock/max-session", {"seconds": "nan"})[0] == 400
    assert status["max_session_seconds"] is None and status["sessions_expired"] == 0


# ---------------------------------------------------------------- openai-realtime


def test_openai_session_created_update_and_unknown_event(mock):
    with mock.connect() as ws:
        created = recv_json(ws)
        assert created["type"] == "session.created"
        assert created["event_id"]
        session = created["session"]
        assert session["type"] == "realtime"
        assert session["id"].startswith("sess_mock_")
        assert session["model"] == "gpt-realtime"

        ws.send(json.dumps({"type": "session.update", "session": {"type": "realtime", "instructions": "hi"}}))
        updated = recv_json(ws)
        assert updated["type"] == "session.updated"
        assert updated["session"]["instructions"] == "hi"
        assert updated["session"]["id"] == session["id"]

        ws.send(json.dumps({"type": "no.such.event", "event_id": "evt_1"}))
        error = recv_json(ws)
        assert error["type"] == "error"
        assert error["error"]["type"] == "invalid_request_error"
        assert error["error"]["event_id"] == "evt_1"

        ws.send("{not json")
        assert recv_json(ws)["type"] == "error"

        # The connection survives errors.
        ws.send(json.dumps({"type": "session.update", "session": {"type": "realtime"}}))
        assert recv_json(ws)["type"] == "session.updated"

    # A second connection gets a fresh session.
    with mock.connect() as ws:
        assert recv_json(ws)["session"]["id"] != session["id"]
    status = mock.status()
    assert status["connections_total"] == 2
    assert status["invalid_events"] == 1
    assert status["unknown_events"] == 1


def test_openai_echo_of_speech_and_recording(mock):
    speech = tone(400)
    sent = speech + silence(700)
    with mock.connect() as ws:
        assert recv_json(ws)["type"] == "session.created"
        for chunk in chunks(sent):
            ws.send(append_event(chunk))

        events = recv_until(ws, "input_audio_buffer.speech_started")
        started = events[-1]
        assert started["audio_start_ms"] == 0
        assert started["item_id"]
        events = recv_until(ws, "input_audio_buffer.speech_stopped")
        stopped = events[-1]
        assert stopped["item_id"] == started["item_id"]
        assert stopped["audio_end_ms"] >= 400 + 480

        events = recv_until(ws, "response.done", timeout=10)
        types = [e["type"] for e in events]
        for expected in ("response.created", "response.output_item.added", "response.output_audio.delta",
                         "response.output_audio.done", "response.output_item.done"):
            assert expected in types
        assert types.index("response.created") < types.index("response.output_item.added") \
            < types.index("response.output_audio.delta") < types.index("response.output_audio.done") \
            < types.index("response.output_item.done") < types.index("response.done")
        created = next(e for e in events if e["type"] == "response.created")
        response_id = created["response"]["id"]
        item_id = next(e for e in events if e["type"] == "response.output_item.added")["item"]["id"]
        deltas = [e for e in events if e["type"] == "response.output_audio.delta"]
        for d in deltas:
            assert d["response_id"] == response_id
            assert d["item_id"] == item_id
            assert d["output_index"] == 0 and d["content_index"] == 0
        sizes = [len(base64.b64decode(d["delta"])) for d in deltas]
        assert all(s <= RATE // 10 * 2 for s in sizes)  # ~100 ms chunks
        echoed = b"".join(base64.b64decode(d["delta"]) for d in deltas)
        assert echoed == speech
        assert events[-1]["response"]["status"] == "completed"

        # truncate the assistant item we just got
        ws.send(json.dumps({"type": "conversation.item.truncate", "item_id": item_id, "content_index": 0,
                            "audio_end_ms": 150}))
        truncated = recv_until(ws, "conversation.item.truncated")[-1]
        assert truncated["item_id"] == item_id and truncated["audio_end_ms"] == 150

    wait_for(lambda: len(mock.file("uplink.pcm")) == len(sent), what="uplink.pcm complete")
    assert mock.file("uplink.pcm") == sent
    assert mock.file("conn-1.pcm") == sent
    events = mock.lines("events.jsonl")
    appends = [e for e in events if e["event"]["type"] == "input_audio_buffer.append"]
    assert len(appends) == len(chunks(sent))
    assert all(e["conn"] == 1 and e["event"]["audio"] == FRAME_BYTES for e in appends)
    status = mock.status()
    assert status["received_pcm_bytes"] == len(sent)
    assert status["speech_started"] == 1 and status["speech_stopped"] == 1
    assert status["responses_completed"] == 1
    assert status["truncations"][0]["audio_end_ms"] == 150


def test_openai_text_item_response_create_and_cancel(mock):
    with mock.connect() as ws:
        recv_json(ws)
        ws.send(json.dumps({"type": "conversation.item.create", "item": {
            "type": "message", "role": "user", "content": [{"type": "input_text", "text": "hello"}]}}))
        added = recv_until(ws, "conversation.item.added")[-1]
        assert added["item"]["id"]
        ws.send(json.dumps({"type": "response.create"}))
        events = recv_until(ws, "response.done", timeout=10)
        audio = b"".join(base64.b64decode(e["delta"]) for e in events if e["type"] == "response.output_audio.delta")
        assert len(audio) == (500 + 20 * len("hello")) * RATE // 1000 * 2
        assert same_pcm(audio, tone(600))

        mock.post("say", ms=20000)
        recv_until(ws, "response.output_audio.delta")
        ws.send(json.dumps({"type": "response.cancel"}))
        done = recv_until(ws, "response.done")[-1]
        assert done["response"]["status"] == "cancelled"

        ws.send(json.dumps({"type": "response.cancel"}))
        assert recv_until(ws, "error")[-1]["error"]["code"] == "response_cancel_not_active"


def test_openai_function_call_round_trip(mock):
    with mock.connect() as ws:
        recv_json(ws)
        answer = mock.post("function-call", name="set_led", arguments=json.dumps({"color": "red"}))
        call_id = answer["call_id"]
        assert call_id and answer["connections"] == 1
        done = recv_until(ws, "response.function_call_arguments.done")[-1]
        assert done["call_id"] == call_id
        assert done["name"] == "set_led"
        assert json.loads(done["arguments"]) == {"color": "red"}
        for key in ("item_id", "output_index", "response_id"):
            assert key in done
        recv_until(ws, "response.done")
        ws.send(json.dumps({"type": "conversation.item.create", "item": {
            "type": "function_call_output", "call_id": call_id, "output": "{\"ok\":true}"}}))
        assert recv_until(ws, "conversation.item.added")[-1]["item"]["call_id"] == call_id
    calls = mock.status()["function_calls"]
    assert calls[0]["call_id"] == call_id and calls[0]["output"] == "{\"ok\":true}"


def test_openai_barge_in_and_say(mock):
    with mock.connect() as ws:
        recv_json(ws)
        mock.post("say", ms=300)
        events = recv_until(ws, "response.done", timeout=10)
        audio = b"".join(base64.b64decode(e["delta"]) for e in events if e["type"] == "response.output_audio.delta")
        assert same_pcm(audio, tone(300))

        mock.post("say", ms=20000)
        recv_until(ws, "response.output_audio.delta")
        mock.post("speech-started")
        events = recv_until(ws, "response.done")
        assert "input_audio_buffer.speech_started" in [e["type"] for e in events]
        assert events[-1]["response"]["status"] == "cancelled"
        assert events[-1]["response"]["status_details"]["reason"] == "turn_detected"


# ---------------------------------------------------------------- pcm-stream


def test_pcm_echo_control_messages_and_recording(mock):
    speech = tone(400, freq=300)
    sent = speech + silence(700)
    with mock.connect("/pcm") as ws:
        ws.send(json.dumps({"type": "hello", "client": "pytest"}))
        for chunk in chunks(sent):
            ws.send(chunk)
        assert recv_json(ws) == {"type": "speech_started"}
        assert recv_json(ws) == {"type": "speech_stopped"}
        echoed = b""
        while True:
            msg = ws.recv(timeout=5)
            if isinstance(msg, str):
                assert json.loads(msg)["type"] == "response_done"
                break
            echoed += msg
        assert echoed == speech

        # say: a tone, then speech over it gets clear + speech_started
        ws.send(json.dumps({"type": "say", "text": "hi"}))
        first = ws.recv(timeout=5)
        assert isinstance(first, bytes)
        mock.post("speech-started")
        seen = []
        while "speech_started" not in seen:
            msg = ws.recv(timeout=5)
            if isinstance(msg, str):
                seen.append(json.loads(msg)["type"])
        assert "clear" in seen and seen.index("clear") < seen.index("speech_started")

    wait_for(lambda: len(mock.file("conn-1.pcm")) == len(sent), what="conn-1.pcm complete")
    assert mock.file("conn-1.pcm") == sent
    assert mock.file("uplink.pcm") == sent
    types = [e["event"]["type"] for e in mock.lines("events.jsonl")]
    assert types[:2] == ["hello", "say"]


def test_uplink_keeps_arrival_order_across_connections(mock):
    a, b = tone(100, freq=200), tone(100, freq=900)
    with mock.connect("/pcm") as ws1:
        ws1.send(a)
        wait_for(lambda: mock.status()["received_pcm_bytes"] == len(a), what="first audio")
        with mock.connect() as ws2:
            recv_json(ws2)
            ws2.send(append_event(b))
            wait_for(lambda: mock.status()["received_pcm_bytes"] == len(a) + len(b), what="second audio")
    assert mock.file("uplink.pcm") == a + b
    assert mock.file("conn-1.pcm") == a
    assert mock.file("conn-2.pcm") == b


# ---------------------------------------------------------------- auth


def test_api_key_required(mock_factory):
    mock = mock_factory("--api-key", "sekrit-123")
    with pytest.raises(InvalidStatus) as refused:
        mock.connect().close()
    assert refused.value.response.status_code == 401
    with pytest.raises(InvalidStatus) as wrong:
        mock.connect(additional_headers={"Authorization": "Bearer nope"}).close()
    assert wrong.value.response.status_code == 401
    with mock.connect(additional_headers={"Authorization": "Bearer sekrit-123"}) as ws:
        assert recv_json(ws)["type"] == "session.created"
    assert mock.status()["auth_refused"] == 2
    lines = mock.lines("connections.jsonl")
    assert [l["event"] for l in lines] == ["rejected", "rejected", "open", "close"]
    assert lines[0]["authorization_present"] is False
    assert lines[1]["authorization_present"] is True and lines[2]["authorization_present"] is True
    assert b"sekrit" not in mock.file("connections.jsonl") and b"nope" not in mock.file("connections.jsonl")


def test_refuse_auth_endpoint_counts_down(mock):
    mock.post("refuse-auth", count=2)
    for _ in range(2):
        with pytest.raises(InvalidStatus) as refused:
            mock.connect("/pcm").close()
        assert refused.value.response.status_code == 401
    with mock.connect("/pcm"):
        pass
    assert mock.status()["faults"]["refuse_auth_remaining"] == 0


# ---------------------------------------------------------------- faults and hygiene


def test_drop_closes_tcp_without_close_frame(mock):
    with mock.connect() as ws:
        recv_json(ws)
        assert mock.post("drop")["connections"] == 1
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
        assert closed.value.rcvd is None
    wait_for(lambda: mock.status()["connections_open"] == 0, what="connection gone")
    assert mock.status()["last_closed_by"] == "drop"
    close_line = [l for l in mock.lines("connections.jsonl") if l["event"] == "close"][0]
    assert close_line["closed_by"] == "drop" and close_line["close_code"] is None


def test_close_with_code(mock):
    with mock.connect("/pcm") as ws:
        mock.post("close", code=4001, reason="bye now")
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
        assert closed.value.rcvd.code == 4001
        assert closed.value.rcvd.reason == "bye now"
    wait_for(lambda: mock.status()["connections_open"] == 0, what="connection gone")
    status = mock.status()
    assert status["last_close_code"] == 4001 and status["last_closed_by"] == "server"


def test_client_close_is_answered(mock):
    with mock.connect() as ws:
        recv_json(ws)
        ws.close(code=1000, reason="done")
        rcvd = ws.protocol.close_rcvd
        assert rcvd is not None and rcvd.code == 1000
    wait_for(lambda: mock.status()["connections_open"] == 0, what="connection gone")
    status = mock.status()
    assert status["last_close_code"] == 1000 and status["last_closed_by"] == "client"


def test_stall_means_no_pong_until_unstall(mock):
    with mock.connect("/pcm") as ws:
        assert ws.ping(b"before").wait(5)
        mock.post("stall", seconds=0)
        pong = ws.ping(b"during")
        assert not pong.wait(1.0), "a stalled mock must not answer pings"
        assert mock.status()["faults"]["stalled_connections"] == 1
        mock.post("unstall")
        assert pong.wait(5), "the held ping is answered after unstall"
    assert mock.status()["pings_answered"] == 2


def test_stall_with_seconds_ends_by_itself(mock):
    with mock.connect("/pcm") as ws:
        mock.post("stall", seconds=0.5)
        started = time.monotonic()
        assert ws.ping(b"x").wait(5)
        assert time.monotonic() - started >= 0.4


def test_garbage_frames(mock):
    with mock.connect() as ws:
        recv_json(ws)
        mock.post("garbage")
        first = ws.recv(timeout=5)
        with pytest.raises(ValueError):
            json.loads(first)
        # The next frame is a text frame with invalid UTF-8: the client must fail it (1007).
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=5)
    wait_for(lambda: mock.status()["connections_open"] == 0, what="connection gone")
    assert mock.status()["last_close_code"] == 1007


def test_slow_handshake(mock):
    mock.post("slow-handshake", ms=600)
    started = time.monotonic()
    with mock.connect("/pcm"):
        assert time.monotonic() - started >= 0.55
    mock.post("slow-handshake", ms=500, phase="session")
    with mock.connect() as ws:
        opened = time.monotonic()
        assert recv_json(ws)["type"] == "session.created"
        assert time.monotonic() - opened >= 0.45


def raw_websocket(mock, path="/pcm"):
    """A socket upgraded by hand, so a test can send frames no client library would."""
    s = socket.create_connection(("127.0.0.1", mock.port), timeout=5)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    response = b""
    while b"\r\n\r\n" not in response:
        response += s.recv(4096)
    assert response.startswith(b"HTTP/1.1 101")
    return s


def read_close_code(s):
    """Reads the server's frames until its close frame; returns the close code."""
    data = b""
    while True:
        while len(data) < 2 or len(data) < 2 + (data[1] & 0x7F):
            chunk = s.recv(4096)
            assert chunk, "closed without a close frame"
            data += chunk
        n = data[1] & 0x7F
        assert n < 126, "no large frames expected here"
        if data[0] == 0x88:
            return struct.unpack(">H", data[2:4])[0]
        data = data[2 + n:]


def masked(opcode, payload, fin=True):
    mask = os.urandom(4)
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    head += bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack(">H", n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def test_unmasked_client_frame_is_a_protocol_error(mock):
    s = raw_websocket(mock)
    s.sendall(b"\x81\x02hi")  # unmasked text frame
    assert read_close_code(s) == 1002
    s.close()
    wait_for(lambda: mock.status()["protocol_errors"] == 1, what="protocol error counted")


@pytest.mark.parametrize("frame", [masked(9, b"x" * 126), masked(9, b"ping", fin=False), masked(8, b"\x03\xed")],
                         ids=["ping over 125 bytes", "fragmented ping", "close code 1005"])
def test_malformed_control_frames_are_protocol_errors(mock, frame):
    # The same rules as tetherd's client end (one state machine): a control frame is at most
    # 125 bytes and never fragmented, and 1005 is never sent on the wire.
    s = raw_websocket(mock)
    s.sendall(frame)
    assert read_close_code(s) == 1002
    s.close()
    wait_for(lambda: mock.status()["protocol_errors"] == 1, what="protocol error counted")


def test_flap_plan_is_seeded_and_reset_clears(mock):
    first = mock.post("flap", seed=7, seconds=5)["plan"]
    second = mock.post("flap", seed=7, seconds=5)["plan"]
    assert first == second and len(first) >= 3
    gaps = [b["at_ms"] - a["at_ms"] for a, b in zip([{"at_ms": 0}] + first, first)]
    assert all(200 <= g <= 1500 for g in gaps)
    assert {s["action"] for s in first} <= {"drop", "stall-3s", "refuse-auth-once", "close-1011"}
    mock.post("reset")
    status = mock.status()
    assert "flap" not in status["faults"] and status["faults"]["refuse_auth_remaining"] == 0


def test_manual_turns_when_turn_detection_is_off(mock):
    speech = tone(300)
    with mock.connect() as ws:
        recv_json(ws)
        ws.send(json.dumps({"type": "session.update", "session": {
            "type": "realtime", "audio": {"input": {"turn_detection": None}}}}))
        updated = recv_json(ws)
        assert updated["session"]["audio"]["input"]["turn_detection"] is None
        ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
        assert recv_json(ws)["error"]["code"] == "input_audio_buffer_commit_empty"
        for chunk in chunks(speech + silence(600)):
            ws.send(append_event(chunk))
        ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
        events = recv_until(ws, "input_audio_buffer.committed")
        assert "input_audio_buffer.speech_started" not in [e["type"] for e in events]
        ws.send(json.dumps({"type": "response.create"}))
        events = recv_until(ws, "response.done", timeout=10)
        audio = b"".join(base64.b64decode(e["delta"]) for e in events if e["type"] == "response.output_audio.delta")
        assert audio == speech + silence(600)


def test_bad_upgrades_get_http_errors(mock):
    with pytest.raises(InvalidStatus) as unknown:
        mock.connect("/nowhere").close()
    assert unknown.value.response.status_code == 404
    s = socket.create_connection(("127.0.0.1", mock.port), timeout=5)
    s.sendall(b"GET /pcm HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n")
    response = b""
    while b"\r\n\r\n" not in response:
        chunk = s.recv(4096)
        assert chunk, "closed without an answer"
        response += chunk
    assert response.startswith(b"HTTP/1.1 400")
    s.close()


def test_sigterm_sends_going_away_and_exits_zero(mock_factory):
    mock = mock_factory()
    with mock.connect("/pcm") as ws:
        assert mock.stop() == 0
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
        assert closed.value.rcvd.code == 1001
    close_line = [l for l in mock.lines("connections.jsonl") if l["event"] == "close"][0]
    assert close_line["closed_by"] == "server" and close_line["close_code"] == 1001


def _extra_fields(model, where):
    from pydantic import BaseModel
    found = []
    if isinstance(model, BaseModel):
        if model.model_extra:
            found.append((where, sorted(model.model_extra)))
        for name in type(model).model_fields:
            found += _extra_fields(getattr(model, name), f"{where}.{name}")
    elif isinstance(model, list):
        for i, item in enumerate(model):
            found += _extra_fields(item, f"{where}[{i}]")
    return found


def test_openai_server_events_match_the_ga_types(mock):
    """Every server event the mock sends parses as the openai package's RealtimeServerEvent, with
    no fields the types do not know (the session object's id/object/expires_at excepted: the
    real API sends them too)."""
    pytest.importorskip("openai")
    from pydantic import TypeAdapter
    from openai.types.realtime import RealtimeServerEvent
    adapter = TypeAdapter(RealtimeServerEvent)
    seen = []
    with mock.connect() as ws:
        ws.send(json.dumps({"type": "session.update", "session": {
            "type": "realtime", "audio": {"input": {"transcription": {"model": "whisper-1"}}}}}))
        for chunk in chunks(tone(300) + silence(600)):
            ws.send(append_event(chunk))
        seen += recv_until(ws, "response.done", timeout=10)
        ws.send(json.dumps({"type": "conversation.item.create", "item": {
            "type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}}))
        ws.send(json.dumps({"type": "response.create"}))
        seen += recv_until(ws, "response.output_audio.delta")
        ws.send(json.dumps({"type": "response.cancel"}))
        seen += recv_until(ws, "response.done")
        mock.post("function-call", name="f", arguments="{}")
        seen += recv_until(ws, "response.done")
        ws.send(json.dumps({"type": "input_audio_buffer.clear"}))
        ws.send(json.dumps({"type": "bogus"}))
        seen += recv_until(ws, "error")
    mock.post("max-session", seconds=0.3)
    with mock.connect() as ws:
        seen += recv_until(ws, "error")  # session_expired, with expires_at in session.created
    types = {e["type"] for e in seen}
    assert {"session.created", "session.updated", "input_audio_buffer.speech_started",
            "response.output_audio.delta", "response.function_call_arguments.done",
            "input_audio_buffer.cleared", "error",
            "conversation.item.input_audio_transcription.delta",
            "conversation.item.input_audio_transcription.completed",
            "response.output_audio_transcript.delta", "response.output_audio_transcript.done"} <= types
    assert seen[-1]["error"]["code"] == "session_expired"
    for event in seen:
        model = adapter.validate_python(event)
        extras = [x for x in _extra_fields(model, event["type"])
                  if not (x[0].endswith(".session") and set(x[1]) <= {"id", "object", "expires_at"})]
        assert not extras, extras


# ---------------------------------------------------------------- conversation continuity


def words(prefix, n):
    return " ".join(f"{prefix}w{i}" for i in range(1, n + 1))


def audio_ms(events):
    """Milliseconds of response audio in `events`."""
    pcm = b"".join(base64.b64decode(e["delta"]) for e in events if e["type"] == "response.output_audio.delta")
    return len(pcm) // 2 * 1000 // RATE


def test_openai_user_transcript_only_when_transcription_is_configured(mock):
    speech = tone(400) + silence(600)  # 20 loud frames: a 400 ms utterance, 4 words
    with mock.connect() as ws:
        created = recv_json(ws)
        assert created["session"]["audio"]["input"]["transcription"] is None  # the default, as in the GA API
        for chunk in chunks(speech):
            ws.send(append_event(chunk))
        events = recv_until(ws, "response.done", timeout=10)
        assert not [e for e in events if "input_audio_transcription" in e["type"]]

        ws.send(json.dumps({"type": "session.update", "session": {
            "type": "realtime", "audio": {"input": {"transcription": {"model": "gpt-4o-transcribe"}}}}}))
        assert recv_json(ws)["session"]["audio"]["input"]["transcription"] == {"model": "gpt-4o-transcribe"}
        for chunk in chunks(speech):
            ws.send(append_event(chunk))
        events = recv_until(ws, "response.done", timeout=10)
        types = [e["type"] for e in events]
        item_id = next(e for e in events if e["type"] == "input_audio_buffer.committed")["item_id"]
        done = types.index("conversation.item.done")
        assert events[done]["item"]["id"] == item_id
        # Right after the user item is done, before the response: a delta, then completed.
        assert types[done + 1:done + 3] == ["conversation.item.input_audio_transcription.delta",
                                            "conversation.item.input_audio_transcription.completed"]
        completed = events[done + 2]
        assert completed["item_id"] == item_id and completed["content_index"] == 0
        assert completed["transcript"] == words("u1", 4)  # the first user transcript of the process
        assert completed["usage"] == {"type": "duration", "seconds": 0.4}
        assert events[done + 1]["delta"] == completed["transcript"]
        assert types.index("conversation.item.input_audio_transcription.completed") < types.index("response.created")

        # A manual turn is transcribed on commit: 300 ms of tone + 600 ms of silence committed, 9 words.
        ws.send(json.dumps({"type": "session.update", "session": {
            "type": "realtime", "audio": {"input": {"turn_detection": None}}}}))
        recv_until(ws, "session.updated")
        for chunk in chunks(tone(300) + silence(600)):
            ws.send(append_event(chunk))
        ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
        completed = recv_until(ws, "conversation.item.input_audio_transcription.completed")[-1]
        assert completed["transcript"] == words("u2", 9)

        # transcription: null switches it off again.
        ws.send(json.dumps({"type": "session.update", "session": {
            "type": "realtime", "audio": {"input": {"transcription": None}}}}))
        assert recv_until(ws, "session.updated")[-1]["session"]["audio"]["input"]["transcription"] is None
        for chunk in chunks(tone(200)):
            ws.send(append_event(chunk))
        ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
        ws.send(json.dumps({"type": "bogus"}))  # a marker: everything before it has been answered
        events = recv_until(ws, "error")
        assert "input_audio_buffer.committed" in [e["type"] for e in events]
        assert not [e for e in events if "input_audio_transcription" in e["type"]]

    user = [t for t in mock.status()["transcripts"] if t["role"] == "user"]
    assert [(t["connection"], t["item_id"], t["text"], t["audio_ms"], t["cancelled"]) for t in user] == [
        (1, item_id, words("u1", 4), 400, False), (1, user[1]["item_id"], words("u2", 9), 900, False)]


def test_openai_assistant_transcript_follows_the_audio(mock):
    with mock.connect() as ws:
        recv_json(ws)
        for n, ms in ((1, 730), (2, 50)):
            mock.post("say", ms=ms)
            events = recv_until(ws, "response.done", timeout=10)
            types = [e["type"] for e in events]
            response = events[-1]["response"]
            item_id = response["output"][0]["id"]
            expected = words(f"r{n}", max(1, ms // 100))  # one word per 100 ms, at least one
            deltas = [e for e in events if e["type"] == "response.output_audio_transcript.delta"]
            assert deltas and all(d["response_id"] == response["id"] and d["item_id"] == item_id
                                  and d["output_index"] == 0 and d["content_index"] == 0 for d in deltas)
            assert "".join(d["delta"] for d in deltas) == expected
            done = next(e for e in events if e["type"] == "response.output_audio_transcript.done")
            assert done["transcript"] == expected and done["item_id"] == item_id
            assert types.index("response.output_audio_transcript.done") < types.index("response.output_audio.done")
            part = next(e for e in events if e["type"] == "response.content_part.done")["part"]
            assert part == {"type": "audio", "transcript": expected}
            for kind in ("response.output_item.done", "conversation.item.done"):
                item = next(e for e in events if e["type"] == kind)["item"]
                assert item["content"] == [{"type": "output_audio", "transcript": expected}]
            assert response["output"][0]["content"][0]["transcript"] == expected
            assert audio_ms(events) == ms
    assistant = [t for t in mock.status()["transcripts"] if t["role"] == "assistant"]
    assert [(t["text"], t["audio_ms"], t["cancelled"], t["done_sent"]) for t in assistant] == [
        (words("r1", 7), 730, False, True), (words("r2", 1), 50, False, True)]


@pytest.mark.parametrize("how", ["response.cancel", "barge-in"])
def test_openai_cancelled_response_transcribes_only_the_audio_sent(mock, how):
    with mock.connect() as ws:
        recv_json(ws)
        mock.post("say", ms=20000)
        events = recv_until(ws, "response.output_audio_transcript.delta")
        events += recv_until(ws, "response.output_audio_transcript.delta")
        if how == "response.cancel":
            ws.send(json.dumps({"type": "response.cancel"}))
        else:
            mock.post("speech-started")
        events += recv_until(ws, "response.done")
        assert events[-1]["response"]["status"] == "cancelled"
        sent_ms = audio_ms(events)
        assert 200 <= sent_ms < 20000
        expected = words("r1", sent_ms // 100)
        done = next(e for e in events if e["type"] == "response.output_audio_transcript.done")
        assert done["transcript"] == expected
        assert "".join(e["delta"] for e in events if e["type"] == "response.output_audio_transcript.delta") == expected
        item = next(e for e in events if e["type"] == "response.output_item.done")["item"]
        assert item["status"] == "incomplete" and item["content"][0]["transcript"] == expected
    [record] = mock.status()["transcripts"]
    assert record["text"] == expected and record["audio_ms"] == sent_ms
    assert record["cancelled"] is True and record["done_sent"] is True


def test_openai_session_cap_expires_like_the_real_api(mock_factory):
    mock = mock_factory("--max-session", "1.5")
    assert mock.status()["max_session_seconds"] == 1.5
    reason = "Your session hit the maximum duration of 1.5 seconds."
    opened, t0 = time.time(), time.monotonic()
    with mock.connect() as ws:
        created = recv_json(ws)
        expires_at = created["session"]["expires_at"]
        assert isinstance(expires_at, int) and int(opened + 1.5) - 1 <= expires_at <= int(time.time() + 1.5)
        ws.send(json.dumps({"type": "session.update", "session": {"type": "realtime"}}))
        assert recv_json(ws)["session"]["expires_at"] == expires_at
        mock.post("say", ms=20000)  # still streaming when the session expires
        events = recv_until(ws, "error", timeout=5)
        error = events[-1]
        assert error["error"] == {"type": "invalid_request_error", "code": "session_expired", "message": reason,
                                  "param": None, "event_id": None}
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
        assert closed.value.rcvd.code == 1001 and closed.value.rcvd.reason == reason
        assert 1.4 <= time.monotonic() - t0 <= 3.0
    wait_for(lambda: mock.status()["connections_open"] == 0, what="connection gone")
    status = mock.status()
    assert status["sessions_expired"] == 1 and status["last_close_code"] == 1001
    assert status["last_close_reason"] == reason and status["last_closed_by"] == "server"
    # The response just stopped: the client holds only the transcript deltas.
    assert "response.done" not in [e["type"] for e in events]
    held = "".join(e["delta"] for e in events if e["type"] == "response.output_audio_transcript.delta")
    [record] = status["transcripts"]
    assert held and record["text"] == held and record["done_sent"] is False and record["cancelled"] is True
    assert record["audio_ms"] == audio_ms(events)


def test_max_session_endpoint_applies_to_later_connections(mock):
    with mock.connect() as before, mock.connect("/pcm") as pcm:
        assert recv_json(before)["session"]["expires_at"] == 0  # no cap by default
        assert mock.post("max-session", seconds=0.5)["max_session_seconds"] == 0.5
        with mock.connect() as after:
            created = recv_json(after)
            assert created["session"]["expires_at"] >= int(time.time())
            assert recv_until(after, "error")[-1]["error"]["code"] == "session_expired"
            with pytest.raises(ConnectionClosed) as closed:
                after.recv(timeout=5)
            assert closed.value.rcvd.reason == "Your session hit the maximum duration of 0.5 seconds."
        # The connection opened before, and pcm-stream, have no cap.
        time.sleep(0.3)
        before.send(json.dumps({"type": "session.update", "session": {"type": "realtime"}}))
        assert recv_json(before)["type"] == "session.updated"
        assert pcm.ping(b"still here").wait(5)
        assert mock.post("max-session", seconds=60)["max_session_seconds"] == 60
        mock.post("reset")  # a cap is how the server behaves, not a fault: reset keeps it
        assert mock.status()["max_session_seconds"] == 60
        with mock.connect() as later:
            assert abs(recv_json(later)["session"]["expires_at"] - (time.time() + 60)) <= 2
        assert mock.post("max-session", seconds=0)["max_session_seconds"] is None
        with mock.connect() as off:
            assert recv_json(off)["session"]["expires_at"] == 0
    assert mock.status()["max_session_seconds"] is None


def test_created_items_are_recorded_with_the_audio_before_them(mock):
    seed = [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "u1w1 u1w2"}]},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "r1w1"}]}]
    with mock.connect() as ws:
        recv_json(ws)
        for item in seed:
            ws.send(json.dumps({"type": "conversation.item.create", "item": item}))
        recv_until(ws, "conversation.item.done")
        recv_until(ws, "conversation.item.done")
        ws.send(append_event(silence(200)))
        late = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "late"}]}
        ws.send(json.dumps({"type": "conversation.item.create", "previous_item_id": "item_x", "item": late}))
        recv_until(ws, "conversation.item.done")
        ws.send(json.dumps({"type": "conversation.item.create"}))  # no item: an error, still recorded
        assert recv_until(ws, "error")[-1]["error"]["param"] == "item"
        first_audio_ms = mock.status()["connections"][0]["first_audio_ms"]
    with mock.connect() as ws:
        recv_json(ws)
        ws.send(json.dumps({"type": "conversation.item.create", "item": seed[0]}))
        recv_until(ws, "conversation.item.done")

    items = mock.status()["items_created"]
    assert [(i["connection"], i["item"], i["audio_bytes_before"], i["previous_item_id"]) for i in items] == [
        (1, seed[0], 0, None), (1, seed[1], 0, None), (1, late, len(silence(200)), "item_x"), (1, None, 9600, None),
        (2, seed[0], 0, None)]
    assert all(i["ms_since_open"] >= 0 for i in items)
    assert mock.lines("conn-1.items.jsonl") == items[:4]
    assert mock.lines("conn-2.items.jsonl") == items[4:]
    assert first_audio_ms is not None and first_audio_ms >= items[1]["ms_since_open"]
    closes = [l for l in mock.lines("connections.jsonl") if l["event"] == "close"]
    assert closes[0]["first_audio_ms"] == first_audio_ms and closes[1]["first_audio_ms"] is None


def test_pcm_hello_is_recorded(mock):
    hello = {"type": "hello", "client": "tetherd", "conversation": "conv_0123abcd", "turns": 3}
    with mock.connect("/pcm") as ws:
        ws.send(json.dumps(hello))
        wait_for(lambda: mock.status()["hellos"], what="hello recorded")
    with mock.connect("/pcm") as ws:
        ws.send(json.dumps({"type": "say", "text": "x"}))  # not a hello
        ws.send(json.dumps({"type": "hello"}))
        wait_for(lambda: len(mock.status()["hellos"]) == 2, what="second hello recorded")
    assert mock.status()["hellos"] == [{"connection": 1, "hello": hello}, {"connection": 2, "hello": {"type": "hello"}}]
