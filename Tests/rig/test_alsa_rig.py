"""Self-test of the ALSA rig with stock ALSA tools (arecord, aplay): the rig itself must be
right before anything is measured with it.

    python3 -m unittest discover -s Tests/rig -p 'test_*.py' -v
"""

import os
import shutil
import subprocess
import tempfile
import threading
import time
import unittest

import alsa_rig
from alsa_rig import Format, PlaybackReader, Rig, read_log

HAVE_TOOLS = all(shutil.which(t) for t in ("arecord", "aplay"))


def alsa(env, tool, device, fmt, *args):
    cmd = [tool, "-q", "-D", device, "-t", "raw", "-f", "S16_LE", "-r", str(fmt.rate),
           "-c", str(fmt.channels), "--period-size=%d" % fmt.period_frames,
           "--buffer-size=%d" % (4 * fmt.period_frames)] + list(args)
    return subprocess.run(cmd, env=env, capture_output=True, timeout=30)


@unittest.skipUnless(HAVE_TOOLS, "alsa-utils not installed")
class RigTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="tether-rig-selftest-")
        self.fmt = Format(24000, 1, 20)

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_capture_is_bit_exact_and_real_time(self):
        clip = alsa_rig.make_tone(500, 24000, 523)
        rig = Rig(os.path.join(self.tmp, "r"), self.fmt, self.fmt).start(clip, lead_ms=100)
        try:
            out = os.path.join(self.tmp, "cap.raw")
            start = time.monotonic()
            r = alsa(dict(os.environ, **rig.env), "arecord", "tether_capture", self.fmt, "-d", "1", out)
            took = time.monotonic() - start
            self.assertEqual(r.returncode, 0, r.stderr)
        finally:
            rig.stop()
        with open(out, "rb") as f:
            got = f.read()
        self.assertEqual(len(got), 48000)
        self.assertIn(clip, got)
        self.assertGreater(took, 0.85, "paced in real time, not read at disk speed")

    def test_playback_is_recorded_intact_and_paced(self):
        clip = alsa_rig.make_tone(1000, 24000, 330)
        src = os.path.join(self.tmp, "clip.raw")
        with open(src, "wb") as f:
            f.write(clip)
        rig = Rig(os.path.join(self.tmp, "r"), self.fmt, self.fmt).start()
        try:
            self.assertEqual(rig.reader.pipe_bytes, 4096)
            r = alsa(dict(os.environ, **rig.env), "aplay", "tether_playback", self.fmt, src)
            self.assertEqual(r.returncode, 0, r.stderr)
            deadline = time.monotonic() + 2
            while len(rig.played()) < len(clip) and time.monotonic() < deadline:
                time.sleep(0.02)
        finally:
            rig.stop()
        self.assertEqual(rig.played()[:len(clip)], clip)
        reads = read_log(rig.playback_log)
        span = (reads[-1][0] - reads[0][0]) / 1e9
        self.assertAlmostEqual(span, 1.0, delta=0.1)

    def test_removed_feeder_is_a_missing_device(self):
        rig = Rig(os.path.join(self.tmp, "r"), self.fmt, self.fmt).start()
        rig.feeder.remove()
        try:
            r = alsa(dict(os.environ, **rig.env), "arecord", "tether_capture", self.fmt, "-d", "1", os.devnull)
        finally:
            rig.stop()
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b"capture.fifo", r.stderr)

    def test_reader_clock_runs_on_when_the_reader_is_late_and_restarts_when_starved(self):
        """The speaker's clock (what on_read is told) is the reader's schedule: a reader held up
        while the next chunk waits in the pipe keeps it (and catches up); a pipe that ran dry
        starts it over."""
        fmt = self.fmt
        r, w = os.pipe()
        emitted = []
        gap_at = 30

        def on_read(t, data):
            emitted.append((t, len(data)))
            if len(emitted) == 10:
                time.sleep(0.04)  # the reader is late for the next chunk, which is waiting

        reader = PlaybackReader(fmt, os.path.join(self.tmp, "out.raw"), fd=r, on_read=on_read).start()

        def writer():
            for k in range(40):
                if k == gap_at:
                    time.sleep(0.2)  # the device goes quiet: the pipe (a page) runs dry
                os.write(w, bytes(fmt.period_bytes))

        t = threading.Thread(target=writer)
        t.start()
        t.join(timeout=10)
        deadline = time.monotonic() + 5
        while sum(n for _, n in emitted) < 40 * fmt.period_bytes and time.monotonic() < deadline:
            time.sleep(0.01)
        reader.stop()
        os.close(w)
        os.close(r)
        steps = [(b[0] - a[0]) / 1e6 for a, b in zip(emitted, emitted[1:])]
        starts = [0]
        for i, (_, n) in enumerate(emitted[:-1]):
            starts.append(starts[-1] + n)
        restart = next(i for i, s in enumerate(starts) if s >= gap_at * fmt.period_bytes)
        ms = [n / fmt.bytes_per_second * 1000 for _, n in emitted]
        for i, step in enumerate(steps):
            if i + 1 == restart:
                self.assertGreater(step, ms[i] + 50, "a dry pipe restarts the clock")
            else:
                self.assertAlmostEqual(step, ms[i], delta=0.001)

    def test_stereo_helpers(self):
        mono = alsa_rig.make_tone(10, 24000)
        stereo = alsa_rig.interleave_mono(mono, 2)
        self.assertEqual(len(stereo), 2 * len(mono))
        self.assertEqual(alsa_rig.channel(stereo, 2, 0), mono)
        self.assertEqual(alsa_rig.channel(stereo, 2, 1), mono)


if __name__ == "__main__":
    unittest.main()
