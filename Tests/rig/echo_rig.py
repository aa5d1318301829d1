#!/usr/bin/env python3
"""The ALSA rig with a room: what the speaker plays is heard by the microphone.

Built on `alsa_rig` (the same `file`-over-`null` devices, FIFOs, feeder and reader) for the
echo canceller's tests:

- echo: every chunk the paced playback reader consumes ("the speaker emitted it") is mixed
  back into the capture feed in real time, `delay_ms` later (counted from the moment the
  reader consumed it), through a synthetic room impulse response and a gain. The delay can
  change while running (`set_delay_ms`, or a schedule given up front).
- near end: speech clips at chosen times on the capture timeline (seconds since the feed
  started) and optional white or pink background noise at a chosen level, seeded.
- recordings, sample-aligned with the capture stream the feeder writes: `capture_mix.raw`
  (exactly what went into the capture FIFO), `capture_near.raw` (talker + noise) and
  `capture_echo.raw` (echo alone); `capture_mix == capture_near + capture_echo` sample for
  sample except where the sum saturated (counted).
- analysis: find where the brain's uplink starts in `capture_mix.raw`, then ERLE and
  near-end loss over windows of the capture timeline.

Conventions (README, "Echo rig"):
- Room impulse response: a direct-path tap at lag 0, then after a 2 ms pre-delay a tail of
  seeded Gaussian noise under an exponential envelope that falls 60 dB in `rt60_ms`; the tail
  holds `drr_db` less energy than the direct tap (direct-to-reverberant ratio), and the whole
  response is scaled to unit energy. So `gain_db` is the echo's level against the speaker for
  broadband sound (the echo return loss is -gain_db); a pure tone sees the room's comb on top.
  `rt60_ms=0` is no room: one tap, and the echo is the played signal times the gain exactly.
- The time of capture frame n: chunk k is written when its last frame has been heard, as a
  sound card delivers a period once it is complete (`CaptureFeeder.frame_time_ns`). A sound
  the speaker emits at t lands at the capture frame heard at t + delay.
- dBFS: RMS against full scale, 20*log10(rms / 32768) (a full-scale sine is -3 dBFS).
- Everything the rig makes is mono and copied onto every capture channel. Played audio is
  mixed down (mean of its channels) and resampled to the capture rate when the rates differ
  by a small ratio (at most 12:1 either way after reduction: 8/16/24/32/48 kHz mix freely,
  44.1 against 48 kHz does not).

Needs numpy (alsa_rig.py itself stays standard-library only for the Swift tests).

    import echo_rig                            # EchoRig, Analysis, helpers
    python3 echo_rig.py rig --dir D --delay-ms 40 --gain-db -6 --rt60-ms 200 \\
        --near hello.raw@2.0 --noise-dbfs -60 --delay-changes 10:90
"""

import argparse
import bisect
import collections
import math
import os
import signal
import sys
import threading
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import alsa_rig  # noqa: E402
from alsa_rig import CaptureFeeder, Format, PlaybackReader, Rig  # noqa: E402

FULL_SCALE = 32768.0
INT16_MIN, INT16_MAX = -32768, 32767


# ---------------------------------------------------------------------------------------------
# Signal pieces

def db_to_gain(db):
    return 10.0 ** (db / 20.0)


def room_impulse_response(rate, rt60_ms, drr_db=6.0, seed=0, predelay_ms=2.0):
    """A synthetic room: tap 0 is the direct path; from `predelay_ms` on, seeded Gaussian noise
    under an envelope falling 60 dB in `rt60_ms`, carrying `drr_db` less energy than the direct
    tap. Scaled to unit energy (sum of squares 1). `rt60_ms` 0: the single tap [1.0]."""
    if rt60_ms <= 0:
        return np.ones(1)
    start = max(1, int(round(rate * predelay_ms / 1000)))
    n = start + int(math.ceil(rate * rt60_ms / 1000))
    t = np.arange(n - start) / rate
    envelope = np.exp(-3.0 * math.log(10) * t / (rt60_ms / 1000.0))  # amplitude: -60 dB at rt60
    tail = np.random.default_rng([seed, 0]).standard_normal(n - start) * envelope
    tail *= math.sqrt(10.0 ** (-drr_db / 10.0) / np.sum(tail ** 2))
    h = np.zeros(n)
    h[0] = 1.0
    h[start:] = tail
    return h / math.sqrt(np.sum(h ** 2))


def pink_filter(rate, taps=None):
    """A linear-phase FIR whose power response falls 3 dB per octave (1/f) from 20 Hz up to
    Nyquist (flat below), unit energy: white noise through it is pink noise of the same RMS."""
    taps = taps or (1 << max(10, int(math.ceil(math.log2(rate / 6)))))  # ~6 Hz resolution
    f = np.fft.rfftfreq(taps, 1.0 / rate)
    magnitude = 1.0 / np.sqrt(np.maximum(f, 20.0))
    h = np.roll(np.fft.irfft(magnitude, taps), taps // 2) * np.hanning(taps)
    return h / math.sqrt(np.sum(h ** 2))


class BlockConvolver:
    """Convolution with a fixed FIR `h`, block by block: `full(x)` is the whole linear
    convolution of one block (len(x) + len(h) - 1 samples, FFT for long filters), `process(x)`
    streams: it carries the tail over (overlap-add) and returns len(x) samples."""

    def __init__(self, h):
        self.h = np.asarray(h, dtype=np.float64)
        self._tail = np.zeros(len(self.h) - 1)
        self._spectra = {}

    def full(self, x):
        x = np.asarray(x, dtype=np.float64)
        if len(self.h) <= 128 or len(x) == 0:
            return np.convolve(x, self.h) if len(x) else np.zeros(len(self.h) - 1)
        n = len(x) + len(self.h) - 1
        nfft = 1 << (n - 1).bit_length()
        spectrum = self._spectra.get(nfft)
        if spectrum is None:
            spectrum = self._spectra[nfft] = np.fft.rfft(self.h, nfft)
        return np.fft.irfft(np.fft.rfft(x, nfft) * spectrum, nfft)[:n]

    def process(self, x):
        y = self.full(x)
        k = len(self._tail)
        y[:k] += self._tail
        self._tail = y[len(x):].copy()
        return y[:len(x)]


class Resampler:
    """Streaming rational resampler (up by L, windowed-sinc low-pass, down by M) for ratios
    whose reduced terms are at most 12. `delay` is its group delay in output frames (a whole
    number): output frame j describes the input at time (j - delay) / out_rate."""

    MAX_TERM = 12

    def __init__(self, in_rate, out_rate):
        g = math.gcd(int(in_rate), int(out_rate))
        self.up, self.down = int(out_rate) // g, int(in_rate) // g
        self.delay = 0
        if self.up == self.down:
            return
        if max(self.up, self.down) > self.MAX_TERM:
            raise ValueError("cannot resample %d Hz to %d Hz: the ratio %d/%d is too fine for this rig"
                             % (in_rate, out_rate, self.up, self.down))
        # Half length a multiple of `down`, so the group delay is a whole output frame.
        half = self.down * int(math.ceil(16 * max(self.up, self.down) / self.down))
        cutoff = 0.5 / max(self.up, self.down) * 0.92  # of the upsampled rate
        n = np.arange(-half, half + 1)
        h = 2 * cutoff * np.sinc(2 * cutoff * n) * np.kaiser(2 * half + 1, 8.0) * self.up
        self._fir = BlockConvolver(h)
        self._phase = 0  # index of the next upsampled sample, modulo `down`
        self.delay = half // self.down

    def process(self, x):
        if self.up == self.down:
            return np.asarray(x, dtype=np.float64)
        stuffed = np.zeros(len(x) * self.up)
        stuffed[::self.up] = x
        y = self._fir.process(stuffed)
        first = (-self._phase) % self.down
        self._phase = (self._phase + len(y)) % self.down
        return y[first::self.down]


class NoiseSource:
    """Seeded white or pink noise at `dbfs` (RMS). It is made in blocks of its own (4096 samples,
    one FFT each for pink) and served in whatever sizes are asked: the same seed gives the same
    samples whatever the timing and the sizes taken."""

    BLOCK = 4096

    def __init__(self, rate, dbfs, colour="pink", seed=0):
        if colour not in ("white", "pink"):
            raise ValueError("noise is white or pink, not %r" % colour)
        self.rms = FULL_SCALE * db_to_gain(dbfs)
        self._rng = np.random.default_rng([seed, 1])
        self._pink = BlockConvolver(pink_filter(rate)) if colour == "pink" else None
        if self._pink is not None:
            # Fill the filter's memory first, so the noise starts at its level, not ramping up.
            self._pink.process(self._rng.standard_normal(len(self._pink.h)))
        self._ready = np.zeros(0)

    def take(self, n):
        while len(self._ready) < n:
            white = self._rng.standard_normal(self.BLOCK)
            block = self._pink.process(white) if self._pink is not None else white
            self._ready = np.concatenate((self._ready, block * self.rms))
        out, self._ready = self._ready[:n], self._ready[n:]
        return out


def to_mono(pcm, channels):
    """Interleaved S16_LE bytes (or an int16 array) as float64 mono: the mean of the channels."""
    a = np.frombuffer(pcm, dtype="<i2") if isinstance(pcm, (bytes, bytearray, memoryview)) else np.asarray(pcm)
    a = a[: len(a) // channels * channels].astype(np.float64)
    return a if channels == 1 else a.reshape(-1, channels).mean(axis=1)


def saturate(x):
    """Round to int and clip to int16; returns (int16 array, how many samples were clipped)."""
    r = np.rint(x)
    clipped = int(np.count_nonzero((r > INT16_MAX) | (r < INT16_MIN)))
    return np.clip(r, INT16_MIN, INT16_MAX).astype(np.int16), clipped


# ---------------------------------------------------------------------------------------------
# The echo path: speaker -> room -> microphone

class EchoPath:
    """Turns what the playback reader consumed into echo on the capture timeline.

    The reader hands each chunk over (`played`, a queue: it never waits for the mixing); a mixer
    thread of its own mixes it down, resamples it to the capture rate, convolves it with
    gain * RIR (FFT) and adds the result into a ring indexed by capture frame, at the frame
    heard `delay` after the chunk was emitted. The feeder takes its period out of the ring
    (`take`), a copy under a lock. Consecutive chunks land back to back: a placement within 2 ms
    of where the previous chunk ended is snapped to it (clock jitter); a larger jump (the
    speaker started over after silence, the delay changed, the feeder was held up) is taken as
    it is. Echo that arrives for frames already written is dropped and counted (`late_frames`),
    as is echo beyond the ring (`overflow_frames`)."""

    def __init__(self, capture, playback, delay_ms, gain_db, rir, max_delay_ms=2000.0, log_path=None):
        self.capture, self.playback = capture, playback
        self.gain_db = float(gain_db)
        self.rir = np.asarray(rir, dtype=np.float64)
        self.max_delay_ms = float(max_delay_ms)
        self._conv = BlockConvolver(self.rir * db_to_gain(gain_db))
        self._resampler = Resampler(playback.rate, capture.rate)
        span = capture.rate * (self.max_delay_ms / 1000.0 + 1.0) + len(self.rir) + 4 * capture.period_frames
        self._ring = np.zeros(1 << int(math.ceil(math.log2(span))))
        self._base = 0  # the next capture frame the feeder takes
        self._cond = threading.Condition()
        self._queue = collections.deque()
        self._changes = [(-math.inf, self._frames(delay_ms))]  # (capture frame, delay frames)
        self._expected = None  # where the next chunk lands, before the delay (capture frame)
        self._partial = b""
        self._clock = None
        self._stop = False
        self._thread = None
        self._log = open(log_path, "a", buffering=1) if log_path else None
        self.log_path = log_path
        self.played_bytes = 0
        self.played_progress = threading.Condition()
        # The played byte offset of the first sample that is not 0 in each chunk that has one, in
        # order (`first_sound_after`).
        self._sounds = []
        self.blocks = 0
        self.late_frames = 0
        self.overflow_frames = 0
        self.max_latency_ms = 0.0  # reader handed a chunk over -> its echo was in the ring

    def _frames(self, ms):
        ms = float(ms)
        if not 0 <= ms <= self.max_delay_ms:
            raise ValueError("echo delay %.1f ms is outside 0..%.0f ms" % (ms, self.max_delay_ms))
        return int(round(ms * self.capture.rate / 1000.0))

    def attach(self, clock):
        """`clock` maps CLOCK_MONOTONIC to capture frames (the feeder's frame_at_ns)."""
        self._clock = clock

    def start(self):
        self._thread = threading.Thread(target=self._run, name="echo-mixer", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread:
            self._thread.join(timeout=2)
        if self._log:
            self._log.close()
            self._log = None

    # Called by the reader thread: queue only.
    def played(self, emitted_ns, data):
        with self._cond:
            self._queue.append((emitted_ns, time.monotonic_ns(), bytes(data)))
            self._cond.notify()
        samples = np.frombuffer(data, dtype="<i2", count=len(data) // 2)
        sound = np.flatnonzero(samples)
        with self.played_progress:
            if len(sound):
                self._sounds.append(self.played_bytes + 2 * int(sound[0]))
            self.played_bytes += len(data)
            self.played_progress.notify_all()

    def first_sound_after(self, offset):
        """The played byte offset of the first sample that is not 0 at or after `offset` (in
        chunks the reader consumed from there on), or None while there is none."""
        with self.played_progress:
            i = bisect.bisect_left(self._sounds, offset)
            return self._sounds[i] if i < len(self._sounds) else None

    def delay_change(self, frame, delay_ms):
        """From capture frame `frame` on (what the speaker emits from the moment that frame is
        heard), the echo comes `delay_ms` after the sound."""
        entry = (float(frame), self._frames(delay_ms))
        with self._cond:
            bisect.insort(self._changes, entry)

    def delay_frames_at(self, frame):
        with self._cond:
            return self._changes[bisect.bisect_right(self._changes, (float(frame), math.inf)) - 1][1]

    def take(self, first, count):
        """The echo for capture frames first .. first+count-1 (mono float), removed from the ring."""
        size = len(self._ring)
        with self._cond:
            if first != self._base:
                raise RuntimeError("echo ring at frame %d, feeder asks for %d" % (self._base, first))
            i = first % size
            if i + count <= size:
                out = self._ring[i:i + count].copy()
                self._ring[i:i + count] = 0
            else:
                j = size - i
                out = np.concatenate((self._ring[i:], self._ring[:count - j]))
                self._ring[i:] = 0
                self._ring[:count - j] = 0
            self._base += count
        return out

    def _run(self):
        while True:
            with self._cond:
                while not self._queue and not self._stop:
                    self._cond.wait()
                if self._stop:
                    return
                items = list(self._queue)
                self._queue.clear()
            # Chunks that queued up while we were busy are convolved together: one FFT for all.
            pieces = []
            for emitted_ns, _, data in items:
                piece = self._place(emitted_ns, data)
                if piece is None:
                    continue
                if pieces and pieces[-1][1] == piece[1] and pieces[-1][0] + len(pieces[-1][2]) == piece[0]:
                    pieces[-1][2] = np.concatenate((pieces[-1][2], piece[2]))
                else:
                    pieces.append(piece)
            for piece in pieces:
                self._add(*piece)
            handed_ns = items[0][1]
            self.max_latency_ms = max(self.max_latency_ms, (time.monotonic_ns() - handed_ns) / 1e6)

    def _place(self, emitted_ns, data):
        """[capture frame before the delay, delay frames, mono samples at the capture rate,
        emitted_ns]."""
        fb = self.playback.frame_bytes
        data = self._partial + data
        whole = len(data) // fb * fb
        self._partial = data[whole:]
        if not whole or self._clock is None:
            return None
        x = self._resampler.process(to_mono(data[:whole], self.playback.channels))
        if not len(x):
            return None
        # The capture frame heard when the speaker emitted it, less the resampler's own delay.
        at = int(round(self._clock(emitted_ns))) - self._resampler.delay
        if self._expected is not None and abs(at - self._expected) <= self.capture.rate // 500:
            at = self._expected
        self._expected = at + len(x)
        return [at, self.delay_frames_at(at), x, emitted_ns]

    def _add(self, at, delay, x, emitted_ns):
        y = self._conv.full(x)
        size = len(self._ring)
        lands = start = at + delay
        with self._cond:
            if start < self._base:  # the feeder already wrote those frames
                self.late_frames += min(self._base - start, len(x))
                y = y[self._base - start:]
                start = self._base
            room = self._base + size - start
            if len(y) > room:
                self.overflow_frames += len(y) - max(room, 0)
                y = y[:max(room, 0)]
            if len(y):
                i = start % size
                j = min(len(y), size - i)
                self._ring[i:i + j] += y[:j]
                self._ring[:len(y) - j] += y[j:]
            self.blocks += 1
        if self._log:
            self._log.write("%d %d %d %d\n" % (emitted_ns, lands, delay, len(x)))


# ---------------------------------------------------------------------------------------------
# The feeder: near end + echo, recorded

class EchoFeeder(CaptureFeeder):
    """alsa_rig's feeder (same pacing: one period per write, one period ahead) whose periods are
    the near end (its own queue, as `feed()` and `pcm` give it, plus clips at set frames and
    noise) plus the echo, saturated to int16. It records the three, aligned with the stream."""

    def __init__(self, fifo_path, fmt, path, record_dir, pcm=b"", lead_ms=0, log_path=None, noise=None):
        super().__init__(fifo_path, fmt, pcm, lead_ms, None, log_path)
        self.path = path
        self.noise = noise
        self._clips = []  # [start frame, mono float array]
        self._frame = 0
        self._pending = None
        self.frames_written = 0
        self.clipped_mix = self.clipped_near = self.clipped_echo = 0
        self.near_late_frames = 0
        self.progress = threading.Condition()
        self.paths = {k: os.path.join(record_dir, "capture_%s.raw" % k) for k in ("mix", "near", "echo")}
        self._files = {}

    def start(self):
        self._files = {k: open(p, "wb") for k, p in self.paths.items()}
        return super().start()

    def stop(self):
        super().stop()
        for f in self._files.values():
            f.close()
        self._files = {}
        with self.progress:
            self.progress.notify_all()

    def add_near(self, pcm, frame):
        """Mono S16_LE at the capture rate, mixed into the near end from capture frame `frame`
        (what lies before the next frame to be generated is dropped and counted)."""
        clip = to_mono(pcm, 1)
        with self._lock:
            skip = max(0, self._frame - int(frame))
            self.near_late_frames += min(skip, len(clip))
            if skip < len(clip):
                self._clips.append([int(frame) + skip, clip[skip:]])

    @property
    def next_frame(self):
        """The capture frame the next period starts with."""
        with self._lock:
            return self._frame

    def _next_chunk(self):
        queued = super()._next_chunk()  # never None: no tail
        n = self.fmt.period_frames
        ch = self.fmt.channels
        first = self._frame
        extra = np.zeros(n)
        keep = []
        for clip in self._clips:
            start, samples = clip
            lo, hi = max(start, first), min(start + len(samples), first + n)
            if lo < hi:
                extra[lo - first:hi - first] += samples[lo - start:hi - start]
            if start + len(samples) > first + n:
                keep.append(clip)
        self._clips = keep
        if self.noise is not None:
            extra += self.noise.take(n)
        near = np.frombuffer(queued, dtype="<i2").reshape(n, ch).astype(np.float64) + extra[:, None]
        near, clipped_near = saturate(near)
        echo, clipped_echo = saturate(self.path.take(first, n))
        mix, clipped_mix = saturate(near.astype(np.int32) + echo.astype(np.int32)[:, None])
        self.clipped_near += clipped_near
        self.clipped_echo += clipped_echo * ch
        self.clipped_mix += clipped_mix
        self._frame += n
        data = mix.astype("<i2").tobytes()
        self._pending = (data, near.astype("<i2").tobytes(), np.repeat(echo, ch).astype("<i2").tobytes())
        return data

    def _wrote(self, data):
        super()._wrote(data)
        mix, near, echo = self._pending
        for key, chunk in (("mix", mix), ("near", near), ("echo", echo)):
            f = self._files.get(key)
            if f:
                f.write(chunk)
                f.flush()
        with self.progress:
            self.frames_written += self.fmt.period_frames
            self.progress.notify_all()


# ---------------------------------------------------------------------------------------------
# Everything at once

class EchoRig(Rig):
    """alsa_rig.Rig (same directory, asound.conf, devices, playback.raw/.log, capture.log)
    whose microphone hears the speaker, a near-end talker and noise.

        rig = EchoRig(tmp, delay_ms=40, gain_db=-6, rt60_ms=200, noise_dbfs=-60,
                      near=[(make_speech("hello"), 2.0)], delay_changes=[(10.0, 90)])
        rig.start()
        env = dict(os.environ, **rig.env)
        ...
        rig.set_delay_ms(90)                 # from now on
        rig.wait_fed(12.0, timeout=20)       # the capture timeline reached 12 s
        a = rig.analyse(uplink_bytes)        # align the brain's uplink with capture_mix
        a.erle_db(8.0, 10.0), a.near_loss_db(2.0, 3.5)
        rig.stop()
    """

    def __init__(self, directory, capture=None, playback=None, delay_ms=40.0, gain_db=-6.0, rt60_ms=200.0,
                 drr_db=6.0, seed=0, noise_dbfs=None, noise="pink", near=(), delay_changes=(),
                 max_delay_ms=2000.0):
        super().__init__(directory, capture, playback)
        if not -60 <= gain_db <= 20:
            raise ValueError("gain %.1f dB is out of range" % gain_db)
        self.delay_ms, self.gain_db, self.rt60_ms, self.drr_db, self.seed = delay_ms, gain_db, rt60_ms, drr_db, seed
        self.noise_dbfs, self.noise_colour = noise_dbfs, noise
        self.max_delay_ms = max_delay_ms
        self.rir = room_impulse_response(self.capture_fmt.rate, rt60_ms, drr_db, seed)
        self.echo_log = os.path.join(self.dir, "echo.log")
        self._near = list(near)
        self._delay_changes = list(delay_changes)
        Resampler(self.playback_fmt.rate, self.capture_fmt.rate)  # refuse an unsupported pair now
        self.path = None

    def start(self, capture_pcm=b"", lead_ms=0):
        """`capture_pcm` (interleaved, capture format) after `lead_ms` of silence joins the near
        end from frame 0, as with Rig; more goes in with feeder.feed() or add_near()."""
        for path in (self.playback_out, self.playback_log, self.capture_log, self.echo_log):
            if os.path.exists(path):
                os.unlink(path)
        cap = self.capture_fmt
        self.path = EchoPath(cap, self.playback_fmt, self.delay_ms, self.gain_db, self.rir, self.max_delay_ms,
                             self.echo_log)
        for t_s, ms in self._delay_changes:
            self.path.delay_change(round(float(t_s) * cap.rate), ms)
        noise = NoiseSource(cap.rate, self.noise_dbfs, self.noise_colour, self.seed) \
            if self.noise_dbfs is not None else None
        self.feeder = EchoFeeder(self.capture_fifo, cap, self.path, self.dir, capture_pcm, lead_ms,
                                 self.capture_log, noise)
        for pcm, t_s in self._near:
            self.feeder.add_near(pcm, round(float(t_s) * cap.rate))
        self.path.attach(self.feeder.frame_at_ns)
        self.path.start()
        self.reader = PlaybackReader(self.playback_fmt, self.playback_out, self.playback_log,
                                     fifo_path=self.playback_fifo, on_read=self.path.played).start()
        self.feeder.start()
        return self

    def _threads(self):
        return [self.feeder and self.feeder._thread, self.path and self.path._thread, self.reader and self.reader._thread]

    def stop(self):
        """Stop feeding (the capture FIFO goes), reading and mixing; the recordings stay.
        Stopping twice is harmless."""
        live = thread_cpu_seconds(self._threads())  # they are gone once stopped
        if live:
            self._cpu = live
        super().stop()
        if self.path:
            self.path.stop()

    # Control while running -------------------------------------------------------------------

    def now_s(self):
        """Where the capture timeline is now: seconds since the feed started (frame heard now)."""
        return self.feeder.frame_at_ns(time.monotonic_ns()) / self.capture_fmt.rate

    @property
    def fed_s(self):
        """Seconds of capture written into the FIFO so far."""
        return self.feeder.frames_written / self.capture_fmt.rate

    def wait_fed(self, t_s, timeout):
        """Wait until the feeder has written the capture timeline up to `t_s`; False on timeout."""
        frames = t_s * self.capture_fmt.rate
        deadline = time.monotonic() + timeout
        with self.feeder.progress:
            while self.feeder.frames_written < frames:
                left = deadline - time.monotonic()
                if left <= 0 or self.feeder._stop:
                    return False
                self.feeder.progress.wait(left)
        return True

    def _wait_played_until(self, done, timeout):
        """Wait until `done(played_bytes)` holds, re-checked as the speaker plays; False on
        timeout."""
        deadline = time.monotonic() + timeout
        with self.path.played_progress:
            while not done(self.path.played_bytes):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.path.played_progress.wait(left)
        return True

    def wait_played(self, nbytes, timeout):
        """Wait until the speaker (the playback reader) has consumed `nbytes`; False on timeout.
        With `echo: cancel` that counts the silence streamed between replies too: to wait for a
        whole reply, `wait_reply_played`; for a time into one, `wait_into_reply`."""
        return self._wait_played_until(lambda played: played >= nbytes, timeout)

    def wait_reply_played(self, reply, since, timeout):
        """Wait until the speaker has emitted all of `reply` (mono S16_LE at the playback rate, as
        the brain sent it; at any volume), the first reply to sound after played byte `since`;
        False on timeout (e.g. the reply was cut short). Counting bytes from `since` does not do:
        with `echo: cancel` the speaker streams silence between replies, so the reply starts
        some time after `since` (the brain's first chunk, the prebuffer, the device's buffer) and
        ends that much later. It is found where its first sound is played."""
        samples = np.frombuffer(reply, dtype="<i2")
        sound = np.flatnonzero(samples)
        if not len(sound):
            raise ValueError("the reply is all silence: nothing shows where it is played")
        return self._wait_played_until(lambda played: self._reply_played_past(since, len(samples) - int(sound[0]), played), timeout)

    def wait_into_reply(self, since, seconds, timeout):
        """Wait until the speaker has played `seconds` of the first reply to sound after played
        byte `since` (counted from its first sound, not from the silence streamed before it with
        `echo: cancel`); False on timeout."""
        frames = round(seconds * self.playback_fmt.rate)
        return self._wait_played_until(lambda played: self._reply_played_past(since, frames, played), timeout)

    def _reply_played_past(self, since, frames, played):
        """Whether `played` bytes reach `frames` past the first sound after byte `since`."""
        start = self.path.first_sound_after(since)
        fb = self.playback_fmt.frame_bytes
        return start is not None and played >= (start // fb + frames) * fb

    def set_delay_ms(self, ms, at_s=None):
        """Change the acoustic delay: for sound the speaker emits from now on (or from `at_s` on
        the capture timeline). Returns the capture time (s) from which it applies."""
        frame = self.feeder.frame_at_ns(time.monotonic_ns()) if at_s is None else at_s * self.capture_fmt.rate
        self.path.delay_change(frame, ms)
        return frame / self.capture_fmt.rate

    def echo_span_s(self):
        """How long after a sound the microphone may still hear it: the longest delay set so far
        plus the room's length (wait this long after the speaker stops before analysing)."""
        with self.path._cond:
            longest = max(d for _, d in self.path._changes)
        return (longest + len(self.rir)) / self.capture_fmt.rate

    def add_near(self, pcm, at_s=None):
        """A near-end clip (mono S16_LE at the capture rate) at `at_s` on the capture timeline,
        or with the next period. Returns the time (s) it starts at."""
        frame = self.feeder.next_frame if at_s is None else round(at_s * self.capture_fmt.rate)
        self.feeder.add_near(pcm, frame)
        return frame / self.capture_fmt.rate

    def stats(self):
        f, p = self.feeder, self.path
        return {"fed_s": self.fed_s, "clipped_mix": f.clipped_mix, "clipped_near": f.clipped_near,
                "clipped_echo": f.clipped_echo, "near_late_frames": f.near_late_frames,
                "echo_blocks": p.blocks, "echo_late_frames": p.late_frames,
                "echo_overflow_frames": p.overflow_frames, "mixer_max_latency_ms": round(p.max_latency_ms, 2),
                "thread_cpu_s": dict(getattr(self, "_cpu", {}), **thread_cpu_seconds(self._threads()))}

    # Results -----------------------------------------------------------------------------------

    def recordings(self):
        """{'mix', 'near', 'echo'}: channel 0 of each recording as float64 (int16 units), trimmed to
        a common length (they are written one after the other each period)."""
        out = {}
        for key, path in self.feeder.paths.items():
            with open(path, "rb") as f:
                out[key] = channel0(f.read(), self.capture_fmt.channels)
        n = min(len(a) for a in out.values())
        return {k: a[:n] for k, a in out.items()}

    def analyse(self, uplink, channels=1, offset=None):
        """The brain's uplink (S16_LE bytes at the capture rate, `channels` interleaved) against
        the recordings; the offset is found (exact match first, else cross-correlation) unless
        given, in capture frames."""
        return Analysis(channel0(uplink, channels), self.recordings(), self.capture_fmt.rate, offset)


def thread_cpu_seconds(threads):
    """{thread name: CPU seconds} from /proc for threads of this process."""
    ticks = os.sysconf("SC_CLK_TCK")
    out = {}
    for t in threads:
        if t is None or t.native_id is None:
            continue
        try:
            with open("/proc/self/task/%d/stat" % t.native_id) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[t.name] = (int(fields[11]) + int(fields[12])) / ticks
    return out


# ---------------------------------------------------------------------------------------------
# Analysis

def channel0(pcm, channels=1):
    """Channel 0 of interleaved S16_LE bytes as float64 (the rig puts the same on every one)."""
    a = np.frombuffer(bytes(pcm)[: len(pcm) // (2 * channels) * 2 * channels], dtype="<i2")
    return a[::channels].astype(np.float64)


def energy_dbfs(x):
    """RMS level of `x` (int16 units) in dBFS; -inf for silence."""
    x = np.asarray(x, dtype=np.float64)
    if not len(x):
        return -math.inf
    ms = float(np.mean(x * x))
    return 10 * math.log10(ms) - 20 * math.log10(FULL_SCALE) if ms > 0 else -math.inf


def ratio_db(a, b):
    """10*log10(energy(a) / energy(b))."""
    ea, eb = float(np.sum(np.square(a))), float(np.sum(np.square(b)))
    if eb == 0:
        return math.inf if ea > 0 else math.nan
    if ea == 0:
        return -math.inf
    return 10 * math.log10(ea / eb)


def find_offset(uplink, mix, probe_s=0.25, rate=24000):
    """Where uplink[0] sits in `mix` (both mono float, int16 units), in frames, and how it was
    found: ('exact', n) when a stretch of the uplink occurs byte for byte in the mix (the
    daemon passed the audio through), else ('correlation', n): the lag of the largest
    cross-correlation (FFT), the uplink starting anywhere within the mix."""
    u = np.asarray(uplink)
    m = np.asarray(mix)
    nonzero = np.flatnonzero(u)
    if len(nonzero):
        start = int(nonzero[0])
        probe = u[start:start + max(1, int(probe_s * rate))].astype("<i2").tobytes()
        hay = m.astype("<i2").tobytes()
        i = hay.find(probe)
        while i >= 0 and i % 2:
            i = hay.find(probe, i + 1)
        if i >= 0:
            offset = i // 2 - start
            n = min(len(u), len(m) - offset)
            if offset >= 0 and np.array_equal(u[:n], m[offset:offset + n]):
                return "exact", offset
    n = len(m) + len(u)
    nfft = 1 << (n - 1).bit_length()
    c = np.fft.irfft(np.fft.rfft(m, nfft) * np.conj(np.fft.rfft(u, nfft)), nfft)[:len(m)]
    return "correlation", int(np.argmax(c))


class Analysis:
    """The brain's uplink on the capture timeline. `uplink`, `mix`, `near`, `echo` are aligned
    float arrays (int16 units) from the uplink's first frame (capture frame `offset`) on; the
    window methods take times on the capture timeline (seconds since the feed started)."""

    def __init__(self, uplink, recordings, rate, offset=None):
        self.rate = rate
        if offset is None:
            self.method, offset = find_offset(uplink, recordings["mix"], rate=rate)
        else:
            self.method = "given"
        self.offset = int(offset)
        n = max(0, min(len(uplink), len(recordings["mix"]) - self.offset))
        self.uplink = np.asarray(uplink[:n], dtype=np.float64)
        self.mix, self.near, self.echo = (recordings[k][self.offset:self.offset + n] for k in ("mix", "near", "echo"))

    @property
    def offset_s(self):
        return self.offset / self.rate

    def window(self, start_s, end_s):
        """The slice of the aligned arrays for capture times [start_s, end_s)."""
        lo = max(0, int(round(start_s * self.rate)) - self.offset)
        hi = min(len(self.uplink), int(round(end_s * self.rate)) - self.offset)
        if hi <= lo:
            raise ValueError("window %.3f..%.3f s is outside the uplink (%.3f..%.3f s)"
                             % (start_s, end_s, self.offset_s, self.offset_s + len(self.uplink) / self.rate))
        return slice(lo, hi)

    def residual(self, start_s, end_s):
        """uplink - near over the window: what is left of the echo (plus what the canceller did
        to the near end)."""
        w = self.window(start_s, end_s)
        return self.uplink[w] - self.near[w]

    def erle_db(self, start_s, end_s):
        """Echo return loss enhancement: energy of the echo the microphone heard over energy of
        (uplink - near end), same window. The uplink unchanged gives 0 dB where near + echo did not
        clip; a canceller that removes the echo gives a large positive figure. Background noise
        is part of the near end: a canceller that also removes noise is charged for it."""
        w = self.window(start_s, end_s)
        return ratio_db(self.echo[w], self.uplink[w] - self.near[w])

    def near_loss_db(self, start_s, end_s, projected=False):
        """How much of the near end the uplink lost, in dB (0: all of it kept, positive: lost).
        By energy, 10*log10(E[near] / E[uplink]): for windows without echo. `projected`: the
        uplink's component along the near end, -20*log10(<uplink, near> / <near, near>), which
        residual echo and noise uncorrelated with the talker do not inflate (double talk)."""
        w = self.window(start_s, end_s)
        if not projected:
            return ratio_db(self.near[w], self.uplink[w])
        nn = float(np.dot(self.near[w], self.near[w]))
        un = float(np.dot(self.uplink[w], self.near[w]))
        if nn == 0:
            return math.nan
        return -20 * math.log10(un / nn) if un > 0 else math.inf

    def levels(self, start_s, end_s):
        """dBFS of uplink, mix, near and echo over the window."""
        w = self.window(start_s, end_s)
        return {k: energy_dbfs(getattr(self, k)[w]) for k in ("uplink", "mix", "near", "echo")}

    def erle_series(self, window_ms=100, min_echo_dbfs=-50.0, max_near_below_echo_db=20.0):
        """[(start_s, erle_db)] over consecutive windows where the echo is at least
        `min_echo_dbfs` and the near end at least `max_near_below_echo_db` below it (echo-only
        stretches, where ERLE means what it says)."""
        step = int(self.rate * window_ms / 1000)
        out = []
        for lo in range(0, len(self.uplink) - step + 1, step):
            w = slice(lo, lo + step)
            echo_db, near_db = energy_dbfs(self.echo[w]), energy_dbfs(self.near[w])
            if echo_db >= min_echo_dbfs and near_db <= echo_db - max_near_below_echo_db:
                out.append(((self.offset + lo) / self.rate, ratio_db(self.echo[w], self.uplink[w] - self.near[w])))
        return out


def activity(track, rate, window_ms=20, threshold_dbfs=-50.0):
    """[(start_s, end_s)] stretches of `track` whose windowed level is at least `threshold_dbfs`."""
    step = int(rate * window_ms / 1000)
    spans = []
    for lo in range(0, len(track) - step + 1, step):
        if energy_dbfs(track[lo:lo + step]) >= threshold_dbfs:
            if spans and spans[-1][1] == lo:
                spans[-1][1] = lo + step
            else:
                spans.append([lo, lo + step])
    return [(a / rate, b / rate) for a, b in spans]


# ---------------------------------------------------------------------------------------------
# CLI

def parse_near(spec):
    """CLIP@T: a mono S16_LE file at the capture rate, at T seconds on the capture timeline."""
    path, sep, at = spec.rpartition("@")
    if not sep or not path:
        raise argparse.ArgumentTypeError("--near wants CLIP@SECONDS, got %r" % spec)
    with open(path, "rb") as f:
        return f.read(), float(at)


def parse_delay_changes(spec):
    """'10.0:90,20:40' -> [(10.0, 90.0), (20.0, 40.0)]: at capture time T s, delay D ms."""
    out = []
    for item in filter(None, spec.replace(" ", "").split(",")):
        t, sep, ms = item.partition(":")
        if not sep:
            raise argparse.ArgumentTypeError("--delay-changes wants T:MS[,T:MS...], got %r" % spec)
        out.append((float(t), float(ms)))
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("rig", help="the ALSA rig with echo, a near-end talker and noise, until SIGTERM")
    p.add_argument("--dir", required=True)
    p.add_argument("--delay-ms", type=float, default=40.0, help="acoustic delay, speaker to microphone")
    p.add_argument("--gain-db", type=float, default=-6.0, help="echo level against the speaker (broadband)")
    p.add_argument("--rt60-ms", type=float, default=200.0, help="room reverberation time (0: no room)")
    p.add_argument("--drr-db", type=float, default=6.0, help="direct-to-reverberant energy ratio")
    p.add_argument("--seed", type=int, default=0, help="seed of the room and the noise")
    p.add_argument("--delay-changes", type=parse_delay_changes, default=[],
                   help="T:MS[,T:MS...]: at capture time T s, set the delay to MS")
    p.add_argument("--near", type=parse_near, action="append", default=[],
                   help="CLIP@T: mono S16_LE at the capture rate, at T s (repeatable)")
    p.add_argument("--noise-dbfs", type=float, default=None, help="background noise level (RMS dBFS)")
    p.add_argument("--noise", choices=("pink", "white"), default="pink")
    p.add_argument("--input", help="near end from frame 0: mono S16_LE raw at the capture rate")
    p.add_argument("--lead-ms", type=float, default=0)
    alsa_rig._add_format(p, "capture_", "capture ")
    alsa_rig._add_format(p, "playback_", "playback ")
    args = parser.parse_args(argv)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})

    rig = EchoRig(args.dir, alsa_rig._fmt(args, "capture_"), alsa_rig._fmt(args, "playback_"),
                  delay_ms=args.delay_ms, gain_db=args.gain_db, rt60_ms=args.rt60_ms, drr_db=args.drr_db,
                  seed=args.seed, noise_dbfs=args.noise_dbfs, noise=args.noise, near=args.near,
                  delay_changes=args.delay_changes)
    pcm = alsa_rig._read_input(args.input, rig.capture_fmt.channels, True)
    rig.start(pcm, args.lead_ms)
    print("export ALSA_CONFIG_PATH=%s" % rig.config_path, flush=True)
    print("# capture recorded to %s, playback to %s; echo placements in %s"
          % (", ".join(rig.feeder.paths.values()), rig.playback_out, rig.echo_log), flush=True)
    print("ready", flush=True)

    def cleanup():
        rig.stop()
        s = rig.stats()
        print("# fed %.1f s, clipped %d, echo late %d, overflow %d frames"
              % (s["fed_s"], s["clipped_mix"], s["echo_late_frames"], s["echo_overflow_frames"]), flush=True)

    alsa_rig._wait_for_signal(cleanup)
    return 0


if __name__ == "__main__":
    sys.exit(main())
