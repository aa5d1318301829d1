"""The conversation outlives its upstream sessions (rule 13): what was said is carried, as text,
into every new session, before any mic audio; sessions are rotated make-before-break at a quiet
moment, so no mic frame is lost or sent twice; the brain's own cap close is a rotation it
forced, not a loss. Real tetherd (as an unprivileged user) on the paced ALSA rig, against the
mock brain and an independent Python peer; GA shapes checked with the openai package's types.
Issue: conversation continuity."""

import json
import os
import random
import time

import pytest
from pydantic import TypeAdapter

from audio import Format, Rig, check_across_connections, counter_pcm, make_tone
from conftest import API_KEY, fd_count, rss_kib, unprivileged_can_reach, wait_until
from mock import Mock
from peers import PythonPeer
from test_session import assert_no_extra_fields

from openai.types.realtime import RealtimeClientEvent

CLIENT_EVENT = TypeAdapter(RealtimeClientEvent)
RATE = 24000
BYTES_PER_MS = RATE * 2 // 1000
USER = "nobody"


# ------------------------------------------------------------------------------ the rig


def quiet(ms, seed):
    """Room noise well under the mock's speech threshold (-66 dBFS), different in every
    stretch, so that where a connection's audio sits in the captured stream is unambiguous."""
    rng = random.Random(seed)
    return bytes(b for _ in range(ms * RATE // 1000) for b in rng.randint(-30, 30).to_bytes(2, "little", signed=True))


def speech(ms, hz):
    """A loud tone standing in for a person's utterance (each its own pitch)."""
    return make_tone(ms, rate=RATE, amplitude=0.3, freq=hz)


def turns_clip(pattern):
    """[("quiet", ms) | ("speech", ms)] -> (pcm, the speech segments in order)."""
    out, spoken = b"", []
    for i, (kind, ms) in enumerate(pattern):
        assert ms % 20 == 0, "whole 20 ms frames: the mock echoes whole frames"
        if kind == "quiet":
            out += quiet(ms, seed=i)
        else:
            segment = speech(ms, 300 + 70 * len(spoken))
            spoken.append(segment)
            out += segment
    return out, spoken


@pytest.fixture
def rig_factory(tmp_path):
    rigs = []

    def make(pcm, lead_ms=0):
        r = Rig(str(tmp_path / f"rig{len(rigs)}"), capture=Format(RATE, 1, 20), playback=Format(RATE, 1, 20))
        r.start(capture_pcm=pcm, lead_ms=lead_ms)
        rigs.append(r)
        # tetherd runs as an unprivileged user: it must reach the rig's devices.
        unprivileged_can_reach(r.dir, USER)
        for name in os.listdir(r.dir):
            os.chmod(os.path.join(r.dir, name), 0o666)
        return r

    yield make
    for r in rigs:
        r.stop()


@pytest.fixture
def mock_factory(tmp_path):
    made = []

    def make(*args):
        m = Mock(tmp_path / f"mock{len(made)}", "--api-key", API_KEY, *args)
        made.append(m)
        return m

    yield make
    for m in made:
        m.close()


def conversation_daemon(daemon_factory, url, rig=None, protocol="openai-realtime", env=None, **extra):
    config = {"upstream": {"url": url, "protocol": protocol, "ping_interval": "1s"},
              "link": {"backoff": {"initial": "100ms", "max": "1s"}},
              "audio": {"capture": {"device": "tether_capture"}, "playback": {"device": "tether_playback"},
                        "echo": "none", "volume": 100}}
    for key, value in extra.items():
        config.setdefault(key, {}).update(value)
    environment = dict(rig.env) if rig else {}
    environment.update(env or {})
    return daemon_factory(config, env=environment, user=USER)


# ------------------------------------------------------------------------------ checks


def seeded(mock, connection):
    """The items created on `connection` (1-based), in order, with the audio before each."""
    return [e for e in mock.status()["items_created"] if e["connection"] == connection]


def transcripts(mock, role):
    return [t for t in mock.status()["transcripts"] if t["role"] == role]


def validate_item_create(item):
    event = {"type": "conversation.item.create", "event_id": item["id"], "item": item}
    assert_no_extra_fields(CLIENT_EVENT.validate_python(event), f"conversation.item.create {item.get('type')}")


def carried_text(item):
    return item["content"][0]["text"]


def where_in(clip, stream):
    """The offset of `stream` in the captured clip (it is unique: every stretch differs)."""
    offset = clip.find(stream)
    assert offset >= 0, f"{len(stream)} bytes upstream that were never captured (or not in order)"
    return offset


def check_concatenation(clip, streams, max_repeat_bytes=0):
    """The connections' mic audio, in order, is the captured clip: no gap between one
    connection and the next, at most `max_repeat_bytes` sent twice. Returns (bytes covered,
    repeated)."""
    streams = [s for s in streams if s]
    assert streams and where_in(clip, streams[0]) == 0, "the first connection starts at the first captured frame"
    end, repeated = len(streams[0]), 0
    for s in streams[1:]:
        if not any(s):
            end += len(s)  # silence after the clip: nothing in it says where it belongs
            continue
        start = where_in(clip, s)
        assert start <= end, f"gap of {end - start} bytes between connections"
        assert end - start <= max_repeat_bytes, f"{end - start} bytes sent twice"
        repeated += end - start
        end = start + len(s)
    return end, repeated


def wait_covered(mock, clip, max_repeat_bytes=0, timeout=10):
    """Waits until the connections' mic audio covers the whole clip; returns (covered, repeated)."""
    padded = clip + bytes(30 * 1000 * BYTES_PER_MS)  # the rig feeds silence after the clip
    return wait_until(lambda: (lambda r: r if r[0] >= len(clip) else None)(
        check_concatenation(padded, mock.connection_pcm(), max_repeat_bytes)), timeout, what="the whole clip upstream")


def states_after_live(events):
    """The session.state changes after the first session.live. The caller subscribed, then
    waited for live: when no session.live came, the release build was live before the
    subscription was (within milliseconds of starting), and every change seen came after it."""
    lives = events.all("session.live")
    after = lives[0]["_t"] if lives else float("-inf")
    return [e["data"]["to"] for e in events.all("session.state") if e["_t"] > after]


# ------------------------------------------------------------------------------ carrying


def test_an_outage_past_grace_carries_the_conversation_into_the_next_session(daemon_factory, rig_factory, mock_factory):
    clip, spoken = turns_clip([("quiet", 500), ("speech", 1500), ("quiet", 2500), ("speech", 3000), ("quiet", 30000)])
    rig = rig_factory(clip)
    mock = mock_factory()
    d = conversation_daemon(daemon_factory, mock.url("/v1/realtime?model=gpt-realtime"), rig).start()
    events = d.events(["session", "audio", "speech"])
    d.wait_state("live")
    # Two turns each way; the robot's second answer is cut 0.7 s into playback by the person.
    wait_until(lambda: len(transcripts(mock, "assistant")) >= 1 and len(transcripts(mock, "user")) >= 2, 20,
               what="two utterances heard and the first answered")
    second_reply = wait_until(lambda: next((e for e in events.all("response.audio.started")
                                            if e["data"]["item_id"] != events.all("response.audio.started")[0]["data"]["item_id"]), None),
                              10, what="the second reply playing")
    time.sleep(max(0, 0.7 - (time.monotonic() - second_reply["_t"])))
    mock.control("speech-started")
    truncation = wait_until(lambda: (mock.status()["truncations"] or [None])[-1], 5, what="the truncation")
    wait_until(lambda: len(transcripts(mock, "assistant")) >= 2, 5, what="the cut reply's transcript")

    # 10 s with the brain refusing us: past grace, a lost session.
    away = time.monotonic()
    mock.control("refuse-auth", count=-1)
    mock.control("drop")
    events.wait_for("session.lost", timeout=6, after=away)
    time.sleep(max(0, 10 - (time.monotonic() - away)))
    back = time.monotonic()
    mock.control("refuse-auth", count=0)
    live = events.wait_for("session.live", timeout=5, after=back)
    connection = mock.status()["connections_total"]
    items = wait_until(lambda: (lambda s: s if len(s) >= 4 else None)(seeded(mock, connection)), 5, what="the seed")

    users, assistants = transcripts(mock, "user"), transcripts(mock, "assistant")
    assert [i["item"]["role"] for i in items] == ["user", "assistant", "user", "assistant"], items
    assert all(i["audio_bytes_before"] == 0 for i in items), "every carried turn before any mic audio"
    assert [carried_text(i["item"]) for i in items[:3]] == [users[0]["text"], assistants[0]["text"], users[1]["text"]]
    assert "status" not in items[1]["item"]
    cut = items[3]["item"]
    assert cut["status"] == "incomplete", "the interrupted turn is marked"
    full = assistants[1]["text"].split()
    heard = carried_text(cut).split()
    assert heard == full[:len(heard)], "a prefix of what the brain said, cut at a word"
    # One word per 100 ms of reply audio: what was played, give or take a word or two.
    assert abs(len(heard) - truncation["audio_end_ms"] / 100) <= 2, (heard, truncation)
    assert len(heard) < len(full)
    for i in items:
        validate_item_create(i["item"])
    status = d.status()
    assert status["conversation"]["items"] == 4 and status["conversation"]["transcribing"] is True
    assert live["data"]["id"] == status["session"]["id"]
    stats = mock.status()
    assert stats["errors_sent"] == 0 and stats["unknown_events"] == 0, "no event of ours was refused"
    assert len(events.all("session.lost")) == 1 and not events.all("conversation.rotated")


def test_seeded_items_are_ga_shaped_for_an_independent_peer(daemon_factory):
    peer = PythonPeer(api_key=API_KEY)
    try:
        d = conversation_daemon(daemon_factory, peer.url("/v1/realtime?model=gpt-realtime")).start()
        d.wait_state("live")
        c = peer.latest()
        for event in [
            {"type": "conversation.item.added", "item": {"id": "u1", "type": "message", "role": "user", "content": []}},
            {"type": "conversation.item.input_audio_transcription.completed", "item_id": "u1", "content_index": 0,
             "transcript": "Where is my charger?"},
            {"type": "conversation.item.added", "item": {"id": "a1", "type": "message", "role": "assistant", "content": []}},
            {"type": "response.output_audio_transcript.done", "response_id": "r1", "item_id": "a1", "output_index": 0,
             "content_index": 0, "transcript": "On the desk, next to the lamp."},
            {"type": "response.function_call_arguments.done", "call_id": "call_7", "name": "point", "item_id": "f1",
             "output_index": 0, "response_id": "r2", "arguments": "{\"at\":\"desk\"}"},
        ]:
            peer.send(c, json.dumps(event))
        calls = d.events(["tool"])
        wait_until(lambda: d.status()["conversation"]["items"] >= 2, 5, what="two turns kept")
        assert d.request("tool-result", call_id="call_7", output="{\"pointed\":true}")["ok"]
        wait_until(lambda: d.status()["conversation"]["items"] == 3, 5, what="the tool turn kept")
        calls.close()
        peer.drop(c)
        wait_until(lambda: len(peer.connections) >= 2 and peer.latest().events
                   and any(e.get("type") == "conversation.item.create" for e in peer.latest().events), 10,
                   what="the next session seeded")
        d.wait_state("live")
        new = peer.latest().events
        creates = [e for e in new if e["type"] == "conversation.item.create"]
        first_audio = next((i for i, e in enumerate(new) if e["type"] == "input_audio_buffer.append"), len(new))
        assert all(new.index(e) < first_audio for e in creates), "seeded before any audio"
        assert new[0]["type"] == "session.update" and new[0]["session"]["audio"]["input"]["transcription"] == {
            "model": "gpt-4o-mini-transcribe"}
        assert [(e["item"]["type"], e["item"].get("role")) for e in creates] == [
            ("message", "user"), ("message", "assistant"), ("function_call", None), ("function_call_output", None)]
        assert creates[0]["item"]["content"] == [{"type": "input_text", "text": "Where is my charger?"}]
        assert creates[1]["item"]["content"] == [{"type": "output_text", "text": "On the desk, next to the lamp."}]
        assert creates[2]["item"]["call_id"] == creates[3]["item"]["call_id"] == "call_7"
        assert creates[3]["item"]["output"] == "{\"pointed\":true}"
        for event in new:
            raw = dict(event)
            if raw["type"] == "input_audio_buffer.append":
                raw["audio"] = "AAAA"
            assert_no_extra_fields(CLIENT_EVENT.validate_python(raw), raw["type"])
    finally:
        peer.close()


def test_a_brain_that_never_confirms_the_seed_fails_the_handshake_and_is_retried(daemon_factory):
    """Rule 1: the seed is part of the handshake and under its deadline; no audio goes out
    before it is confirmed."""
    peer = PythonPeer(api_key=API_KEY)
    try:
        d = conversation_daemon(daemon_factory, peer.url("/v1/realtime?model=gpt-realtime"),
                                upstream={"handshake_timeout": "1s"}).start()
        d.wait_state("live")
        c = peer.latest()
        peer.send(c, json.dumps({"type": "conversation.item.input_audio_transcription.completed", "item_id": "u1",
                                 "content_index": 0, "transcript": "hello"}))
        wait_until(lambda: d.status()["conversation"]["items"] == 1, 5, what="the turn kept")
        peer.confirm_items = False
        peer.drop(c)
        wait_until(lambda: len(peer.connections) >= 3, 10, what="a timed-out handshake and a retry")
        assert d.status()["state"] != "live"
        assert all(e["type"] != "input_audio_buffer.append" for conn in peer.connections[1:] for e in conn.events)
        peer.confirm_items = True
        d.wait_state("live", timeout=10)
    finally:
        peer.close()


# ------------------------------------------------------------------------------ rotation


def test_rotation_switches_at_a_quiet_moment_without_a_gap_or_a_repeat(daemon_factory, rig_factory, mock_factory):
    pattern = [("quiet", 1000)]
    for _ in range(5):
        pattern += [("speech", 1200), ("quiet", 3000)]
    pattern += [("quiet", 2000)]
    clip, spoken = turns_clip(pattern)
    rig = rig_factory(clip)
    mock = mock_factory()
    d = conversation_daemon(daemon_factory, mock.url("/v1/realtime?model=gpt-realtime"), rig,
                            conversation={"rotate_after": "8s", "rotate_deadline": "20s"}).start()
    events = d.events(["session", "audio", "speech"])
    d.wait_state("live")
    events.wait_for("conversation.rotated", timeout=25)
    wait_until(rig.feeder.clip_done.is_set, 30, what="the clip to be fed")
    wait_until(lambda: mock.status()["responses_completed"] >= 5, 10, what="five replies")
    wait_until(lambda: len(events.all("response.audio.done")) >= 5, 10, what="five replies played")
    # Every 8 s a new session: each switch at a frame boundary, nothing lost, nothing twice.
    covered, repeated = wait_covered(mock, clip)
    assert repeated == 0
    d.stop()
    rotations = events.all("conversation.rotated")
    assert len([s for s in mock.connection_pcm() if s]) == len(rotations) + 1 >= 3
    # A rotation is not a loss.
    assert not events.all("link.blip") and not events.all("session.lost")
    assert states_after_live(events) in ([], ["stopping"]), "never degraded"
    for n, rotated in enumerate(rotations, start=1):
        data = rotated["data"]
        assert data["forced"] is False and data["reason"] == "quiet", data
        assert data["from"] == f"sess_mock_{n}" and data["to"] == f"sess_mock_{n + 1}"
        # The switch came at a quiet moment: the person had stopped, the reply had played out.
        before = [e["event"] for e in events.all() if e["_t"] <= rotated["_t"] and e["event"] in
                  ("speech.started", "speech.stopped", "response.audio.started", "response.audio.done")]
        assert [e for e in before if e.startswith("speech")][-1:] in ([], ["speech.stopped"]), before
        assert [e for e in before if e.startswith("response")][-1:] in ([], ["response.audio.done"]), before
        # The next session got the turns so far, before its first mic frame.
        items = seeded(mock, n + 1)
        assert len(items) == data["carried_items"]
        assert all(i["audio_bytes_before"] == 0 for i in items)
    assert rotations[0]["data"]["carried_items"] >= 2
    # Every reply reached the speaker intact.
    played = rig.played()
    for segment in spoken:
        assert segment in played, "a reply was cut or altered"
    status = mock.status()
    assert status["errors_sent"] == 0
    closes = [json.loads(line) for line in (mock.record / "connections.jsonl").read_text().splitlines()]
    closes = [c for c in closes if c["event"] == "close"]
    assert [c["close_code"] for c in closes[:-1]] == [1000] * len(rotations), "each old session closed normally"


def test_with_no_quiet_moment_the_rotation_happens_at_the_deadline(daemon_factory, rig_factory, mock_factory):
    pairs = RATE // 2 * 16
    rig = rig_factory(counter_pcm(1, pairs))  # loud all the way: the person never stops
    mock = mock_factory("--no-echo")
    # The first handshake is held a moment so that the subscription is in place before the
    # session goes live: the deadline is timed from there.
    mock.control("slow-handshake", ms=300)
    d = conversation_daemon(daemon_factory, mock.url("/v1/realtime?model=gpt-realtime"), rig,
                            conversation={"rotate_after": "5s", "rotate_deadline": "8s"}).start()
    events = d.events(["session", "speech"])
    live = events.wait_for("session.live", timeout=10)
    mock.control("slow-handshake", ms=0)
    rotated = events.wait_for("conversation.rotated", timeout=15)
    assert rotated["data"]["forced"] is True and rotated["data"]["reason"] == "deadline"
    assert 7.5 <= rotated["_t"] - live["_t"] <= 9.0
    assert events.all("speech.started") and not events.all("speech.stopped"), "nobody stopped talking"
    wait_until(rig.feeder.clip_done.is_set, 25, what="the clip to be fed")
    first, last, repeated = wait_until(
        lambda: (lambda r: r if r[1] >= pairs else None)(check_across_connections(mock.connection_pcm(), max_repeat=0)),
        10, what="every frame upstream")
    assert (first, last, repeated) == (1, pairs, 0), "the deadline switch too is at a frame boundary"
    assert not events.all("link.blip") and not events.all("session.lost")


def test_the_brains_cap_close_is_a_rotation_it_forced(daemon_factory, rig_factory, mock_factory):
    clip, _ = turns_clip([("quiet", 400), ("speech", 1000), ("quiet", 16000)])
    rig = rig_factory(clip)
    mock = mock_factory("--max-session", "6")
    d = conversation_daemon(daemon_factory, mock.url("/v1/realtime?model=gpt-realtime"), rig,
                            conversation={"rotate_after": None}).start()
    events = d.events(["session"])
    d.wait_state("live")
    wait_until(lambda: transcripts(mock, "assistant"), 10, what="a turn each way")
    rotated = events.wait_for("conversation.rotated", timeout=10)
    assert rotated["data"]["forced"] is True and rotated["data"]["reason"] == "server_cap"
    assert rotated["data"]["from"] == "sess_mock_1" and rotated["data"]["to"] == "sess_mock_2"
    assert len(events.all("link.blip")) <= 1 and not events.all("session.lost")
    stats = mock.status()
    assert stats["sessions_expired"] >= 1
    items = seeded(mock, 2)
    assert [i["item"]["role"] for i in items] == ["user", "assistant"] and rotated["data"]["carried_items"] == 2
    assert all(i["audio_bytes_before"] == 0 for i in items)
    wait_until(rig.feeder.clip_done.is_set, 25, what="the clip to be fed")
    # At each cap the unacknowledged tail is sent again (at most two ping intervals); nothing is lost.
    wait_covered(mock, clip, max_repeat_bytes=2 * 1000 * BYTES_PER_MS)
    assert d.status()["state"] == "live"
    d.stop()
    assert len(events.all("conversation.rotated")) == len([s for s in mock.connection_pcm() if s]) - 1


def test_fifty_rotations_leak_nothing(daemon_factory, rig_factory, mock_factory):
    clip, _ = turns_clip([("quiet", 60_000)])  # a quiet room: every moment is a quiet moment
    rig = rig_factory(clip)
    mock = mock_factory("--no-echo")
    d = conversation_daemon(daemon_factory, mock.url("/v1/realtime?model=gpt-realtime"), rig,
                            env={"TETHER_TEST_FAULTS": "1"}).start()
    events = d.events(["session"])
    d.wait_state("live")
    # A turn to carry each time.
    assert d.request("say", text="hello")["ok"]
    wait_until(lambda: d.status()["conversation"]["items"] >= 1, 10, what="a turn")
    wait_until(lambda: d.request("debug-rotate")["ok"], 5, what="a rotation once the reply has played")
    events.wait_for("conversation.rotated", timeout=10)
    fds, rss = fd_count(d.pid), rss_kib(d.pid)
    for n in range(2, 51):
        assert d.request("debug-rotate")["ok"]
        wait_until(lambda: len(events.all("conversation.rotated")) >= n, 10, what=f"rotation {n}")
    assert all(e["data"]["carried_items"] >= 1 and e["data"]["reason"] == "quiet" for e in events.all("conversation.rotated"))
    status = wait_until(lambda: (lambda s: s if s["connections_open"] == 1 else None)(mock.status()), 5,
                        what="the old sessions closed")
    assert status["connections_total"] == 51
    assert fd_count(d.pid) <= fds + 2, "file descriptors leaked"
    assert rss_kib(d.pid) - rss < 8 * 1024, "memory grew"
    assert not events.all("link.blip") and not events.all("session.lost")
    covered, repeated = check_concatenation(clip, mock.connection_pcm())
    assert repeated == 0 and covered > 0, "51 sessions, every frame exactly once"


# ------------------------------------------------------------------------------ starting afresh


def test_forget_starts_a_fresh_session_that_carries_nothing(daemon_factory, mock_factory):
    mock = mock_factory()
    d = conversation_daemon(daemon_factory, mock.url("/v1/realtime?model=gpt-realtime")).start()
    events = d.events(["session"])
    d.wait_state("live")
    assert d.request("say", text="remember me")["ok"]
    wait_until(lambda: d.status()["conversation"]["items"] >= 1, 10, what="a turn")
    before = d.status()["conversation"]["id"]
    assert d.ctl("forget").returncode == 0
    reset = events.wait_for("conversation.reset", timeout=5)
    assert reset["data"]["reason"] == "forget"
    events.wait_for("session.live", timeout=5, after=reset["_t"])
    status = d.status()
    assert status["conversation"]["items"] == 0 and status["conversation"]["id"] != before
    assert seeded(mock, 2) == [], "the fresh session carries nothing"


def test_a_conversation_idle_past_max_age_starts_afresh(daemon_factory, mock_factory):
    mock = mock_factory()
    d = conversation_daemon(daemon_factory, mock.url("/v1/realtime?model=gpt-realtime"),
                            conversation={"max_age": "1s"}).start()
    events = d.events(["session"])
    d.wait_state("live")
    assert d.request("say", text="hello")["ok"]
    wait_until(lambda: d.status()["conversation"]["items"] >= 1, 10, what="a turn")
    before = d.status()["conversation"]["id"]
    time.sleep(1.5)
    assert d.request("reconnect")["ok"]
    reset = events.wait_for("conversation.reset", timeout=5)
    assert reset["data"]["reason"] == "max_age"
    d.wait_state("live")
    assert seeded(mock, 2) == []
    assert d.status()["conversation"]["id"] != before


def test_pcm_stream_names_the_same_conversation_in_every_hello(daemon_factory):
    peer = PythonPeer(api_key=API_KEY)
    try:
        d = conversation_daemon(daemon_factory, peer.url("/pcm"), protocol="pcm-stream").start()
        d.wait_state("live")
        peer.drop(peer.latest())
        wait_until(lambda: len(peer.connections) >= 2, 10, what="a reconnect")
        d.wait_state("live")
        assert d.ctl("forget").returncode == 0
        wait_until(lambda: len(peer.connections) >= 3 and peer.latest().texts, 10, what="a fresh session")
        hellos = [json.loads(c.texts[0]) for c in peer.connections[:3]]
        assert all(h["type"] == "hello" for h in hellos)
        conversation = d.status()["conversation"]["id"]
        assert hellos[0]["conversation"] == hellos[1]["conversation"] != hellos[2]["conversation"] == conversation
        assert conversation.startswith("conv_")
        assert d.status()["conversation"]["next_rotation_s"] is None, "pcm-stream rotates only when told"
    finally:
        peer.close()
