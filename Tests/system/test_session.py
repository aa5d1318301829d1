"""The upstream session against an independent WebSocket peer (Python `websockets`): handshake,
GA event shapes, liveness, close-on-stop, refusals, blips and losses, bad frames, tools.
Issue: the upstream realtime session."""

import json
import signal
import time

import pytest
from pydantic import BaseModel, TypeAdapter

from conftest import API_KEY, wait_until
from peers import PythonPeer

from openai.types.realtime import RealtimeClientEvent

CLIENT_EVENT = TypeAdapter(RealtimeClientEvent)


@pytest.fixture
def peer():
    p = PythonPeer(api_key=API_KEY)
    yield p
    p.close()


def openai_config(peer, **extra):
    config = {"upstream": {"url": peer.url("/v1/realtime?model=gpt-realtime"), "protocol": "openai-realtime",
                           "ping_interval": "1s", "session": {"instructions": "Be brief.", "voice": "marin"}},
              "link": {"backoff": {"initial": "100ms", "max": "1s"}}}
    for key, value in extra.items():
        config.setdefault(key, {}).update(value)
    return config


def pcm_config(peer, **extra):
    config = {"upstream": {"url": peer.url("/pcm"), "protocol": "pcm-stream", "ping_interval": "1s"},
              "link": {"backoff": {"initial": "100ms", "max": "1s"}}}
    for key, value in extra.items():
        config.setdefault(key, {}).update(value)
    return config


def assert_no_extra_fields(model, where="event"):
    """The openai models accept unknown fields; a GA-shaped event has none."""
    if isinstance(model, BaseModel):
        assert not model.model_extra, f"{where}: unexpected fields {model.model_extra}"
        for name in type(model).model_fields:
            assert_no_extra_fields(getattr(model, name), f"{where}.{name}")
    elif isinstance(model, list):
        for i, item in enumerate(model):
            assert_no_extra_fields(item, f"{where}[{i}]")


def validate_client_events(events):
    for event in events:
        raw = dict(event)
        if raw.get("type") == "input_audio_buffer.append":
            raw["audio"] = "AAAA"
        assert_no_extra_fields(CLIENT_EVENT.validate_python(raw), raw.get("type", "?"))


def test_openai_session_goes_live_with_ga_shaped_events(daemon_factory, peer):
    d = daemon_factory(openai_config(peer)).start()
    status = d.wait_state("live")
    assert status["session"]["id"] == "sess_py_1"
    c = peer.latest()
    assert c.headers.get("Authorization") == f"Bearer {API_KEY}"
    update = c.events[0]
    assert update["type"] == "session.update"
    assert update["session"]["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
    assert update["session"]["audio"]["output"]["voice"] == "marin"
    assert update["session"]["instructions"] == "Be brief."
    assert d.request("say", text="Hello there")["ok"]
    assert d.request("interrupt")["ok"]
    wait_until(lambda: any(e["type"] == "response.cancel" for e in c.events), 5, what="response.cancel")
    validate_client_events(c.events)
    status = d.status()
    assert status["state"] == "live" and status["session"]["id"] == "sess_py_1"
    assert status["session"]["connected_at"]


def test_pcm_stream_goes_live_on_upgrade_and_says_hello(daemon_factory, peer):
    d = daemon_factory(pcm_config(peer)).start()
    events = d.events(["session"])
    d.wait_state("live")
    hello = json.loads(peer.latest().texts[0])
    conversation = hello.pop("conversation")
    assert hello == {"type": "hello", "format": "s16le", "rate": 24000, "channels": 1, "client": "tetherd/0.1.0"}
    assert conversation == d.status()["conversation"]["id"] and conversation.startswith("conv_")
    assert d.request("say", text="hi")["ok"]
    wait_until(lambda: any(json.loads(t).get("type") == "say" for t in peer.latest().texts), 5, what="say")
    tool = d.request("tool-result", call_id="x", output="{}")
    assert not tool["ok"] and tool["error"]["code"] == "unavailable"


def test_a_stalled_server_is_declared_dead_within_two_pings_and_a_second(daemon_factory, peer):
    d = daemon_factory(pcm_config(peer)).start()
    events = d.events(["session"])
    d.wait_state("live")
    first = peer.latest()
    peer.stall(first)
    stalled_at = time.monotonic()
    degraded = events.wait_for("session.state", lambda e: e["data"]["to"] == "degraded", timeout=6, after=stalled_at)
    detected = degraded["_t"] - stalled_at
    assert detected <= 2 * 1.0 + 1.0, f"dead after {detected:.2f}s"
    assert "ping" in degraded["data"]["reason"]
    # It comes back on a new connection (the stalled one stays stalled).
    events.wait_for("session.live", timeout=10, after=degraded["_t"])
    assert peer.latest() is not first


def test_sigterm_puts_a_close_frame_on_the_wire_within_50ms(daemon_factory, peer):
    d = daemon_factory(openai_config(peer)).start()
    d.wait_state("live")
    c = peer.latest()
    sent = time.monotonic()
    d.proc.send_signal(signal.SIGTERM)
    wait_until(lambda: c.close_frame_at, 2, what="close frame")
    assert c.close_code == 1001
    assert c.close_frame_at - sent <= 0.050, f"close frame after {(c.close_frame_at - sent) * 1000:.1f} ms"
    assert d.proc.wait(timeout=3) == 0


def test_pause_closes_at_once_and_resume_starts_a_fresh_session(daemon_factory, peer):
    d = daemon_factory(openai_config(peer)).start()
    events = d.events(["session"])
    d.wait_state("live")
    c = peer.latest()
    asked = time.monotonic()
    assert d.request("pause")["ok"]
    wait_until(lambda: c.close_frame_at, 2, what="close frame")
    assert c.close_code == 1000
    assert c.close_frame_at - asked <= 0.050
    assert d.status()["state"] == "paused"
    assert not events.all("session.lost")
    resumed = time.monotonic()
    assert d.request("resume")["ok"]
    live = events.wait_for("session.live", timeout=10, after=resumed)
    assert live["data"]["id"] == "sess_py_2"


def test_reconnect_command_replaces_the_session(daemon_factory, peer):
    d = daemon_factory(pcm_config(peer)).start()
    events = d.events(["session"])
    first = d.wait_state("live")["session"]
    asked = time.monotonic()
    assert d.request("reconnect")["ok"]
    second = events.wait_for("session.live", timeout=10, after=asked)
    assert second["data"]["generation"] > first["generation"]
    assert peer.connections[0].close_code == 1000
    assert not events.all("session.lost") and not events.all("link.blip")


def test_a_dropped_connection_that_comes_back_at_once_is_a_blip(daemon_factory, peer):
    d = daemon_factory(pcm_config(peer)).start()
    events = d.events(["session"])
    d.wait_state("live")
    dropped = time.monotonic()
    peer.drop(peer.latest())
    blip = events.wait_for("link.blip", timeout=5, after=dropped)
    assert blip["data"]["duration_ms"] < 1000
    events.wait_for("session.live", timeout=5, after=dropped)
    time.sleep(1.2)
    assert not events.all("session.lost")


def test_an_outage_past_failed_grace_is_one_loss_then_live_again(daemon_factory, peer):
    d = daemon_factory(pcm_config(peer)).start()
    events = d.events(["session"])
    d.wait_state("live")
    peer.refuse_status = 503
    dropped = time.monotonic()
    peer.drop(peer.latest())
    lost = events.wait_for("session.lost", timeout=5, after=dropped)
    assert 0.9 <= lost["_t"] - dropped <= 2.0
    assert "503" in d.status()["session"]["last_error"] or "closed" in d.status()["session"]["last_error"]
    time.sleep(1.0)
    peer.refuse_status = None
    events.wait_for("session.live", timeout=5, after=lost["_t"])
    assert len(events.all("session.lost")) == 1
    assert not [b for b in events.all("link.blip") if b["_t"] > dropped]


def test_auth_refusal_is_paced_and_explained(daemon_factory, peer):
    d = daemon_factory(pcm_config(peer, link={"backoff": {"initial": "100ms", "max": "1500ms", "jitter": 0}}))
    d.config["upstream"]["api_key_file"] = str(d.tmp / "wrong-key")
    (d.tmp / "wrong-key").write_text("sk-wrong\n")
    (d.tmp / "wrong-key").chmod(0o600)
    d.write_config()
    d.start()
    time.sleep(4.0)
    attempts = len(peer.connections) + 0
    status = d.status()
    assert "401" in status["session"]["last_error"]
    assert status["state"] == "reconnecting"
    # Without pacing 100ms backoff would make dozens of attempts; refusals wait backoff.max.
    generations = status["session"]["generation"]
    assert generations <= 4, f"{generations} attempts in 4 s"
    assert attempts == 0  # refused before the upgrade: no WebSocket connection was accepted


def test_policy_close_is_paced_like_a_refusal(daemon_factory, peer):
    d = daemon_factory(pcm_config(peer, link={"backoff": {"initial": "100ms", "max": "2s", "jitter": 0}})).start()
    events = d.events(["session"])
    d.wait_state("live")
    closed = time.monotonic()
    peer.close_with(peer.latest(), 4001, "not today")
    second = events.wait_for("session.live", timeout=6, after=closed)
    assert second["_t"] - closed >= 1.9, "a policy close must not be retried at once"
    assert "4001" in d.status()["session"]["last_error"] or d.status()["state"] == "live"


def test_malformed_input_is_counted_and_survived(daemon_factory, peer):
    d = daemon_factory(openai_config(peer)).start()
    events = d.events(["session"])
    d.wait_state("live")
    c = peer.latest()
    peer.send(c, "{not json")
    peer.send(c, json.dumps({"type": "brand.new.event"}))
    peer.send(c, json.dumps({"type": "response.output_audio.delta", "delta": "@@@", "item_id": "i"}))
    peer.send(c, b"\x00\x01")  # binary on an openai session
    counters = wait_until(lambda: (lambda s: s if s["malformed_messages"] >= 3 and s["unknown_events"] >= 1 else None)(
        d.status()["session"]["counters"]), 5, what="counters")
    assert counters["protocol_violations"] == 0
    assert d.status()["state"] == "live" and peer.latest() is c
    # Invalid UTF-8 in a text frame is a protocol violation: closed with 1007, then a new session.
    broken = time.monotonic()
    peer.write_raw(c, bytes([0x81, 0x02, 0xC3, 0x28]))  # a text frame holding invalid UTF-8
    events.wait_for("session.live", timeout=6, after=broken)
    assert c.close_code == 1007
    assert d.status()["session"]["counters"]["protocol_violations"] == 1


def test_an_oversized_message_closes_with_1009(daemon_factory, peer):
    d = daemon_factory(pcm_config(peer, upstream={"max_frame_bytes": 65536})).start()
    events = d.events(["session"])
    d.wait_state("live")
    c = peer.latest()
    sent = time.monotonic()
    peer.send(c, b"\x00" * 100_000)
    events.wait_for("session.live", timeout=6, after=sent)
    assert c.close_code == 1009
    assert d.proc.poll() is None


def test_tool_calls_reach_robot_processes_and_are_answered(daemon_factory, peer):
    d = daemon_factory(openai_config(peer, upstream={"tool_timeout": "1s"})).start()
    events = d.events(["session", "tool", "error"])
    d.wait_state("live")
    c = peer.latest()
    peer.send(c, json.dumps({"type": "response.function_call_arguments.done", "event_id": "e9", "response_id": "r1",
                             "item_id": "fc1", "output_index": 0, "call_id": "call_1", "name": "wave",
                             "arguments": "{\"arm\":\"left\"}"}))
    call = events.wait_for("tool.call")
    assert call["data"] == {"call_id": "call_1", "name": "wave", "arguments": "{\"arm\":\"left\"}"}
    answer = d.ctl("tool-result", "call_1", '{"waved":true}')
    assert answer.returncode == 0, answer.stderr
    wait_until(lambda: [e for e in c.events if e.get("item", {}).get("type") == "function_call_output"], 5, what="output")
    output = next(e for e in c.events if e.get("item", {}).get("type") == "function_call_output")
    assert output["item"] == {"type": "function_call_output", "call_id": "call_1", "output": "{\"waved\":true}"}
    assert c.events[c.events.index(output) + 1]["type"] == "response.create"
    # A second answer to the same call is refused.
    assert d.ctl("tool-result", "call_1", "{}").returncode == 1
    # A call nobody answers gets an error output after tool_timeout.
    asked = time.monotonic()
    peer.send(c, json.dumps({"type": "response.function_call_arguments.done", "call_id": "call_2", "name": "dance", "arguments": "{}"}))
    timeout = events.wait_for("error", lambda e: e["data"]["code"] == "tool_timeout", timeout=4)
    assert 0.9 <= timeout["_t"] - asked <= 2.0
    late = wait_until(lambda: [e for e in c.events if e.get("item", {}).get("call_id") == "call_2"], 3, what="error output")
    assert "error" in json.loads(late[0]["item"]["output"])
    validate_client_events(c.events)


def test_reload_with_a_new_upstream_closes_the_old_session_at_once(daemon_factory, peer):
    other = PythonPeer(api_key=API_KEY)
    try:
        d = daemon_factory(pcm_config(peer)).start()
        events = d.events(["session"])
        d.wait_state("live")
        old = peer.latest()
        d.config["upstream"]["url"] = other.url("/pcm")
        d.write_config()
        asked = time.monotonic()
        assert d.request("reload")["ok"]
        wait_until(lambda: old.close_frame_at, 2, what="close frame")
        assert old.close_code == 1000 and old.close_frame_at - asked <= 0.050
        events.wait_for("session.live", timeout=10, after=asked)
        assert other.latest() is not None
        # A reload that changes nothing upstream keeps the session.
        before = len(other.connections)
        assert d.request("reload")["ok"]
        time.sleep(0.5)
        assert len(other.connections) == before
    finally:
        other.close()


def test_the_mock_brain_too_stalled_is_dead_and_sigterm_closes_at_once(daemon_factory, tmp_path):
    """The same liveness and close-on-stop checks against tether-mock-upstream."""
    from mock import Mock
    mock = Mock(tmp_path, "--no-echo", "--api-key", API_KEY)
    try:
        d = daemon_factory({"upstream": {"url": mock.url("/v1/realtime?model=t"), "protocol": "openai-realtime",
                                         "ping_interval": "1s"},
                            "link": {"backoff": {"initial": "100ms", "max": "1s"}}}).start()
        events = d.events(["session"])
        d.wait_state("live")
        stalled = time.monotonic()
        mock.control("stall", seconds=0)
        degraded = events.wait_for("session.state", lambda e: e["data"]["to"] == "degraded", timeout=6, after=stalled)
        assert degraded["_t"] - stalled <= 2 * 1.0 + 1.0
        mock.control("unstall")
        events.wait_for("session.live", timeout=6, after=degraded["_t"])
        stop_wall = time.time()
        d.proc.send_signal(signal.SIGTERM)
        assert d.proc.wait(timeout=3) == 0
        records = [json.loads(l) for l in (mock.record / "connections.jsonl").read_text().splitlines()]
        last_close = [r for r in records if r.get("event") == "close"][-1]
        assert last_close["close_code"] == 1001 and last_close["closed_by"] == "client", last_close
        import datetime
        closed_at = datetime.datetime.fromisoformat(last_close["ts"].replace("Z", "+00:00")).timestamp()
        assert closed_at - stop_wall <= 0.050 + 0.010, f"closed {1000 * (closed_at - stop_wall):.0f} ms after SIGTERM"
    finally:
        mock.close()
