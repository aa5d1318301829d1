"""tetherd's WebSocket client against a fuzzing peer (fuzz_peer.py): 200 connections, each a
run of edge cases a conformant client must survive, then one violation that must be answered
with the right close code; meanwhile the mic streams counting audio that must arrive in order
across all those reconnects, the event loop keeps answering, and nothing leaks.
Issue: hostile inputs never stall or lock out tetherd (WebSocket client conformance)."""

import json
import statistics
import subprocess
import sys

from audio import Format, Rig, check_across_connections, counter_pcm
from conftest import fd_count, rss_kib, wait_until
from fuzz_peer import VIOLATIONS, FuzzPeer

CONNECTIONS = 200
EDGE_CASES = 50


WATCHER = r"""
import json, select, socket, sys, time
path, latencies = sys.argv[1], []
while not select.select([sys.stdin], [], [], 0.02)[0]:
    started = time.monotonic()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(path)
        s.sendall(b'{"id":1,"cmd":"status"}\n')
        answer = b""
        while b"\n" not in answer:
            answer += s.recv(65536)
    latencies.append(time.monotonic() - started)
print(json.dumps(latencies))
"""


def plan(number):
    if number <= CONNECTIONS:
        return EDGE_CASES, (number - 1) % len(VIOLATIONS)
    return 0, None  # the last one stays: the rest of the mic audio goes there


def test_two_hundred_connections_of_malformed_and_edge_case_frames(daemon_factory, tmp_path):
    peer = FuzzPeer(plan)
    seconds = 40
    mic = counter_pcm(1, 24000 * seconds // 2)
    rig = Rig(str(tmp_path / "rig"), capture=Format(24000, 1, 20), playback=Format(24000, 1, 20))
    rig.start(capture_pcm=mic, lead_ms=200)
    latencies = []
    try:
        d = daemon_factory({
            "upstream": {"url": peer.url("/pcm"), "protocol": "pcm-stream", "ping_interval": "1s", "max_frame_bytes": 1 << 20},
            "link": {"backoff": {"initial": "5ms", "max": "20ms", "jitter": 0}, "grace": "30s", "failed_grace": "30s"},
            "audio": {"capture": {"device": "tether_capture"}, "playback": {"device": "tether_playback"}, "echo": "none"},
        }, env=rig.env).start()
        wait_until(lambda: len(peer.connections) >= 2, 10, what="the first connections")
        fds_before, rss_before = fd_count(d.pid), rss_kib(d.pid)
        # status is timed from a process of its own, so this test's peer threads (which share
        # one interpreter lock) do not add their own waits to the figure.
        watcher = subprocess.Popen([sys.executable, "-c", WATCHER, str(d.socket_path)], stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, text=True)
        wait_until(lambda: len(peer.connections) > CONNECTIONS, 120, interval=0.1, what=f"{CONNECTIONS} fuzzed connections")
        out, _ = watcher.communicate("", timeout=10)
        latencies.extend(json.loads(out))
        assert len(latencies) > 20, latencies

        fuzzed = [c for c in peer.connections[:CONNECTIONS]]
        wrong = [(c.number, c.violation, c.expected_close, c.close_code, c.ended, c.frames_sent) for c in fuzzed
                 if c.close_code != c.expected_close]
        assert not wrong, f"{len(wrong)} answered wrongly, e.g. {wrong[:5]}"
        frames = sum(c.frames_sent for c in fuzzed)
        assert frames >= 10_000, frames
        unanswered = [c.number for c in fuzzed if not set(getattr(c, "pings_sent", [])) <= set(c.pongs)]
        assert not unanswered, f"pings left unanswered on connections {unanswered[:5]}"
        for c in fuzzed:
            assert c.close_reason is not None and len(c.close_reason) <= 123
            c.close_reason.decode("utf-8")
        status = d.status()
        assert status["session"]["counters"]["protocol_violations"] >= CONNECTIONS
        # The mic: every sample in capture order across the 200 reconnects (a repeat only of
        # what no pong had acknowledged yet).
        wait_until(rig.feeder.clip_done.is_set, seconds + 30, interval=0.2, what="the mic clip to be fed")
        wait_until(lambda: status_live(d), 10, what="live on the last connection")
        first, last, repeated = wait_until(lambda: counted(peer, mic), 10, interval=0.2, what="all mic audio upstream")
        assert (first, last) == (1, len(mic) // 4), (first, last)
        print(f"fuzz: {frames} frames over {CONNECTIONS} connections; status latency median "
              f"{statistics.median(latencies) * 1000:.1f} ms, p99 {sorted(latencies)[int(len(latencies) * 0.99)] * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms; repeated {repeated} pairs")
        # The release build (what make test runs) answers in about 0.5 ms (median) and 3 ms at
        # worst while it replays the mic backlog into 200 connections; the debug build took
        # 11-22 ms and up to 51 ms with other work on the machine. The issue's bound is 50 ms.
        assert max(latencies) < 0.05, f"the event loop was held {max(latencies) * 1000:.0f} ms (at {latencies.index(max(latencies))} of {len(latencies)}; over 30 ms: {[(i, round(x * 1000)) for i, x in enumerate(latencies) if x > 0.03]})"
        assert fd_count(d.pid) - fds_before <= 4, (fds_before, fd_count(d.pid))
        assert rss_kib(d.pid) - rss_before < 16 * 1024, (rss_before, rss_kib(d.pid))
    finally:
        rig.stop()
        peer.close()


def status_live(d):
    return d.status()["state"] == "live"


def counted(peer, mic):
    streams = [bytes(c.pcm) for c in peer.connections]
    try:
        first, last, repeated = check_across_connections(streams, max_repeat=24000 * 2)
    except AssertionError:
        return None
    return (first, last, repeated) if last == len(mic) // 4 else None
