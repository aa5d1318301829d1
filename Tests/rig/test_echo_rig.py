"""Self-test of the echo rig (echo_rig.py): its pieces offline, then the whole rig driven by
ALSA's own aplay and arecord, measured from the rig's I/O logs (when the reader consumed the
played audio, when the feeder wrote each capture period) and from the recordings.

    .venv/bin/python -m pytest -q Tests/rig/test_echo_rig.py     (-s prints the figures)

Needs numpy, and alsa-utils for the ALSA tests (apt-get install alsa-utils espeak-ng sox).
"""

import math
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import alsa_rig  # noqa: E402
import echo_rig  # noqa: E402
from alsa_rig import Format, read_log  # noqa: E402
from echo_rig import (Analysis, BlockConvolver, EchoRig, NoiseSource, Resampler, channel0, energy_dbfs,  # noqa: E402
                      find_offset, ratio_db, room_impulse_response, saturate, to_mono)

HAVE_ALSA = all(shutil.which(t) for t in ("arecord", "aplay"))
needs_alsa = pytest.mark.skipif(not HAVE_ALSA, reason="alsa-utils not installed")
MONO24 = Format(24000, 1, 20)


# ---------------------------------------------------------------------------------------------
# Offline: the pieces

def test_room_impulse_response_is_unit_energy_seeded_and_decays_in_rt60():
    rate = 24000
    h = room_impulse_response(rate, 300, drr_db=6, seed=7)
    assert abs(np.sum(h ** 2) - 1) < 1e-12
    assert np.array_equal(h, room_impulse_response(rate, 300, drr_db=6, seed=7)), "seeded"
    assert not np.array_equal(h, room_impulse_response(rate, 300, drr_db=6, seed=8))
    start = int(rate * 0.002)
    assert np.all(h[1:start] == 0), "the tail starts after the pre-delay"
    tail = h[start:]
    assert 10 * math.log10(h[0] ** 2 / np.sum(tail ** 2)) == pytest.approx(6.0, abs=1e-9)
    # Schroeder's backward integration of the tail, fitted from -5 to -25 dB (T20 x 3).
    edc = 10 * np.log10(np.cumsum(tail[::-1] ** 2)[::-1] / np.sum(tail ** 2))
    i5, i25 = np.argmax(edc <= -5), np.argmax(edc <= -25)
    rt60_ms = 3 * (i25 - i5) / rate * 1000
    assert rt60_ms == pytest.approx(300, rel=0.1)
    assert np.array_equal(room_impulse_response(rate, 0), [1.0]), "rt60 0: no room, one tap"


def test_block_convolution_streams_the_exact_convolution():
    rng = np.random.default_rng(1)
    h = room_impulse_response(24000, 400, seed=1)
    x = rng.standard_normal(24000)
    c = BlockConvolver(h)
    sizes = [480, 256, 480, 480, 1000, 7]
    out, i, k = [], 0, 0
    while i < len(x):
        n = sizes[k % len(sizes)]
        out.append(c.process(x[i:i + n]))
        i, k = i + n, k + 1
    assert np.max(np.abs(np.concatenate(out) - np.convolve(x, h)[:len(x)])) < 1e-9


@pytest.mark.parametrize("rates", [(48000, 24000), (24000, 48000), (16000, 24000), (24000, 24000)])
def test_resampler_keeps_a_tone_and_its_stated_delay(rates):
    src, dst = rates
    r = Resampler(src, dst)
    t = np.arange(src) / src
    x = 10000 * np.sin(2 * np.pi * 1000 * t)
    y = np.concatenate([r.process(x[i:i + src // 50]) for i in range(0, src, src // 50)])
    assert len(y) == dst
    j = np.arange(len(y))
    ideal = 10000 * np.sin(2 * np.pi * 1000 * (j - r.delay) / dst)
    inner = slice(200, len(y) - 200)
    assert ratio_db(y[inner] - ideal[inner], ideal[inner]) < -60


def test_resampler_refuses_ratios_it_cannot_do():
    with pytest.raises(ValueError):
        Resampler(44100, 48000)


@pytest.mark.parametrize("colour", ["white", "pink"])
def test_noise_has_its_level_its_colour_and_its_seed(colour):
    rate = 24000
    a = NoiseSource(rate, -50, colour, seed=3)
    x = np.concatenate([a.take(480) for _ in range(500)])  # 10 s
    assert energy_dbfs(x) == pytest.approx(-50, abs=0.3)
    b = NoiseSource(rate, -50, colour, seed=3)
    assert np.array_equal(x[:9000], np.concatenate([b.take(n) for n in (1000, 7, 5000, 2993)])), "same seed, any sizes"
    assert not np.array_equal(x[:4800], NoiseSource(rate, -50, colour, seed=4).take(4800))
    spectrum = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(len(x), 1 / rate)
    low = 10 * math.log10(np.mean(spectrum[(f >= 200) & (f < 400)]))
    high = 10 * math.log10(np.mean(spectrum[(f >= 6400) & (f < 8000)]))
    slope = (low - high) / 5  # dB per octave, over 5 octaves
    assert slope == pytest.approx(3.0 if colour == "pink" else 0.0, abs=0.5)


def test_saturate_clips_and_counts():
    out, clipped = saturate(np.array([0.4, -0.6, 40000.0, -40000.0, 32767.4, -32768.4]))
    assert out.tolist() == [0, -1, 32767, -32768, 32767, -32768]
    assert clipped == 2


def test_find_offset_exact_then_by_correlation():
    rng = np.random.default_rng(2)
    mix = np.rint(rng.standard_normal(48000) * 1000)
    uplink = mix[12345:30000].copy()
    assert find_offset(uplink, mix) == ("exact", 12345)
    processed = uplink * 0.5 + rng.standard_normal(len(uplink)) * 100  # not byte-identical
    assert find_offset(processed, mix) == ("correlation", 12345)


def test_a_reply_counts_as_played_from_its_first_sound_not_from_the_silence_before_it(tmp_path):
    # #15: with `echo: cancel` the speaker streams silence between replies. Waiting for `len(reply)`
    # bytes from before the reply counted that silence and returned while the reply's last word
    # was still playing.
    rig = EchoRig(str(tmp_path / "rig"), capture=MONO24, playback=MONO24, rt60_ms=0)
    rig.path = echo_rig.EchoPath(MONO24, MONO24, 40, 0, rig.rir)
    period = MONO24.period_bytes
    reply = bytes(100) + np.full(3 * 480 - 50, 1000, dtype="<i2").tobytes()  # 50 silent frames first
    played = bytes(5 * period) + reply + bytes(5 * period)  # what the device streams
    since = rig.path.played_bytes
    counted, found = [], []
    for i in range(0, len(played), period):
        rig.path.played(0, played[i:i + period])
        counted.append(rig.wait_played(since + len(reply), timeout=0))
        found.append(rig.wait_reply_played(reply, since, timeout=0))
    # The reply's last sample is in the 8th period the speaker consumed; counting bytes said the
    # 3rd, all silence.
    assert found.index(True) == 7 and all(found[7:])
    assert counted.index(True) == 2
    with pytest.raises(ValueError):
        rig.wait_reply_played(bytes(960), since, timeout=0)


def test_analysis_figures_on_known_signals():
    rng = np.random.default_rng(4)
    rate, n = 24000, 48000
    near = np.zeros(n)
    near[:24000] = rng.standard_normal(24000) * 3000  # 0..1 s: talker only
    echo = np.zeros(n)
    echo[24000:] = rng.standard_normal(24000) * 3000  # 1..2 s: echo only
    rec = {"mix": near + echo, "near": near, "echo": echo}
    a = Analysis(near + echo, rec, rate, offset=0)
    assert a.erle_db(1.0, 2.0) == pytest.approx(0.0)  # passed through: nothing cancelled
    cancelled = near + 0.1 * echo  # a canceller that takes 20 dB off the echo
    a = Analysis(cancelled, rec, rate, offset=0)
    assert a.erle_db(1.0, 2.0) == pytest.approx(20.0)
    assert a.near_loss_db(0.0, 1.0) == pytest.approx(0.0)
    a = Analysis(0.5 * near + 0.1 * echo, rec, rate, offset=0)
    assert a.near_loss_db(0.0, 1.0) == pytest.approx(6.02, abs=0.01)
    assert a.near_loss_db(0.0, 1.0, projected=True) == pytest.approx(6.02, abs=0.01)
    series = a.erle_series(window_ms=100)
    assert len(series) == 10 and all(s >= 1.0 for s, _ in series)
    assert all(v == pytest.approx(20.0) for _, v in series)
    # Offsets: an uplink that starts 0.5 s into the capture; windows are capture times.
    a = Analysis(cancelled[12000:], rec, rate)
    assert (a.method, a.offset) == ("correlation", 12000)
    assert a.erle_db(1.0, 2.0) == pytest.approx(20.0)
    with pytest.raises(ValueError):
        a.window(0.0, 0.4)


# ---------------------------------------------------------------------------------------------
# With ALSA: aplay plays into the rig's speaker, arecord records its microphone

def alsa_cmd(tool, device, fmt, *args):
    return [tool, "-q", "-D", device, "-t", "raw", "-f", "S16_LE", "-r", str(fmt.rate), "-c", str(fmt.channels),
            "--period-size=%d" % fmt.period_frames, "--buffer-size=%d" % (4 * fmt.period_frames)] + list(args)


@pytest.fixture
def make_rig(tmp_path):
    made = []

    def make(**kwargs):
        rig = EchoRig(str(tmp_path / ("rig%d" % len(made))), **kwargs)
        made.append(rig)
        return rig

    yield make
    for rig in made:
        rig.stop()


def play_and_record(rig, clip, near_pcm=b"", lead_ms=0, during=None):
    """Start the rig, arecord on its capture device, then (once arecord is being fed) aplay
    `clip` on its playback device; `during(rig)` runs while aplay plays. Returns arecord's bytes
    once the echo of the clip's end, its room tail and a period more have been written, and the
    rig has been stopped."""
    rig.start(near_pcm, lead_ms)
    env = dict(os.environ, **rig.env)
    rec_path = os.path.join(rig.dir, "arecord.raw")
    src = os.path.join(rig.dir, "clip.raw")
    with open(src, "wb") as f:
        f.write(clip)
    rec = subprocess.Popen(alsa_cmd("arecord", "tether_capture", rig.capture_fmt, rec_path), env=env,
                           stderr=subprocess.PIPE)
    try:
        # More than a pipe page fed: arecord is reading, the feeder is no longer held up.
        assert rig.wait_fed(0.5, timeout=5), "arecord never read the capture device"
        play = subprocess.Popen(alsa_cmd("aplay", "tether_playback", rig.playback_fmt, src), env=env,
                                stderr=subprocess.PIPE)
        if during:
            during(rig)
        seconds = len(clip) / rig.playback_fmt.bytes_per_second
        assert play.wait(timeout=seconds + 10) == 0, play.stderr.read()
        assert rig.wait_played(len(clip), timeout=5), "the speaker did not play the whole clip"
        assert rig.wait_fed(rig.now_s() + rig.echo_span_s() + 0.1, timeout=5)
        assert rec.poll() is None, rec.stderr.read()
    finally:
        rec.terminate()
        rec.wait(timeout=5)
        rig.stop()  # what follows reads the recordings whole
    with open(rec_path, "rb") as f:
        return f.read()


def steady_base_ns(times_and_positions):
    """A clock from (time_ns, position_s) pairs logged by a paced thread: the earliest of
    time - position. The reader and the feeder sleep until each chunk's time and log after it,
    so every entry is that time plus its own scheduling delay, never less."""
    return min(t - p * 1e9 for t, p in times_and_positions)


def emitted_ns(rig, stream_s, around=10):
    """When the speaker emitted the played stream at `stream_s` (seconds into playback.raw), from
    the reader's log around it."""
    bps = rig.playback_fmt.bytes_per_second
    reads = read_log(rig.playback_log)
    i = next(k for k, (_, off, n) in enumerate(reads) if off + n > stream_s * bps)
    near = reads[max(0, i - around):i + around + 1]
    return steady_base_ns([(t, off / bps) for t, off, _ in near]) + stream_s * 1e9


def heard_frame(rig, t_ns, around=10):
    """The capture frame heard at `t_ns`, from the feeder's log: a period is written when its
    last frame has been heard."""
    fmt = rig.capture_fmt
    writes = read_log(rig.capture_log)
    rough = min(range(len(writes)), key=lambda k: abs(writes[k][0] - t_ns))
    near = writes[max(0, rough - around):rough + around + 1]
    base = steady_base_ns([(t, (off + n) / fmt.bytes_per_second) for t, off, n in near])
    return (t_ns - base) / 1e9 * fmt.rate


def played_at_capture_rate(rig):
    """playback.raw as mono at the capture rate, index j = stream time j / capture rate."""
    r = Resampler(rig.playback_fmt.rate, rig.capture_fmt.rate)
    x = r.process(to_mono(rig.played(), rig.playback_fmt.channels))
    return np.concatenate((x[r.delay:], np.zeros(r.delay)))


def measured_delays(rig, starts_s, length_s, search_ms=400):
    """For sound the speaker played at `starts_s` (stream seconds), [(capture frame heard at its
    emission, measured acoustic delay ms, capture frame its echo starts on)]: where the played
    stretch best matches the recorded echo, searched from the frame heard at emission on."""
    rate = rig.capture_fmt.rate
    played = played_at_capture_rate(rig)
    echo = rig.recordings()["echo"]
    n = int(length_s * rate)
    out = []
    for s in starts_s:
        t = emitted_ns(rig, s)
        n0 = heard_frame(rig, t)
        tpl = played[int(round(s * rate)):int(round(s * rate)) + n]
        lo = int(math.floor(n0))
        seg = echo[lo:lo + n + int(search_ms * rate / 1000)]
        lag = int(np.argmax(np.correlate(seg, tpl, mode="valid")))
        out.append((n0, (lo + lag - n0) / rate * 1000, lo + lag))
    return out


def chirp(ms, rate, f0=200.0, f1=None, amplitude=0.5, fade_ms=2.0):
    """A linear sweep (a broadband 'tone burst'), faded in and out, as mono float."""
    n = int(rate * ms / 1000)
    f1 = f1 or rate * 0.45
    t = np.arange(n) / rate
    x = np.sin(2 * np.pi * (f0 * t + (f1 - f0) * t * t / (2 * t[-1])))
    fade = min(n // 2, int(rate * fade_ms / 1000))
    ramp = np.sin(np.linspace(0, np.pi / 2, fade)) ** 2
    x[:fade] *= ramp
    x[n - fade:] *= ramp[::-1]
    return x * amplitude * 32767


def pcm(x, channels=1):
    a = np.rint(np.asarray(x)).astype("<i2")
    return (np.repeat(a, channels) if channels > 1 else a).tobytes()


def expected_echo(rig):
    """The echo rebuilt offline from playback.raw and the placements in echo.log: gain * RIR over
    the played stream, piece by piece where the mixer put it."""
    rate = rig.capture_fmt.rate
    x = Resampler(rig.playback_fmt.rate, rate).process(to_mono(rig.played(), rig.playback_fmt.channels))
    pieces = [tuple(int(v) for v in line.split()) for line in open(rig.echo_log)]
    h = rig.rir * echo_rig.db_to_gain(rig.gain_db)
    total = len(rig.recordings()["echo"])
    out = np.zeros(total + len(h) + len(x))
    pos = 0
    for _, lands, _, n in pieces:
        y = np.convolve(x[pos:pos + n], h)
        out[lands:lands + len(y)] += y
        pos += n
    return out[:total]


def assert_rig_consistent(rig, rec):
    """What every run must show: arecord got a byte-exact stretch of capture_mix; mix is near +
    echo saturated; the echo is the offline convolution; nothing was late or lost."""
    with open(rig.feeder.paths["mix"], "rb") as f:
        mix_bytes = f.read()
    fb = rig.capture_fmt.frame_bytes
    at = mix_bytes.find(rec[:fb * 2400])
    assert at >= 0 and at % fb == 0, "arecord's capture is not in capture_mix.raw"
    assert mix_bytes[at:at + len(rec)] == rec, "arecord's capture differs from capture_mix.raw"
    r = rig.recordings()
    assert np.array_equal(r["mix"], np.clip(r["near"] + r["echo"], -32768, 32767)), "mix != near + echo"
    expected = expected_echo(rig)
    assert np.max(np.abs(r["echo"] - np.clip(expected, -32768, 32767))) <= 0.5 + 1e-6, \
        "the echo is not gain * RIR over what was played"
    s = rig.stats()
    assert s["echo_late_frames"] == 0 and s["echo_overflow_frames"] == 0, s
    return r


@needs_alsa
@pytest.mark.parametrize("delay", [30, 250])
def test_a_tone_burst_comes_back_at_the_delay_and_the_gain(make_rig, delay):
    rig = make_rig(capture=MONO24, playback=MONO24, delay_ms=delay, gain_db=-6, rt60_ms=0)
    tone = alsa_rig.make_tone(300, 24000, 1000, 0.5)
    rec = play_and_record(rig, bytes(24000) + tone + bytes(24000))
    r = assert_rig_consistent(rig, rec)
    played = to_mono(rig.played(), 1)
    start = rig.played().index(tone) // 2
    [(_, delay_ms, lands)] = measured_delays(rig, [start / 24000], 0.3)
    # Without a room, the echo is the tone times the gain, sample for sample.
    echo = r["echo"][lands:lands + len(tone) // 2]
    assert np.max(np.abs(echo - np.rint(played[start:start + len(echo)] * 10 ** (-6 / 20)))) <= 1
    gain_db = ratio_db(r["echo"], played)
    # When the speaker emitted the onset (reader's read), when the capture period carrying its
    # echo went to the device (feeder's write): the delay plus where in its period it fell.
    t_read = next(t for t, off, n in read_log(rig.playback_log) if off + n > start * 2)
    t_write = next(t for t, off, n in read_log(rig.capture_log) if off + n > lands * 2)
    arrival_ms = (t_write - t_read) / 1e6
    print("\ntone: delay %.2f ms (set %d), gain %.3f dB (set -6), arrival at the device %.1f ms"
          % (delay_ms, delay, gain_db, arrival_ms))
    assert delay_ms == pytest.approx(delay, abs=2)
    assert gain_db == pytest.approx(-6, abs=0.05)
    assert delay - 20 - 2 <= arrival_ms <= delay + 2 * 20, "within a period or two of the delay"
    assert energy_dbfs(r["near"]) == -math.inf, "no near end configured"


@needs_alsa
def test_a_room_keeps_the_broadband_gain_and_is_the_convolution(make_rig):
    rig = make_rig(capture=MONO24, playback=MONO24, delay_ms=120, gain_db=-10, rt60_ms=300, seed=5)
    burst = chirp(500, 24000)
    rec = play_and_record(rig, bytes(24000) + pcm(burst) + bytes(48000))
    assert_rig_consistent(rig, rec)
    played = to_mono(rig.played(), 1)
    start = rig.played().index(pcm(burst)) // 2
    [(_, delay_ms, _)] = measured_delays(rig, [start / 24000], 0.5)
    gain_db = ratio_db(rig.recordings()["echo"], played)
    print("\nroom: delay %.2f ms (set 120), broadband gain %.2f dB (set -10)" % (delay_ms, gain_db))
    assert delay_ms == pytest.approx(120, abs=2), "the direct path comes at the delay"
    assert gain_db == pytest.approx(-10, abs=1.0)


@needs_alsa
def test_the_delay_can_jump_while_the_speaker_plays(make_rig):
    rig = make_rig(capture=MONO24, playback=MONO24, delay_ms=40, gain_db=-6, rt60_ms=150, seed=2)
    pip = pcm(chirp(60, 24000, amplitude=0.4))
    gap = bytes(24000 * 2 * 140 // 1000)
    clip = bytes(4800) + (pip + gap) * 20  # 4 s: a pip every 200 ms
    changed = {}

    def jump(rig):
        # Mid-reply: once the speaker has played half of it, the echo path grows by 50 ms.
        assert rig.wait_played(len(clip) // 2, timeout=10)
        changed["at_s"] = rig.set_delay_ms(90)

    rec = play_and_record(rig, clip, during=jump)
    assert_rig_consistent(rig, rec)
    starts = [(4800 + k * (len(pip) + len(gap))) / 2 / 24000 for k in range(20)]
    change_frame = changed["at_s"] * 24000
    before, after = [], []
    # The delay is chosen per chunk the reader consumed (by its first frame): keep clear of the
    # chunk that straddles the change.
    for n0, d, _ in measured_delays(rig, starts, 0.06, search_ms=150):  # pips come every 200 ms
        if n0 + 0.06 * 24000 + 960 < change_frame:
            before.append(d)
        elif n0 >= change_frame + 960:
            after.append(d)
    print("\njump: before %s ms, after %s ms" % ([round(d, 1) for d in before], [round(d, 1) for d in after]))
    assert len(before) >= 8 and len(after) >= 8
    assert all(d == pytest.approx(40, abs=2) for d in before)
    assert all(d == pytest.approx(90, abs=2) for d in after)


@needs_alsa
def test_near_end_lands_on_its_frame_with_seeded_noise_and_saturation_is_counted(make_rig):
    try:
        talk = alsa_rig.make_speech("Hello robot, can you hear me?", 24000)
    except RuntimeError:
        talk = alsa_rig.make_tone(1500, 24000, 300, 0.3)
    loud = alsa_rig.make_tone(3000, 24000, 700, 0.9)
    near = [(talk, 0.6), (loud, 2.0)]
    rig = make_rig(capture=MONO24, playback=MONO24, delay_ms=50, gain_db=0, rt60_ms=0, seed=9,
                   noise_dbfs=-55, noise="pink", near=near)
    # The speaker's loud tone, 2 s into playback, is heard on top of the loud talker (from 2 s
    # on the capture timeline, 3 s long): near + echo saturates.
    speaker = bytes(2 * 24000 * 2) + alsa_rig.make_tone(1000, 24000, 500, 0.9)
    rec = play_and_record(rig, speaker)
    r = assert_rig_consistent(rig, rec)
    # The near end rebuilt offline: the clips on their frames plus the seeded noise, period by
    # period, rounded. Sample for sample what the rig recorded.
    n = len(r["near"])
    noise = NoiseSource(24000, -55, "pink", seed=9)
    expected = np.concatenate([noise.take(480) for _ in range(n // 480)])
    for clip, at in near:
        part = expected[int(at * 24000):int(at * 24000) + len(clip) // 2]
        part += to_mono(clip, 1)[:len(part)]
    assert np.array_equal(r["near"], np.clip(np.rint(expected), -32768, 32767))
    noise_db = energy_dbfs(r["near"][: int(0.6 * 24000)])  # before the talker: noise alone
    total = r["near"] + r["echo"]
    saturated = np.count_nonzero((total > 32767) | (total < -32768))
    print("\nnear: noise %.2f dBFS (set -55), clipped %d samples" % (noise_db, rig.stats()["clipped_mix"]))
    assert noise_db == pytest.approx(-55, abs=1.5)
    assert rig.stats()["clipped_mix"] == saturated > 0, "saturation counted where near + echo left int16"
    # arecord was reading before the talker began: ALSA delivered it (the stream is exact).
    with open(rig.feeder.paths["mix"], "rb") as f:
        assert f.read().find(rec[:4800]) // 2 <= 0.6 * 24000


@needs_alsa
def test_the_feeder_keeps_real_time_pace_with_a_400ms_room(make_rig):
    """The heavy case: a 400 ms room at 24 kHz, the speaker at 48 kHz stereo (mixed down and
    resampled), pink noise and a talker. Every capture period goes out within a period of its
    real-time schedule, and the echo is never late."""
    rig = make_rig(capture=MONO24, playback=Format(48000, 2, 20), delay_ms=60, gain_db=-6, rt60_ms=400, seed=3,
                   noise_dbfs=-60, near=[(alsa_rig.make_tone(2000, 24000, 220, 0.2), 2.0)])
    rng = np.random.default_rng(0)
    speech_like = rng.standard_normal(48000 * 6) * 4000
    rec = play_and_record(rig, pcm(speech_like, 2))
    assert_rig_consistent(rig, rec)
    s = rig.stats()
    writes = read_log(rig.capture_log)
    period_ns = 20e6
    # From the first write after arecord's start-up burst (the pipe page it found full) on.
    # Once 0.5 s is fed arecord is reading (the pipe holds a page): no more start-up hold-up.
    steady = [w for w in writes if w[1] >= 0.5 * rig.capture_fmt.bytes_per_second]
    ideal = min(t - k * period_ns for k, (t, _, _) in enumerate(steady))
    late_ms = sorted((t - (ideal + k * period_ns)) / 1e6 for k, (t, _, _) in enumerate(steady))
    span_s = (steady[-1][0] - steady[0][0]) / 1e9
    rate_error = span_s / ((len(steady) - 1) * 0.02) - 1
    [(_, delay_ms, _)] = measured_delays(rig, [1.0], 0.5)
    print("\npace: %d periods, lateness median %.2f p99 %.2f max %.2f ms; rate error %.1e; mixer latency max "
          "%.1f ms; delay %.2f ms (set 60); cpu %s s over %.1f s"
          % (len(steady), late_ms[len(late_ms) // 2], late_ms[int(len(late_ms) * 0.99)], late_ms[-1], rate_error,
             s["mixer_max_latency_ms"], delay_ms, {k: round(v, 2) for k, v in s["thread_cpu_s"].items()}, s["fed_s"]))
    assert late_ms[-1] < 20, "a capture period went out more than a period late"
    assert abs(rate_error) < 1e-3
    assert s["mixer_max_latency_ms"] < 60, "the echo was computed in time, with room to spare"
    assert delay_ms == pytest.approx(60, abs=2)


@needs_alsa
def test_a_stereo_48k_microphone_hears_a_24k_mono_speaker(make_rig):
    rig = make_rig(capture=Format(48000, 2, 20), playback=MONO24, delay_ms=70, gain_db=-3, rt60_ms=200, seed=4,
                   noise_dbfs=-70, noise="white")
    burst = chirp(400, 24000, f1=10000)
    rec = play_and_record(rig, bytes(24000) + pcm(burst) + bytes(24000))
    assert_rig_consistent(rig, rec)
    with open(rig.feeder.paths["mix"], "rb") as f:
        both = np.frombuffer(f.read(), dtype="<i2").reshape(-1, 2)
    assert np.array_equal(both[:, 0], both[:, 1]), "the same on both channels"
    start = rig.played().index(pcm(burst)) / 2 / 24000
    [(_, delay_ms, _)] = measured_delays(rig, [start], 0.4)
    gain_db = ratio_db(rig.recordings()["echo"], played_at_capture_rate(rig))
    print("\nstereo 48k: delay %.2f ms (set 70), gain %.2f dB (set -3)" % (delay_ms, gain_db))
    assert delay_ms == pytest.approx(70, abs=2)
    assert gain_db == pytest.approx(-3, abs=1.0)


@needs_alsa
def test_a_passthrough_uplink_aligns_exactly_and_scores(make_rig):
    """arecord's capture stands in for a daemon that passes the microphone through: found by
    exact match, ERLE 0 dB; with 20 dB of the echo taken off (a canceller), found by
    correlation at the same offset, ERLE 20 dB; the talker is kept."""
    talk = alsa_rig.make_tone(800, 24000, 300, 0.2)
    rig = make_rig(capture=MONO24, playback=MONO24, delay_ms=45, gain_db=-6, rt60_ms=200, seed=1,
                   noise_dbfs=-65, near=[(talk, 3.5)])
    rec = play_and_record(rig, bytes(48000) + pcm(chirp(800, 24000, amplitude=0.3)) + bytes(144000))
    a = rig.analyse(rec)
    assert a.method == "exact"
    r = rig.recordings()
    spans = echo_rig.activity(r["echo"], 24000, threshold_dbfs=-40)
    assert spans, "no echo"
    lo, hi = spans[0][0], spans[0][1]
    assert a.erle_db(lo, hi) == pytest.approx(0.0)
    assert a.near_loss_db(3.5, 4.3) == pytest.approx(0.0, abs=0.01)
    uplink = channel0(rec) - 0.9 * a.echo  # the echo, 20 dB down
    b = rig.analyse(pcm(uplink))
    print("\nanalysis: offset %d frames (%s), then %d (%s); ERLE %.2f dB over %.2f..%.2f s"
          % (a.offset, a.method, b.offset, b.method, b.erle_db(lo, hi), lo, hi))
    assert (b.method, b.offset) == ("correlation", a.offset)
    assert b.erle_db(lo, hi) == pytest.approx(20.0, abs=0.1)
    assert b.near_loss_db(3.5, 4.3, projected=True) == pytest.approx(0.0, abs=0.01)


@needs_alsa
def test_cli_rig_with_a_delay_schedule_and_a_talker(tmp_path):
    d = tmp_path / "cli"
    d.mkdir()
    clip = d / "talk.raw"
    clip.write_bytes(alsa_rig.make_tone(500, 24000, 330, 0.25))
    cmd = [sys.executable, os.path.join(HERE, "echo_rig.py"), "rig", "--dir", str(d), "--delay-ms", "40",
           "--gain-db", "-6", "--rt60-ms", "100", "--near", "%s@1.0" % clip, "--noise-dbfs", "-60",
           "--delay-changes", "2.5:90"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line.strip()) for line in proc.stdout] + [lines.put(None)],
                     daemon=True).start()
    said = []
    try:
        while "ready" not in said:
            said.append(lines.get(timeout=10))
            assert said[-1] is not None, proc.stderr.read()
        assert said[0] == "export ALSA_CONFIG_PATH=%s" % (d / "asound.conf")
        env = dict(os.environ, ALSA_CONFIG_PATH=str(d / "asound.conf"))
        pip = pcm(chirp(60, 24000, amplitude=0.4))
        clip_bytes = (pip + bytes(2 * 24000 * 140 // 1000)) * 20
        (d / "pips.raw").write_bytes(clip_bytes)
        rec = subprocess.Popen(alsa_cmd("arecord", "tether_capture", MONO24, str(d / "rec.raw")), env=env,
                               stderr=subprocess.PIPE)
        # arecord is being fed once the capture log passes a pipe page's worth of periods.
        wait_for(lambda: len(read_log(str(d / "capture.log"))) > 10, 5, "arecord reading")
        assert subprocess.run(alsa_cmd("aplay", "tether_playback", MONO24, str(d / "pips.raw")), env=env,
                              timeout=15, capture_output=True).returncode == 0
        wait_for(lambda: sum(n for _, _, n in read_log(str(d / "playback.log"))) >= len(clip_bytes), 5, "played")
        fed = len(read_log(str(d / "capture.log")))
        wait_for(lambda: len(read_log(str(d / "capture.log"))) > fed + 20, 5, "the echo tail fed")
        rec.terminate()
        rec.wait(timeout=5)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
    err = proc.stderr.read()
    assert proc.returncode == 0, err
    said += iter(lambda: lines.get(timeout=5), None)
    assert any(line.startswith("# fed") for line in said), said
    # The schedule, from the placements the mixer logged (emission -> frame landed on).
    placements = [tuple(int(v) for v in line.split()) for line in open(d / "echo.log")]
    delays = {dl for _, _, dl, _ in placements}
    assert delays == {40 * 24, 90 * 24}
    switch = [lands - dl for _, lands, dl, _ in placements if dl == 90 * 24][0]
    assert 2.5 * 24000 <= switch <= 2.5 * 24000 + 0.06 * 24000, "the change applies from 2.5 s on the capture timeline"
    near = channel0((d / "capture_near.raw").read_bytes())
    talk = channel0(clip.read_bytes())
    assert ratio_db(near[24000:24000 + len(talk)] - talk, talk) < -30, "the talker at 1.0 s, under -60 dBFS noise"
    assert energy_dbfs(near[:24000]) == pytest.approx(-60, abs=1.5)


def wait_for(predicate, timeout, what):
    """Poll `predicate` (a file the rig's subprocess writes) until true or the deadline."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting for " + what
        time.sleep(0.02)
