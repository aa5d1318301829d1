#!/usr/bin/env python3
"""ALSA without a sound card, paced in real time: a test rig for tether's audio engine.

ALSA's `file` plugin over a `null` slave gives a capture and a playback device that any ALSA
program can open by name (`tether_capture`, `tether_playback`, and `default` for both). The
null slave does not pace time, so this rig does:

- capture: the plugin reads its `infile`, a FIFO that the *feeder* writes in real time, one
  ALSA period per chunk and one chunk ahead of the reader, so that every read finds a whole
  period (a short read would leave stale bytes in the buffer). The FIFO is shrunk to one page
  so that no backlog piles up while nobody reads: the feeder waits for the device instead. Past the end of its input the
  plugin would repeat stale data without an error, so the feeder keeps writing silence after
  the clip until it is stopped; stopping it (or `remove`) closes and deletes the FIFO, which
  is what a vanished device looks like to the next open.
- playback: the plugin writes to a FIFO (or `file "|command"`) that the *reader* drains at
  real-time speed, logging when each chunk arrived. The pipe is shrunk with F_SETPIPE_SZ to
  one page (4096 bytes, the kernel's minimum) so that it, like a hardware FIFO, holds only a
  little audio. The plugin itself holds one device buffer back before writing (that part is
  what `snd_pcm_rewind` can take back); the pipe page and the chunk being "played" cannot be.
  At 24 kHz mono one page is 85 ms of audio; at 48 kHz stereo it is one 20 ms period, which
  is what barge-in timing tests use.

Usable three ways:
    import alsa_rig                      # from Python system tests: Rig, CaptureFeeder, ...
    python3 alsa_rig.py rig --dir D ...  # everything at once, for `make demo` or by hand
    python3 alsa_rig.py feed|play|config|speech|tone ...   # one piece each (Swift tests)

Only the Python 3 standard library is used. Clocks are CLOCK_MONOTONIC (time.monotonic_ns),
the same clock as tetherd's MonoTime, so logs line up with the daemon's timestamps.
"""

import argparse
import fcntl
import math
import os
import select
import shutil
import signal
import struct
import subprocess
import sys
import termios
import tempfile
import threading
import time

F_SETPIPE_SZ = 1031
F_GETPIPE_SZ = 1032
PIPE_PAGE = 4096

CAPTURE_PCM = "tether_capture"
PLAYBACK_PCM = "tether_playback"


# ---------------------------------------------------------------------------------------------
# Formats

class Format:
    """S16_LE interleaved audio at `rate` with `channels`, moved in `period_ms` chunks."""

    def __init__(self, rate=24000, channels=1, period_ms=20):
        self.rate = int(rate)
        self.channels = int(channels)
        self.period_ms = float(period_ms)

    @property
    def frame_bytes(self):
        return 2 * self.channels

    @property
    def period_frames(self):
        return int(self.rate * self.period_ms / 1000)

    @property
    def period_bytes(self):
        return self.period_frames * self.frame_bytes

    @property
    def bytes_per_second(self):
        return self.rate * self.frame_bytes

    def ms_to_bytes(self, ms):
        return int(self.rate * ms / 1000) * self.frame_bytes

    def bytes_to_ms(self, n):
        return n * 1000.0 / self.bytes_per_second


def interleave_mono(pcm, channels):
    """Mono S16_LE bytes copied onto every one of `channels` channels."""
    if channels == 1:
        return bytes(pcm)
    out = bytearray()
    for i in range(0, len(pcm) - 1, 2):
        out += pcm[i:i + 2] * channels
    return bytes(out)


def channel(pcm, channels, index=0):
    """One channel of interleaved S16_LE bytes."""
    if channels == 1:
        return bytes(pcm)
    step = 2 * channels
    out = bytearray()
    for i in range(2 * index, len(pcm) - 1, step):
        out += pcm[i:i + 2]
    return bytes(out)


def make_tone(ms, rate=24000, freq=440.0, amplitude=0.5):
    """A sine tone as mono S16_LE bytes."""
    n = int(rate * ms / 1000)
    peak = int(32767 * amplitude)
    return struct.pack("<%dh" % n, *(int(peak * math.sin(2 * math.pi * freq * i / rate)) for i in range(n)))


def make_speech(text, rate=24000, out_path=None, voice=None):
    """Speech from espeak-ng, resampled by sox to mono S16_LE raw at `rate`. Returns the bytes
    (and writes them to `out_path` when given)."""
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            raise RuntimeError("%s is not installed (apt-get install espeak-ng sox)" % tool)
    with tempfile.TemporaryDirectory() as tmp:
        wav = os.path.join(tmp, "speech.wav")
        raw = os.path.join(tmp, "speech.raw")
        cmd = ["espeak-ng", "-w", wav]
        if voice:
            cmd += ["-v", voice]
        subprocess.run(cmd + [text], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        subprocess.run(["sox", wav, "-t", "raw", "-r", str(rate), "-c", "1", "-b", "16",
                        "-e", "signed-integer", "-L", raw], check=True)
        with open(raw, "rb") as f:
            data = f.read()
    if out_path:
        with open(out_path, "wb") as f:
            f.write(data)
    return data


# ---------------------------------------------------------------------------------------------
# ALSA configuration

def alsa_config_text(capture_fifo, playback_target, default_device=True):
    """An ALSA_CONFIG_PATH file: the system config, then the rig's two devices. A
    `playback_target` starting with `|` is a command the plugin pipes playback into."""
    lines = [
        "</usr/share/alsa/alsa.conf>",
        "",
        "# tether test rig: file plugin over null, paced by the rig's feeder and reader.",
        "pcm.%s {" % CAPTURE_PCM,
        "    type file",
        '    slave.pcm "null"',
        '    file "/dev/null"',
        '    infile "%s"' % capture_fifo,
        '    format "raw"',
        "}",
        "pcm.%s {" % PLAYBACK_PCM,
        "    type file",
        '    slave.pcm "null"',
        '    file "%s"' % playback_target,
        '    format "raw"',
        "}",
    ]
    if default_device:
        lines += [
            "pcm.!default {",
            "    type asym",
            '    capture.pcm "%s"' % CAPTURE_PCM,
            '    playback.pcm "%s"' % PLAYBACK_PCM,
            "}",
        ]
    return "\n".join(lines) + "\n"


def write_alsa_config(directory, capture_fifo=None, playback_target=None, default_device=True):
    """Write `asound.conf` into `directory`; returns its path (for ALSA_CONFIG_PATH)."""
    os.makedirs(directory, exist_ok=True)
    capture_fifo = capture_fifo or os.path.join(directory, "capture.fifo")
    playback_target = playback_target or os.path.join(directory, "playback.fifo")
    path = os.path.join(directory, "asound.conf")
    with open(path, "w") as f:
        f.write(alsa_config_text(capture_fifo, playback_target, default_device))
    return path


# ---------------------------------------------------------------------------------------------
# Capture feeder

def _atomic_fifo(path):
    """Create a FIFO at `path` already held open (read-write, so neither side's open blocks and
    the reader never sees end-of-file while we live). It appears under its name only once it is
    open: a device open in between would block waiting for a writer."""
    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, ".%s.%d.tmp" % (os.path.basename(path), os.getpid()))
    if os.path.exists(tmp):
        os.unlink(tmp)
    os.mkfifo(tmp, 0o600)
    fd = os.open(tmp, os.O_RDWR | os.O_CLOEXEC)
    # A microphone has no backlog from before it was opened: keep the pipe to one page, so
    # the feeder waits for a reader instead of piling up a second of stale audio.
    shrink_pipe(fd)
    os.rename(tmp, path)
    return fd


class CaptureFeeder:
    """Writes `pcm` (interleaved S16_LE in `fmt`) into the capture FIFO in real time: `lead_ms`
    of silence, the clip, then silence until stopped (or for `tail_ms`, then it stops writing
    but keeps the device). More clips can be queued with `feed`."""

    def __init__(self, fifo_path, fmt, pcm=b"", lead_ms=0, tail_ms=None, log_path=None, ahead_periods=1):
        self.fifo_path = fifo_path
        self.fmt = fmt
        self.tail_ms = tail_ms
        self.log_path = log_path
        self.ahead = max(1, int(ahead_periods))
        self._lock = threading.Condition()
        self._queue = bytearray(b"\0" * fmt.ms_to_bytes(lead_ms) + bytes(pcm))
        self._stop = False
        self._fd = None
        self._thread = None
        self._log = None
        self.written = 0
        self.clip_done = threading.Event()
        self._start_ns = time.monotonic_ns()

    def start(self):
        self._fd = _atomic_fifo(self.fifo_path)
        if self.log_path:
            self._log = open(self.log_path, "a", buffering=1)
        self._thread = threading.Thread(target=self._run, name="capture-feeder", daemon=True)
        self._thread.start()
        return self

    def feed(self, pcm):
        with self._lock:
            self._queue += pcm
            self.clip_done.clear()

    def remove(self):
        """The device vanishes: stop writing, close and delete the FIFO."""
        self.stop()

    def stop(self):
        with self._lock:
            self._stop = True
            self._lock.notify_all()
        if self._thread:
            self._thread.join(timeout=2)
        if self._fd is not None:
            try:
                os.unlink(self.fifo_path)
            except FileNotFoundError:
                pass
            os.close(self._fd)
            self._fd = None
        if self._log:
            self._log.close()
            self._log = None

    def _write(self, data):
        """Write one chunk whole (non-blocking, so stop() is never stuck behind a device that
        stopped reading). Chunks up to one pipe page are atomic: a reader never sees half."""
        while True:
            with self._lock:
                if self._stop:
                    return False
            try:
                os.write(self._fd, data)
                return True
            except BlockingIOError:
                self._poll.poll(100)
            except OSError:
                return False

    def frame_time_ns(self, frame):
        """When capture frame `frame` (counted from the first frame fed) is heard, on
        CLOCK_MONOTONIC: chunk k is written when its last frame has been heard, as a sound card
        hands over a period once it is complete. The mapping moves when the feeder is held up
        (nobody reads): the audio is delayed, as a microphone's would be."""
        period_ns = self.fmt.period_ms * 1e6
        return self._start_ns + (frame / self.fmt.period_frames - self.ahead - 1) * period_ns

    def frame_at_ns(self, t_ns):
        """The inverse of frame_time_ns: the (fractional) capture frame heard at `t_ns`."""
        period_ns = self.fmt.period_ms * 1e6
        return ((t_ns - self._start_ns) / period_ns + self.ahead + 1) * self.fmt.period_frames

    def _next_chunk(self):
        """The next period to write (called with the lock held, once its time has come), or None
        to write nothing for now (the tail is over)."""
        chunk = self.fmt.period_bytes
        if self._queue:
            data = bytes(self._queue[:chunk])
            del self._queue[:chunk]
            if len(data) < chunk:
                data += bytes(chunk - len(data))
            if not self._queue:
                self.clip_done.set()
            return data
        self.clip_done.set()
        if self._tail_left is not None:
            if self._tail_left <= 0:
                return None  # keep the device, stop the stream
            self._tail_left -= chunk
        return bytes(chunk)

    def _wrote(self, data):
        """`data` went into the FIFO whole."""
        if self._log:
            self._log.write("%d %d %d\n" % (time.monotonic_ns(), self.written, len(data)))
        self.written += len(data)

    def _run(self):
        os.set_blocking(self._fd, False)
        self._poll = select.poll()
        self._poll.register(self._fd, select.POLLOUT)
        period_ns = int(self.fmt.period_ms * 1e6)
        self._tail_left = None if self.tail_ms is None else self.fmt.ms_to_bytes(self.tail_ms)
        start = self._start_ns = time.monotonic_ns()
        k = 0
        while True:
            # Chunk k is due at start + (k - ahead) periods: the FIFO stays one period ahead
            # of the reader, so every read of one period finds a whole one.
            due = start + (k - self.ahead) * period_ns
            now = time.monotonic_ns()
            if due > now:
                time.sleep((due - now) / 1e9)
            elif now - due > period_ns:
                # Held up (nobody read the device yet): carry on from now, never faster than
                # real time, as a microphone would. The audio is delayed, not dropped, and not
                # bunched into a burst that looks like a broken device.
                start = self._start_ns = now - (k - self.ahead) * period_ns
            # The chunk is taken only now that its time has come, so that what it carries
            # (the echo rig mixes in what the speaker played) is as fresh as it can be.
            with self._lock:
                if self._stop:
                    return
                data = self._next_chunk()
                if data is None:
                    self._lock.wait(0.1)
                    continue
            if not self._write(data):
                return
            self._wrote(data)
            k += 1


# ---------------------------------------------------------------------------------------------
# Playback reader

class PlaybackReader:
    """Drains the playback pipe at real-time speed, one period per period, appending what it
    reads to `out_path` and a line `monotonic_ns offset length` per read to `log_path`.
    `on_read(emitted_ns, data)`, when given, is called with each chunk and the time the
    speaker began to emit it: the reader's own steady clock, which restarts only when the
    pipe ran dry (it must return quickly: the echo rig only queues the chunk)."""

    def __init__(self, fmt, out_path, log_path=None, fifo_path=None, fd=None, on_read=None):
        self.fmt = fmt
        self.on_read = on_read
        self.out_path = out_path
        self.log_path = log_path
        self.fifo_path = fifo_path
        self._fd = fd
        self._keepalive = None
        self._stop = threading.Event()
        self._thread = None
        self.received = 0

    def start(self):
        if self.fifo_path:
            if os.path.exists(self.fifo_path):
                os.unlink(self.fifo_path)
            os.mkfifo(self.fifo_path, 0o600)
            self._fd = os.open(self.fifo_path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            # Hold a write end too: when the device closes and reopens, we must not see EOF.
            self._keepalive = os.open(self.fifo_path, os.O_WRONLY | os.O_CLOEXEC)
            os.set_blocking(self._fd, True)
        self.pipe_bytes = shrink_pipe(self._fd)
        self._out = open(self.out_path, "ab")
        self._log = open(self.log_path, "a", buffering=1) if self.log_path else None
        self._thread = threading.Thread(target=self._run, name="playback-reader", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=1)
        if self._keepalive is not None:
            os.close(self._keepalive)
            self._keepalive = None
        if self.fifo_path:
            if os.path.exists(self.fifo_path):
                os.unlink(self.fifo_path)
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
        for f in (getattr(self, "_out", None), getattr(self, "_log", None)):
            if f:
                f.close()

    def run_forever(self):
        self._run()

    def _run(self):
        self._poll = select.poll()
        self._poll.register(self._fd, select.POLLIN)
        chunk = self.fmt.period_bytes
        per_byte_ns = 1e9 / self.fmt.bytes_per_second
        due = None
        while not self._stop.is_set():
            if due is not None:
                now = time.monotonic_ns()
                if due > now:
                    time.sleep((due - now) / 1e9)
            # Is the chunk already waiting? Then the reader, not the speaker, is late (the
            # scheduler or another thread held it up): the speaker's clock goes on, as a sound
            # card's DMA does, and the reads catch up. (FIONREAD keeps the GIL: a poll() that
            # returns at once could still come back late.)
            waiting = pipe_pending(self._fd) > 0
            try:
                # Wake now and then to notice stop(); data wakes us at once.
                if not waiting and not self._poll.poll(200):
                    continue
                data = os.read(self._fd, chunk)
            except InterruptedError:
                continue
            except OSError:
                return
            if not data:
                return  # every writer closed: the device is gone for good
            now = time.monotonic_ns()
            # Starved (the device was idle): the clock starts over from this chunk.
            if due is None or (not waiting and now - due > per_byte_ns * chunk / 4):
                due = now
            emitted = due
            due += int(len(data) * per_byte_ns)
            if self.on_read:
                self.on_read(emitted, data)
            self._out.write(data)
            self._out.flush()
            if self._log:
                self._log.write("%d %d %d\n" % (now, self.received, len(data)))
            self.received += len(data)


def pipe_pending(fd):
    """Bytes waiting in a pipe (FIONREAD)."""
    try:
        return struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0]
    except OSError:
        return 0


def shrink_pipe(fd):
    """Make the pipe as small as the kernel allows (one page). Returns its size in bytes."""
    try:
        fcntl.fcntl(fd, F_SETPIPE_SZ, PIPE_PAGE)
    except OSError:
        pass
    try:
        return fcntl.fcntl(fd, F_GETPIPE_SZ)
    except OSError:
        return 65536


def read_log(path):
    """[(monotonic_ns, offset, length)] from a feeder or reader log."""
    out = []
    if not os.path.exists(path):
        return out
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3:
                out.append(tuple(int(p) for p in parts))
    return out


# ---------------------------------------------------------------------------------------------
# Everything at once

class Rig:
    """A directory with the ALSA config, a capture feeder and a playback reader.

        rig = Rig("/tmp/rig", capture=Format(24000, 1, 20), playback=Format(24000, 1, 20))
        rig.start(capture_pcm=clip, lead_ms=200)
        env = dict(os.environ, **rig.env)    # ALSA_CONFIG_PATH for the program under test
        ...
        rig.stop()
    """

    def __init__(self, directory, capture=None, playback=None):
        self.dir = os.path.abspath(directory)
        os.makedirs(self.dir, exist_ok=True)
        self.capture_fmt = capture or Format()
        self.playback_fmt = playback or Format()
        self.capture_fifo = os.path.join(self.dir, "capture.fifo")
        self.playback_fifo = os.path.join(self.dir, "playback.fifo")
        self.playback_out = os.path.join(self.dir, "playback.raw")
        self.playback_log = os.path.join(self.dir, "playback.log")
        self.capture_log = os.path.join(self.dir, "capture.log")
        self.config_path = write_alsa_config(self.dir, self.capture_fifo, self.playback_fifo)
        self.feeder = None
        self.reader = None

    @property
    def env(self):
        return {"ALSA_CONFIG_PATH": self.config_path}

    def start(self, capture_pcm=b"", lead_ms=0, tail_ms=None):
        for path in (self.playback_out, self.playback_log, self.capture_log):
            if os.path.exists(path):
                os.unlink(path)
        self.reader = PlaybackReader(self.playback_fmt, self.playback_out, self.playback_log,
                                     fifo_path=self.playback_fifo).start()
        self.feeder = CaptureFeeder(self.capture_fifo, self.capture_fmt, capture_pcm, lead_ms,
                                    tail_ms, self.capture_log).start()
        return self

    def stop(self):
        if self.feeder:
            self.feeder.stop()
        if self.reader:
            self.reader.stop()

    def played(self):
        """Everything the playback reader received so far."""
        if not os.path.exists(self.playback_out):
            return b""
        with open(self.playback_out, "rb") as f:
            return f.read()


# ---------------------------------------------------------------------------------------------
# CLI

def _fmt(args, prefix=""):
    return Format(getattr(args, prefix + "rate"), getattr(args, prefix + "channels"), getattr(args, prefix + "period_ms"))


def _add_format(p, prefix="", what=""):
    dash = "--" + prefix.replace("_", "-")
    p.add_argument(dash + "rate", dest=prefix + "rate", type=int, default=24000, help=what + "sample rate (Hz)")
    p.add_argument(dash + "channels", dest=prefix + "channels", type=int, default=1, help=what + "channels")
    p.add_argument(dash + "period-ms", dest=prefix + "period_ms", type=float, default=20, help=what + "ALSA period (ms)")


def _wait_for_signal(cleanup):
    # The handler only sets a flag: it runs in the main thread wherever that thread was
    # interrupted, and taking a lock there (Event.set) can deadlock against the very wait
    # it interrupted.
    caught = []

    def handler(signum, frame):
        caught.append(signum)

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    while not caught:
        time.sleep(0.1)
    cleanup()


def _read_input(path, channels, mono_input):
    if not path:
        return b""
    with open(path, "rb") as f:
        data = f.read()
    return interleave_mono(data, channels) if mono_input else data


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("config", help="write asound.conf for the rig; prints its path")
    p.add_argument("--dir", required=True)
    p.add_argument("--capture-fifo")
    p.add_argument("--playback-fifo")
    p.add_argument("--playback-command", help="pipe playback into this command instead of a FIFO")
    p.add_argument("--no-default", action="store_true", help="do not redefine the default device")

    p = sub.add_parser("feed", help="feed the capture FIFO in real time until SIGTERM")
    p.add_argument("--fifo", required=True)
    p.add_argument("--input", help="raw S16_LE file (interleaved in --channels, or mono with --mono-input)")
    p.add_argument("--mono-input", action="store_true", help="input is mono: copy it to every channel")
    p.add_argument("--lead-ms", type=float, default=0)
    p.add_argument("--tail-ms", type=float, default=None, help="silence after the input (default: until stopped)")
    p.add_argument("--log")
    _add_format(p)

    p = sub.add_parser("play", help="drain the playback FIFO (or stdin) in real time until SIGTERM")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--fifo")
    g.add_argument("--stdin", action="store_true", help="read stdin (for file \"|command\")")
    p.add_argument("--out", required=True)
    p.add_argument("--log")
    _add_format(p)

    p = sub.add_parser("rig", help="config + feeder + reader in one directory, until SIGTERM")
    p.add_argument("--dir", required=True)
    p.add_argument("--input", help="capture input: mono S16_LE raw at the capture rate")
    p.add_argument("--lead-ms", type=float, default=0)
    _add_format(p, "capture_", "capture ")
    _add_format(p, "playback_", "playback ")

    p = sub.add_parser("speech", help="espeak-ng + sox: mono S16_LE raw speech")
    p.add_argument("--text", required=True)
    p.add_argument("--rate", type=int, default=24000)
    p.add_argument("--out", required=True)

    p = sub.add_parser("tone", help="a sine tone as mono S16_LE raw")
    p.add_argument("--ms", type=float, required=True)
    p.add_argument("--rate", type=int, default=24000)
    p.add_argument("--freq", type=float, default=440)
    p.add_argument("--amplitude", type=float, default=0.5)
    p.add_argument("--out", required=True)

    args = parser.parse_args(argv)
    # A parent may have spawned us with its signal mask (Foundation's Process does, from a
    # dispatch thread that blocks everything): take SIGTERM and SIGINT back, or we never stop.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})

    if args.cmd == "config":
        target = "|" + args.playback_command if args.playback_command else args.playback_fifo
        print(write_alsa_config(args.dir, args.capture_fifo, target, not args.no_default))
    elif args.cmd == "feed":
        fmt = _fmt(args)
        feeder = CaptureFeeder(args.fifo, fmt, _read_input(args.input, fmt.channels, args.mono_input),
                               args.lead_ms, args.tail_ms, args.log).start()
        print("ready", flush=True)
        _wait_for_signal(feeder.stop)
    elif args.cmd == "play":
        fmt = _fmt(args)
        if args.stdin:
            reader = PlaybackReader(fmt, args.out, args.log, fd=sys.stdin.fileno())
            reader.pipe_bytes = shrink_pipe(reader._fd)
            reader._out = open(args.out, "ab")
            reader._log = open(args.log, "a", buffering=1) if args.log else None
            reader.run_forever()  # until the device closes the pipe
        else:
            reader = PlaybackReader(fmt, args.out, args.log, fifo_path=args.fifo).start()
            print("ready pipe_bytes=%d" % reader.pipe_bytes, flush=True)
            _wait_for_signal(reader.stop)
    elif args.cmd == "rig":
        rig = Rig(args.dir, _fmt(args, "capture_"), _fmt(args, "playback_"))
        pcm = _read_input(args.input, rig.capture_fmt.channels, True)
        rig.start(pcm, args.lead_ms)
        print("export ALSA_CONFIG_PATH=%s" % rig.config_path, flush=True)
        print("# capture: %s  playback recorded to %s (log %s)" % (rig.capture_fifo, rig.playback_out, rig.playback_log), flush=True)
        _wait_for_signal(rig.stop)
    elif args.cmd == "speech":
        make_speech(args.text, args.rate, args.out)
    elif args.cmd == "tone":
        with open(args.out, "wb") as f:
            f.write(make_tone(args.ms, args.rate, args.freq, args.amplitude))
    return 0


if __name__ == "__main__":
    sys.exit(main())
