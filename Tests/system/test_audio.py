"""The audio engine end to end: the real tetherd with its ALSA devices on the paced file-plugin
rig, talking to an independent WebSocket peer. Issue: audio engine on ALSA."""

import base64
import json
import time

import pytest

from audio import (Format, Rig, channel, check_across_connections, counter_pcm, decode_counter, make_speech, make_tone,
                   read_log)
from conftest import API_KEY, wait_until
from peers import PythonPeer


@pytest.fixture
def peer():
    p = PythonPeer(api_key=API_KEY)
    yield p
    p.close()


@pytest.fixture
def rig_factory(tmp_path):
    rigs = []

    def make(capture=Format(24000, 1, 20), playback=Format(24000, 1, 20), pcm=b"", lead_ms=300):
        r = Rig(str(tmp_path / f"rig{len(rigs)}"), capture=capture, playback=playback)
        r.start(capture_pcm=pcm, lead_ms=lead_ms)
        rigs.append(r)
        return r

    yield make
    for r in rigs:
        r.stop()


def audio_daemon(daemon_factory, rig, peer, protocol="pcm-stream", **extra):
    path = "/pcm" if protocol == "pcm-stream" else "/v1/realtime"
    cap, play = rig.capture_fmt, rig.playback_fmt
    config = {
        "upstream": {"url": peer.url(path), "protocol": protocol, "ping_interval": "1s"},
        "audio": {"capture": {"device": "tether_capture", "rate": cap.rate, "channels": cap.channels,
                              "period": f"{int(cap.period_ms)}ms"},
                  "playback": {"device": "tether_playback", "rate": play.rate, "channels": play.channels,
                               "period": f"{int(play.period_ms)}ms", "prebuffer": "60ms"},
                  "echo": "none", "volume": 100},
    }
    for key, value in extra.items():
        config.setdefault(key, {}).update(value)
    return daemon_factory(config, env=rig.env)


def silent(pcm):
    return not any(pcm)


def test_a_speech_clip_reaches_the_brain_byte_identical_and_in_order(daemon_factory, rig_factory, peer):
    clip = make_speech("The quick brown fox jumps over the lazy dog.", 24000)
    clip = clip[: len(clip) // 960 * 960]  # whole periods
    rig = rig_factory(pcm=clip, lead_ms=600)
    d = audio_daemon(daemon_factory, rig, peer).start()
    d.wait_state("live")
    wait_until(rig.feeder.clip_done.is_set, 20, what="the clip to be fed")
    wait_until(lambda: clip in bytes(peer.latest().pcm), 5, what="the clip upstream")
    received = bytes(peer.latest().pcm)
    before = received[: received.index(clip)]
    assert silent(before), "only the lead silence may come before the clip"
    assert d.status()["audio"]["capture"]["state"] == "running"


def test_counting_audio_arrives_without_gaps_or_reordering(daemon_factory, rig_factory, peer):
    pcm = counter_pcm(1, 24000 * 4)  # 8 s at 24 kHz: every sample pair numbered
    rig = rig_factory(pcm=pcm, lead_ms=200)
    d = audio_daemon(daemon_factory, rig, peer).start()
    d.wait_state("live")
    wait_until(rig.feeder.clip_done.is_set, 20, what="the clip to be fed")
    wait_until(lambda: pcm in bytes(peer.latest().pcm), 5, what="all of it upstream")
    first, last, repeated = check_across_connections([bytes(c.pcm) for c in peer.connections], max_repeat=0)
    assert (first, last, repeated) == (1, 24000 * 4, 0)


def test_reply_audio_plays_intact_in_order_and_within_prebuffer_and_a_period(daemon_factory, rig_factory, peer):
    fmt = Format(48000, 2, 20)
    rig = rig_factory(capture=Format(48000, 1, 20), playback=fmt)
    d = audio_daemon(daemon_factory, rig, peer).start()
    d.wait_state("live")
    events = d.events(["audio"])
    reply = counter_pcm(1, 48000 // 2)  # 1 s of mono numbered audio
    c = peer.latest()
    sent_ns = time.monotonic_ns()
    # All of it at once (a brain sends faster than real time): had the test trickled it in
    # from a busy machine, an honest underrun would have (correctly) ramped the audio.
    peer.send(c, reply)
    peer.send(c, json.dumps({"type": "response_done"}))
    events.wait_for("response.audio.done", timeout=5)
    try:
        wait_until(lambda: reply in channel(rig.played(), 2), 3, what="the reply at the speaker")
    except AssertionError:
        from audio import decode_counter
        heard = [n for n in decode_counter(channel(rig.played(), 2)) if n is not None]
        breaks = [(a, b) for a, b in zip(heard, heard[1:]) if b != a + 1][:5]
        raise AssertionError(f"reply altered: {len(heard)} numbered pairs heard, breaks {breaks}, "
                             f"status {d.status()['audio']['playback']}") from None
    played = channel(rig.played(), 2)
    assert channel(rig.played(), 2, 1) == played, "both channels carry the mono reply"
    assert silent(played[: played.index(reply)])
    # Latency: the first read that carried reply audio, after the peer began sending. The rig
    # adds one pipe page (one period at 48 kHz stereo) on top of what tetherd holds back.
    start = played.index(reply) * 2
    first_read = next(t for t, offset, length in read_log(rig.playback_log) if offset + length > start)
    latency_ms = (first_read - sent_ns) / 1e6
    assert latency_ms <= 60 + 20 + 20 + 10, f"first audio after {latency_ms:.0f} ms"


def test_barge_in_silences_within_a_period_and_reports_what_was_played(daemon_factory, rig_factory, peer):
    fmt = Format(48000, 2, 20)
    rig = rig_factory(capture=Format(48000, 1, 20), playback=fmt)
    d = audio_daemon(daemon_factory, rig, peer).start()
    d.wait_state("live")
    events = d.events(["audio"])
    c = peer.latest()
    reply = make_tone(3000, rate=48000, amplitude=0.3)
    peer.send(c, reply)  # 3 s of speech-to-be, all at once
    events.wait_for("response.audio.started", timeout=5)
    time.sleep(0.7)
    clear_ns = time.monotonic_ns()
    peer.send(c, json.dumps({"type": "clear"}))
    wait_until(lambda: any(json.loads(t).get("type") == "played" for t in c.texts), 3, what="played report")
    played_report = next(json.loads(t) for t in c.texts if json.loads(t).get("type") == "played")
    time.sleep(0.3)
    log = read_log(rig.playback_log)
    raw = rig.played()
    # What still reached the reader after the clear: at most one period at the device plus
    # 10 ms, and the rig's own pipe page (one period at 48 kHz stereo).
    after = [(t, length) for t, offset, length in log if t > clear_ns and not silent(raw[offset:offset + length])]
    audio_after_ms = fmt.bytes_to_ms(sum(length for _, length in after))
    assert audio_after_ms <= 2 * 20 + 10, f"{audio_after_ms:.0f} ms of reply audio after the clear"
    if after:
        assert (after[-1][0] - clear_ns) / 1e6 <= 2 * 20 + 10, "the last audio left the speaker too late"
    # Everything that reached the speaker of this reply, against what tetherd said was heard.
    heard_ms = sum(1 for i in range(0, len(raw), 4) if raw[i:i + 2] != b"\0\0") / 48
    assert abs(played_report["played_ms"] - heard_ms) <= 20, (played_report, heard_ms)
    assert 500 <= played_report["played_ms"] <= 1500
    assert d.status()["audio"]["playback"]["state"] in ("idle", "running")


def test_openai_barge_in_truncates_with_the_played_milliseconds(daemon_factory, rig_factory, peer):
    rig = rig_factory()
    d = audio_daemon(daemon_factory, rig, peer, protocol="openai-realtime").start()
    d.wait_state("live")
    events = d.events(["audio", "speech"])
    c = peer.latest()
    tone = make_tone(2000, rate=24000, amplitude=0.3)
    for i in range(0, len(tone), 4800):
        peer.send(c, json.dumps({"type": "response.output_audio.delta", "response_id": "r1", "item_id": "item_1",
                                 "output_index": 0, "content_index": 0, "delta": base64.b64encode(tone[i:i + 4800]).decode()}))
    events.wait_for("response.audio.started", timeout=5)
    time.sleep(0.6)
    peer.send(c, json.dumps({"type": "input_audio_buffer.speech_started", "audio_start_ms": 100, "item_id": "u1"}))
    events.wait_for("speech.started")
    truncate = wait_until(lambda: next((e for e in c.events if e.get("type") == "conversation.item.truncate"), None), 3,
                          what="truncate")
    time.sleep(0.4)
    raw = rig.played()
    heard_ms = sum(1 for i in range(0, len(raw), 2) if raw[i:i + 2] != b"\0\0") / 24
    assert truncate["item_id"] == "item_1" and truncate["content_index"] == 0
    assert abs(truncate["audio_end_ms"] - heard_ms) <= 20 + 85, (truncate, heard_ms)  # a period + the rig's pipe page
    assert truncate["audio_end_ms"] <= 2000


def test_a_vanished_microphone_is_reported_and_comes_back_by_itself(daemon_factory, rig_factory, peer):
    rig = rig_factory(pcm=counter_pcm(1, 24000), lead_ms=0)
    d = audio_daemon(daemon_factory, rig, peer).start()
    d.wait_state("live")
    wait_until(lambda: d.status()["audio"]["capture"]["state"] == "running", 5, what="capture running")
    connection = peer.latest()
    rig.feeder.remove()  # the FIFO disappears: the device is gone
    status = wait_until(lambda: (lambda s: s if s["audio"]["capture"]["state"] != "running" else None)(d.status()), 5,
                        what="capture error in status")
    assert status["audio"]["capture"].get("error"), status["audio"]["capture"]
    assert status["state"] == "live" and peer.latest() is connection, "the session is kept"
    assert d.proc.poll() is None
    # The device returns: capture resumes by itself.
    from audio import CaptureFeeder
    rig.feeder = CaptureFeeder(rig.capture_fifo, rig.capture_fmt, counter_pcm(5_000_000, 24000)).start()
    wait_until(lambda: d.status()["audio"]["capture"]["state"] == "running", 10, what="capture back")
    wait_until(lambda: counter_pcm(5_000_000, 100) in bytes(connection.pcm), 10, what="new audio upstream")


@pytest.mark.parametrize("echo", ["gate", "none"])
def test_echo_gate_silences_what_the_microphone_hears_while_the_robot_speaks(daemon_factory, rig_factory, peer, echo):
    mic = counter_pcm(1, 24000 * 3)  # 6 s of numbered microphone audio
    rig = rig_factory(pcm=mic, lead_ms=0)
    d = audio_daemon(daemon_factory, rig, peer, audio={"echo": echo, "echo_tail": "200ms"}).start()
    d.wait_state("live")
    events = d.events(["audio"])
    time.sleep(1.0)
    c = peer.latest()
    peer.send(c, make_tone(1000, rate=24000, amplitude=0.3))
    peer.send(c, json.dumps({"type": "response_done"}))
    started = events.wait_for("response.audio.started", timeout=5)
    done = events.wait_for("response.audio.done", timeout=5)
    wait_until(rig.feeder.clip_done.is_set, 15, what="the mic clip")
    wait_until(lambda: len(c.pcm) >= len(mic), 5, what="the mic audio upstream")
    numbers = decode_counter(bytes(c.pcm))
    body = numbers[next(i for i, n in enumerate(numbers) if n is not None):]
    body = body[: len(body) - next(i for i, n in enumerate(reversed(body)) if n is not None)]
    # Every pair is the microphone's own pair at its place in the timeline, or silence.
    known = [(i, n) for i, n in enumerate(body) if n is not None]
    for (i, n), (j, m) in zip(known, known[1:]):
        assert m - n == j - i, f"pair {j} is not the microphone's ({n} at {i}, {m} at {j})"
    gated = [i for i, n in enumerate(body) if n is None]
    if echo == "none":
        assert not gated, f"{len(gated)} pairs silenced without a gate"
    else:
        # One contiguous silent stretch: the reply's length plus the tail, give or take a
        # couple of periods for the device buffer.
        assert gated, "nothing was gated while the robot spoke"
        assert gated == list(range(gated[0], gated[-1] + 1)), "the gate opened and closed more than once"
        gated_ms = len(gated) / 12
        assert 1000 + 200 - 60 <= gated_ms <= 1000 + 200 + 100, gated_ms
        speaking_ms = (done["_t"] - started["_t"]) * 1000
        assert speaking_ms >= 900


def test_mute_sends_nothing_and_says_so(daemon_factory, rig_factory, peer):
    rig = rig_factory(pcm=counter_pcm(1, 24000 * 3), lead_ms=0)
    d = audio_daemon(daemon_factory, rig, peer).start()
    d.wait_state("live")
    c = peer.latest()
    wait_until(lambda: len(c.pcm) > 9600, 5, what="audio flowing")
    assert d.ctl("mute").returncode == 0
    assert d.status()["audio"]["muted"] is True
    time.sleep(0.2)
    before = len(c.pcm)
    time.sleep(1.0)
    assert len(c.pcm) == before, "a muted microphone sends nothing"
    assert "muted" in d.notify.lines("STATUS=")[-1][1]
    assert d.ctl("unmute").returncode == 0
    wait_until(lambda: len(c.pcm) > before, 3, what="audio again")
    assert d.ctl("volume", "30").returncode == 0 and d.status()["audio"]["volume"] == 30
