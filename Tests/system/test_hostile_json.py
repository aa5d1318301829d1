"""A brain (or anyone on the path of a ws:// brain) sends 4 MiB text frames built to be
expensive to parse: one object of half a million keys, a million tiny containers, a quarter
million numbers, escapes, one long string, nesting past the depth limit. tetherd must keep
answering `status` within 100 ms throughout, keep the mic flowing upstream in order, stay live
on the same connection, and count each frame (unknown type or malformed).
Issue: hostile inputs never stall or lock out tetherd (linear-time, bounded parsing)."""

import json
import subprocess
import sys
import threading

from audio import Format, Rig, counted_runs, counter_pcm, decode_counter
from conftest import wait_until
from fuzz_peer import FuzzPeer, frame
from test_websocket_fuzz import WATCHER

SIZE = 4 * 1024 * 1024 - 64  # under the default max_frame_bytes (4 MiB)


def padded(head, unit, tail):
    """head + unit repeated + tail, as close to SIZE as whole units allow."""
    return head + unit * ((SIZE - len(head) - len(tail)) // len(unit)) + tail


def keys():
    body, n, size = [], 0, 0
    while size < SIZE - 40:
        item = b'"k%d":1,' % n
        body.append(item)
        size += len(item)
        n += 1
    return b'{"type":"hostile.keys",' + b"".join(body) + b'"end":1}'


SHAPES = {
    "keys": keys,
    "containers": lambda: padded(b'{"type":"hostile.containers","a":[', b"[1,2],[],{},", b"0]}"),
    "numbers": lambda: padded(b'{"type":"hostile.numbers","a":[', b"12345.678e-3,", b"0]}"),
    "escapes": lambda: padded(b'{"type":"hostile.escapes","s":"', b"\\u00e9", b'"}'),
    "string": lambda: padded(b'{"type":"hostile.string","s":"', b"a", b'"}'),
    "nesting": lambda: padded(b"", b"[", b""),
}


def test_four_mib_frames_of_every_shape_leave_status_and_uplink_flowing(daemon_factory, tmp_path):
    hostile = [frame(1, SHAPES[name]()) for name in SHAPES]
    go = threading.Event()

    def plan(number):
        # The frames wait until status is being timed (well inside the ping deadline).
        go.wait(10)
        return (0, None, hostile) if number == 1 else (0, None)

    peer = FuzzPeer(plan)
    seconds = 20
    mic = counter_pcm(1, 24000 * seconds)
    rig = Rig(str(tmp_path / "rig"), capture=Format(24000, 1, 20), playback=Format(24000, 1, 20))
    rig.start(capture_pcm=mic, lead_ms=200)
    try:
        d = daemon_factory({
            "upstream": {"url": peer.url("/pcm"), "protocol": "pcm-stream", "ping_interval": "1s"},
            "audio": {"capture": {"device": "tether_capture"}, "playback": {"device": "tether_playback"}, "echo": "none"},
        }, env=rig.env)
        watcher = None
        d.start()
        watcher = subprocess.Popen([sys.executable, "-c", WATCHER, str(d.socket_path)], stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, text=True)
        go.set()
        counters = lambda: d.status()["session"]["counters"]
        # Five frames with types tetherd does not know, and one nested past the depth limit.
        wait_until(lambda: counters()["unknown_events"] >= 5 and counters()["malformed_messages"] >= 1, 60,
                   interval=0.2, what="every hostile frame handled")
        out, _ = watcher.communicate("", timeout=10)
        latencies = json.loads(out)
        c = peer.connections[0]
        heard = len(c.pcm)
        wait_until(lambda: len(c.pcm) >= heard + 24000 * 2, 5, what="the uplink still flowing after the frames")

        assert len(peer.connections) == 1, "the hostile frames cost the connection"
        assert d.status()["state"] == "live"
        assert counters()["unknown_events"] == 5 and counters()["malformed_messages"] == 1, counters()
        run = counted_runs(decode_counter(bytes(c.pcm)))
        assert run and run[0] == 1, run
        assert len(latencies) > 10, latencies
        print(f"hostile JSON: {len(latencies)} status answers, max {max(latencies) * 1000:.1f} ms")
        assert max(latencies) < 0.1, f"status took {max(latencies) * 1000:.0f} ms during the hostile frames"
    finally:
        if watcher and watcher.poll() is None:
            watcher.kill()
        rig.stop()
        peer.close()
