"""Audio for the system tests: the ALSA rig (Tests/rig/alsa_rig.py) around the real tetherd,
and a counting signal whose samples say where in the stream they belong, so that what reaches
the brain can be checked for gaps, repeats and order, not just for length."""

import struct
import sys

from conftest import REPO

sys.path.insert(0, str(REPO / "Tests" / "rig"))
from alsa_rig import CaptureFeeder, Format, Rig, channel, make_speech, make_tone, read_log  # noqa: E402,F401


def counter_pcm(first, count):
    """`count` sample pairs; pair k carries the number first+k as (low 15 bits, high bits + 1),
    so no pair is silent and every pair names its own position."""
    samples = []
    for n in range(first, first + count):
        samples.append(n & 0x7FFF)
        samples.append((n >> 15) + 1)
    return struct.pack("<%dh" % len(samples), *samples)


def decode_counter(pcm):
    """Numbers in a counting stream; silent pairs (0, 0) come back as None."""
    usable = len(pcm) // 4 * 4
    values = struct.unpack("<%dh" % (usable // 2), pcm[:usable])
    out = []
    for low, high in zip(values[0::2], values[1::2]):
        out.append(None if low == 0 and high == 0 else ((high - 1) << 15) | (low & 0x7FFF))
    return out


def counted_runs(numbers):
    """The stream without its silent lead and tail; asserts it is one strictly increasing run
    of consecutive numbers (nothing lost, repeated or reordered inside one connection)."""
    body = [n for n in numbers if n is not None]
    if not body:
        return None
    first_index = numbers.index(body[0])
    last_index = len(numbers) - 1 - numbers[::-1].index(body[-1])
    inner = numbers[first_index:last_index + 1]
    assert None not in inner, "silence inside the counting stream"
    for a, b in zip(inner, inner[1:]):
        assert b == a + 1, f"gap or reorder: {a} then {b}"
    return inner[0], inner[-1]


def check_across_connections(streams, max_repeat):
    """Each connection is gap-free on its own; each next one starts no later than where the
    previous ended (no gap) and repeats at most `max_repeat` numbers (the unacknowledged
    tail). Returns (first, last, repeated) over all."""
    runs = []
    for i, s in enumerate(streams):
        try:
            run = counted_runs(decode_counter(s))
        except AssertionError as e:
            raise AssertionError(f"connection {i + 1} of {len(streams)}: {e}") from None
        if run:
            runs.append(run)
    assert runs, "no counting audio arrived"
    first, last = runs[0]
    repeated = 0
    for start, end in runs[1:]:
        assert start <= last + 1, f"gap across a reconnect: {last} then {start}"
        overlap = last + 1 - start
        assert overlap <= max_repeat, f"{overlap} pairs repeated across a reconnect"
        repeated += max(0, overlap)
        last = max(last, end)
    return first, last, repeated
