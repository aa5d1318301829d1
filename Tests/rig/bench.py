#!/usr/bin/env python3
"""`make bench`: the performance figures in docs/BENCHMARKS.md, measured on the release build.

- full duplex: CPU seconds and peak RSS of tetherd over 60 s with the microphone streaming
  and the speaker playing, through the paced ALSA rig, against tether-mock-upstream (ws://),
  for both protocols;
- floor: the same rig and formats driven by ALSA's own `arecord` and `aplay` (no network, no
  processing), what any program pays for full-duplex audio at 20 ms periods on this machine;
  and the floor with the uplink: `aplay` beside a C program that captures and sends the mic in
  40 ms WebSocket frames to a TCP peer (Tests/rig/uplink_floor.c), in one thread and with
  tetherd's hand-off to a sender thread;
- reconnect latency: the brain drops the connection, until session.live;
- barge-in latency: the brain says stop (pcm-stream `clear`), until the speaker is silent;
- rotation (rule 13): make-before-break in a quiet room, from the request to the switch, the
  switch itself once the successor is ready, mic frames sent twice or lost across all of them,
  and what carrying 24 turns adds;
- network (root only): link restore to session.live, blip survival, dead-path detection,
  in network namespaces;
- echo: the full-duplex run with `echo: none` and `echo: cancel` side by side, alternating,
  so the echo canceller's own cost (speexdsp, 200 ms tail) is the difference.

Environment: TETHER_BIN_DIR (default .build/release), BENCH_SECONDS (default 60),
BENCH_PERIOD_MS (the duplex run's ALSA period for both devices, default 20),
BENCH_ONLY=duplex,floor,reconnect,bargein,rotation,network,echo (default all), BENCH_ECHO_ROUNDS
(default 2: none, cancel, none, cancel)."""

import json
import os
import pathlib
import signal
import socket
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = pathlib.Path(__file__).resolve().parent
os.environ.setdefault("TETHER_BIN_DIR", str(HERE.parents[1] / ".build" / "release"))
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "system"))

from alsa_rig import Format, Rig, make_speech, read_log  # noqa: E402
from conftest import API_KEY, Daemon, wait_until  # noqa: E402
from mock import Mock  # noqa: E402

SECONDS = float(os.environ.get("BENCH_SECONDS", "60"))
PERIOD_MS = int(os.environ.get("BENCH_PERIOD_MS", "20"))
ONLY = set(filter(None, os.environ.get("BENCH_ONLY", "duplex,floor,reconnect,bargein,rotation,network,echo").split(",")))
ECHO_ROUNDS = int(os.environ.get("BENCH_ECHO_ROUNDS", "2"))
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def peak_rss_mb(pid):
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def threads(pid):
    """{thread name: (CPU seconds, context switches)}; a switch is a wake-up or a preemption,
    the measure of how often a thread runs. Threads of one name are summed."""
    out = {}
    for task in pathlib.Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
            status = (task / "status").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat.rsplit(")", 1)[1].split()
        switches = sum(int(line.split()[1]) for line in status.splitlines()
                       if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")))
        cpu, sw = out.get(name, (0.0, 0))
        out[name] = (cpu + (int(fields[11]) + int(fields[12])) / TICKS, sw + switches)
    return out


def thread_table(before, after, elapsed):
    """Per thread over the run: CPU seconds per 60 s and wake-ups per second."""
    table = {}
    for name, (cpu, switches) in after.items():
        cpu0, switches0 = before.get(name, (0.0, 0))
        table[name] = {"cpu_s": round((cpu - cpu0) * 60 / elapsed, 3), "wakeups_per_s": round((switches - switches0) / elapsed, 1)}
    return dict(sorted(table.items(), key=lambda item: -item[1]["cpu_s"]))


def memory_map(pid, binary):
    """Resident MB by kind of mapping (/proc/PID/smaps): the binary's code and read-only data,
    its writable data, the heap and other anonymous memory (tetherd's own data), shared
    libraries (in all, and each one of at least 256 KiB), stacks."""
    kinds, kind = {}, None
    for line in pathlib.Path(f"/proc/{pid}/smaps").read_text().splitlines():
        head = line.split()
        if head and "-" in head[0] and len(head) >= 5 and ":" not in head[0]:
            perms, path = head[1], head[5] if len(head) > 5 else ""
            if path == binary:
                kind = "binary code+rodata" if "w" not in perms else "binary data"
            elif path.startswith("/"):
                kind = "library " + path.rsplit("/", 1)[-1].split(".so")[0]
            elif path == "[stack]":
                kind = "stacks"
            else:
                kind = "heap+anonymous"
        elif line.startswith("Rss:") and kind:
            kinds[kind] = kinds.get(kind, 0) + int(head[1])
    libraries = sum(v for k, v in kinds.items() if k.startswith("library "))
    out = {k: round(v / 1024, 2) for k, v in sorted(kinds.items()) if not k.startswith("library ") or v >= 256}
    out["shared libraries"] = round(libraries / 1024, 2)
    return out


def daemon(work, url, protocol, rig, **extra):
    config = {"upstream": {"url": url, "protocol": protocol},
              "audio": {"capture": {"device": "tether_capture"}, "playback": {"device": "tether_playback"}},
              "log": {"level": "info"}}
    for key, value in extra.items():
        config.setdefault(key, {}).update(value)
    return Daemon(work, config, env=rig.env)


def duplex(protocol, echo="gate", replies=True):
    """60 s of full duplex: speech into the microphone all along, replies playing all along
    (`echo`: the audio.echo mode. `gate`, the default until `cancel` became it, for the figures
    of docs/BENCHMARKS.md's duplex tables to stay comparable; the canceller's cost on top is
    what `echo_cost` measures). Without `replies`, the robot only listens: the speaker is
    silent, as it is most of a robot's day."""
    with tempfile.TemporaryDirectory(prefix="tether-bench-") as tmp:
        mock = Mock(tmp, "--no-echo", "--api-key", API_KEY)
        fmt = Format(24000, 1, PERIOD_MS)
        rig = Rig(f"{tmp}/rig", capture=fmt, playback=fmt)
        speech = make_speech("Robots like to talk while they listen, and listen while they talk.", 24000)
        rig.start(capture_pcm=speech * int(SECONDS / 3 + 10), lead_ms=0)
        path = "/pcm" if protocol == "pcm-stream" else "/v1/realtime?model=bench"
        period = f"{PERIOD_MS}ms"
        audio = {"capture": {"device": "tether_capture", "period": period},
                 "playback": {"device": "tether_playback", "period": period}, "echo": echo}
        d = daemon(f"{tmp}/d", mock.url(path), protocol, rig, audio=audio).start()
        try:
            d.wait_state("live")
            say_every = 5.0
            if replies:
                mock.control("say", ms=int(say_every * 1000))
            time.sleep(5)  # warm up: connections, buffers, first response
            cpu0, t0 = cpu_seconds(d.pid), time.monotonic()
            threads0 = threads(d.pid)
            mock_cpu0 = cpu_seconds(mock.proc.pid)
            next_say = t0
            while time.monotonic() - t0 < SECONDS:
                if replies and time.monotonic() >= next_say:
                    mock.control("say", ms=int(say_every * 1000))
                    next_say += say_every
                time.sleep(0.05)
            cpu = cpu_seconds(d.pid) - cpu0
            elapsed = time.monotonic() - t0
            per_thread = thread_table(threads0, threads(d.pid), elapsed)
            memory = memory_map(d.pid, os.path.realpath(os.path.join(os.environ["TETHER_BIN_DIR"], "tetherd")))
            status = d.status()
            played_s = len(rig.played()) / 48000
            return {"protocol": protocol, "echo": status["audio"]["echo"], "period_ms": PERIOD_MS, "seconds": round(elapsed, 1), "cpu_s": round(cpu * 60 / elapsed, 3),
                    "peak_rss_mb": round(peak_rss_mb(d.pid), 1), "mock_cpu_s": round(cpu_seconds(mock.proc.pid) - mock_cpu0, 2),
                    "uplink_s": round(mock.status()["received_pcm_bytes"] / 48000, 1), "played_s": round(played_s, 1),
                    "underruns": status["audio"]["playback"]["underruns"], "xruns": status["audio"]["capture"]["xruns"],
                    "threads": per_thread, "resident_mb": memory}
        finally:
            d.close()
            mock.close()
            rig.stop()


def echo_cost(rounds=ECHO_ROUNDS):
    """The canceller's CPU: pcm-stream full duplex with echo none and cancel, alternating; then
    the robot listening (speaker silent) with gate and cancel, once each: what making `cancel`
    the default costs a robot that is not talking."""
    runs = {"none": [], "cancel": []}
    for _ in range(rounds):
        for mode in ("none", "cancel"):
            run = duplex("pcm-stream", echo=mode)
            assert run["echo"]["mode"] == mode, run["echo"]
            runs[mode].append(run)
    none = statistics.median(r["cpu_s"] for r in runs["none"])
    cancel = statistics.median(r["cpu_s"] for r in runs["cancel"])
    capture = [r["threads"].get("tether-capture", {}).get("cpu_s") for r in runs["cancel"] + runs["none"]]
    return {"none_cpu_s": [r["cpu_s"] for r in runs["none"]], "cancel_cpu_s": [r["cpu_s"] for r in runs["cancel"]],
            "median_none": none, "median_cancel": cancel, "cancel_minus_none": round(cancel - none, 3),
            "capture_thread_cpu_s (cancel..., none...)": capture,
            "erle_db": [r["echo"].get("erle_db") for r in runs["cancel"]],
            "peak_rss_mb": {m: [r["peak_rss_mb"] for r in runs[m]] for m in runs},
            "listening_cpu_s": {m: duplex("pcm-stream", echo=m, replies=False)["cpu_s"] for m in ("gate", "cancel")}}


def beside_the_rig(recorder):
    """Programs other than tetherd on the duplex rig (formats, periods, speech, warm-up):
    `recorder(tool)`, the capture side's command given the ALSA tools' format arguments, and
    `aplay` playing a long clip beside it. Returns, per program (capture side, aplay), CPU-s
    per 60 s, its threads (`thread_table`) and peak RSS."""
    fmt = Format(24000, 1, 20)
    tool = ["-q", "-t", "raw", "-f", "S16_LE", "-r", "24000", "-c", "1",
            f"--period-size={fmt.period_frames}", f"--buffer-size={4 * fmt.period_frames}"]
    with tempfile.TemporaryDirectory(prefix="tether-bench-") as tmp:
        rig = Rig(f"{tmp}/rig", capture=fmt, playback=fmt)
        speech = make_speech("Robots like to talk while they listen, and listen while they talk.", 24000)
        clip = pathlib.Path(tmp, "reply.raw")
        clip.write_bytes(speech * int(SECONDS / 3 + 10))
        rig.start(capture_pcm=speech * int(SECONDS / 3 + 10), lead_ms=0)
        env = dict(os.environ, **rig.env)
        procs = [subprocess.Popen(recorder(tool), env=env),
                 subprocess.Popen(["aplay", "-D", "tether_playback", *tool, str(clip)], env=env)]
        try:
            time.sleep(5)  # the same warm-up as the duplex run
            cpu0, t0 = [cpu_seconds(p.pid) for p in procs], time.monotonic()
            threads0 = [threads(p.pid) for p in procs]
            time.sleep(SECONDS)
            cpu = [cpu_seconds(p.pid) - c for p, c in zip(procs, cpu0)]
            elapsed = time.monotonic() - t0
            for p in procs:
                assert p.poll() is None, f"{p.args[0]} ended during the run"
            return [{"cpu_s": round(c * 60 / elapsed, 3), "threads": thread_table(t, threads(p.pid), elapsed),
                     "peak_rss_mb": round(peak_rss_mb(p.pid), 1)} for p, c, t in zip(procs, cpu, threads0)]
        finally:
            for p in procs:
                p.terminate()
                p.wait()
            rig.stop()


def floor():
    """arecord and aplay at once on the duplex rig: the cost of 20 ms full-duplex audio alone."""
    if not (shutil.which("arecord") and shutil.which("aplay")):
        return {"skipped": "alsa-utils is not installed"}
    arecord, aplay = beside_the_rig(lambda tool: ["arecord", "-D", "tether_capture", *tool, os.devnull])
    wakeups = sum(row["wakeups_per_s"] for run in (arecord, aplay) for row in run["threads"].values())
    return {"arecord_cpu_s": arecord["cpu_s"], "aplay_cpu_s": aplay["cpu_s"],
            "total_cpu_s": round(arecord["cpu_s"] + aplay["cpu_s"], 3), "wakeups_per_s": round(wakeups, 1),
            "peak_rss_mb": [arecord["peak_rss_mb"], aplay["peak_rss_mb"]]}


def tcp_sink():
    """A TCP peer on loopback that reads and forgets (threads of this process, whose CPU is not
    counted, as the mock's is not); returns its port."""
    server = socket.create_server(("127.0.0.1", 0))

    def drain(connection):
        with connection:
            while connection.recv(65536):
                pass

    def serve():
        while True:
            connection, _ = server.accept()
            threading.Thread(target=drain, args=(connection,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return server.getsockname()[1]


def uplink_floor():
    """The floor with the uplink (Tests/rig/uplink_floor.c): the microphone captured and sent in
    40 ms WebSocket frames to a TCP peer by a C program with nothing else in it, one thread and
    tetherd's two (capture thread handing off to a sender), with `aplay` playing beside it as in
    the floor. What tetherd's design costs on this rig, apart from what its code does."""
    # Any C compiler: Swift's toolchain brings clang.
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("clang")
    if not (compiler and shutil.which("aplay")):
        return {"skipped": "no C compiler, or aplay is not installed"}
    port = tcp_sink()
    results = {}
    with tempfile.TemporaryDirectory(prefix="tether-bench-") as tmp:
        program = pathlib.Path(tmp, "uplink_floor")
        subprocess.run([compiler, "-O2", "-o", str(program), str(HERE / "uplink_floor.c"), "-lasound", "-lpthread"], check=True)
        for design in ("one-thread", "hand-off"):
            # The program takes its format from its source (tetherd's defaults), not from `tool`.
            uplink, aplay = beside_the_rig(lambda tool: [str(program), design, "tether_capture", str(port)])
            results[design] = {"uplink_cpu_s": uplink["cpu_s"], "aplay_cpu_s": aplay["cpu_s"],
                               "total_cpu_s": round(uplink["cpu_s"] + aplay["cpu_s"], 3), "threads": uplink["threads"]}
    return results


def reconnect(runs=20):
    with tempfile.TemporaryDirectory(prefix="tether-bench-") as tmp:
        mock = Mock(tmp, "--no-echo", "--api-key", API_KEY)
        rig = Rig(f"{tmp}/rig")
        rig.start(capture_pcm=b"", lead_ms=0)
        d = daemon(f"{tmp}/d", mock.url("/v1/realtime?model=bench"), "openai-realtime", rig).start()
        try:
            d.wait_state("live")
            events = d.events(["session"])
            samples = []
            for _ in range(runs):
                time.sleep(0.5)
                dropped = time.monotonic()
                mock.control("drop")
                live = events.wait_for("session.live", timeout=5, after=dropped)
                samples.append((live["_t"] - dropped) * 1000)
            return summary(samples)
        finally:
            d.close()
            mock.close()
            rig.stop()


def rotation(runs=20):
    """`debug-rotate` (a test hook) in a quiet room, where every moment is a quiet moment: the
    time from the request to `conversation.rotated` (dial, handshake, seeding, the switch) with 0
    and with 24 carried turns, and `waited_ms` (from the successor being ready to the switch:
    the old connection acknowledging its last mic frames). Then every frame is checked."""
    from test_conversation import check_concatenation, quiet
    with tempfile.TemporaryDirectory(prefix="tether-bench-") as tmp:
        mock = Mock(tmp, "--no-echo", "--api-key", API_KEY)
        rig = Rig(f"{tmp}/rig")
        clip = quiet(120_000, seed=7)
        rig.start(capture_pcm=clip, lead_ms=0)
        # No echo gate: the turns' replies would silence the mic, and every frame must be checkable.
        config = {"upstream": {"url": mock.url("/v1/realtime?model=bench"), "protocol": "openai-realtime"},
                  "audio": {"capture": {"device": "tether_capture"}, "playback": {"device": "tether_playback"},
                            "echo": "none"},
                  "log": {"level": "info"}}
        d = Daemon(f"{tmp}/d", config, env={**rig.env, "TETHER_TEST_FAULTS": "1"}).start()
        try:
            d.wait_state("live")
            events = d.events(["session"])
            out = {}
            for carried in (0, 24):
                while d.status()["conversation"]["items"] < carried:
                    items = d.status()["conversation"]["items"]
                    mock.control("say", ms=100)
                    wait_until(lambda: d.status()["conversation"]["items"] > items, 5, what="a turn")
                totals, waits = [], []
                for _ in range(runs):
                    wait_until(lambda: d.status()["audio"]["playback"]["state"] != "playing", 5, what="a silent speaker")
                    asked = time.monotonic()
                    assert d.request("debug-rotate")["ok"]
                    rotated = events.wait_for("conversation.rotated", timeout=10, after=asked)
                    assert rotated["data"]["carried_items"] == carried, rotated
                    totals.append((rotated["_t"] - asked) * 1000)
                    waits.append(rotated["data"]["waited_ms"])
                out[f"request_to_switch_ms_{carried}_turns"] = summary(totals)
                out[f"ready_to_switch_ms_{carried}_turns"] = summary(waits)
            time.sleep(0.5)
            covered, repeated = check_concatenation(clip, mock.connection_pcm())
            out["sessions"] = len(mock.connection_pcm())
            out["frames_sent_twice"] = repeated // 960
            out["frames_lost"] = 0  # check_concatenation fails on any gap
            out["seconds_checked"] = round(covered / 48000, 1)
            return out
        finally:
            d.close()
            mock.close()
            rig.stop()


def bargein(runs=10):
    fmt = Format(48000, 2, 20)
    with tempfile.TemporaryDirectory(prefix="tether-bench-") as tmp:
        mock = Mock(tmp, "--no-echo", "--rate", "48000", "--api-key", API_KEY)
        rig = Rig(f"{tmp}/rig", capture=Format(48000, 1, 20), playback=fmt)
        rig.start(capture_pcm=b"", lead_ms=0)
        d = daemon(f"{tmp}/d", mock.url("/pcm"), "pcm-stream", rig,
                   audio={"capture": {"device": "tether_capture", "rate": 48000},
                          "playback": {"device": "tether_playback", "rate": 48000, "channels": 2}}).start()
        try:
            d.wait_state("live")
            events = d.events(["audio"])
            after_ms, silent_ms = [], []
            for _ in range(runs):
                asked = time.monotonic()
                mock.control("say", ms=3000)
                events.wait_for("response.audio.started", timeout=5, after=asked)
                time.sleep(0.5)
                stop_ns = time.monotonic_ns()
                mock.control("speech-started")
                events.wait_for("response.audio.done", timeout=5, after=stop_ns / 1e9)
                time.sleep(0.3)
                raw = rig.played()
                late = [(t, n) for t, offset, n in read_log(rig.playback_log)
                        if t > stop_ns and any(raw[offset:offset + n])]
                after_ms.append(fmt.bytes_to_ms(sum(n for _, n in late)))
                silent_ms.append(((late[-1][0] - stop_ns) / 1e6) if late else 0.0)
            return {"audio_after_ms": summary(after_ms), "last_audio_after_ms": summary(silent_ms)}
        finally:
            d.close()
            mock.close()
            rig.stop()


def network(runs=5):
    if os.geteuid() != 0:
        return {"skipped": "needs root for network namespaces"}
    from netns import RobotAndBrain
    from peers import PythonPeer
    restore, blips, detect = [], [], []
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="tether-bench-") as tmp:
            net = RobotAndBrain()
            brain = PythonPeer(api_key=API_KEY, host=net.BRAIN_IP, netns=net.brain)
            # Defaults throughout (ping 3 s, grace 3 s, debounce 250 ms, probe 2 s), watching rtnetlink.
            d = Daemon(f"{tmp}/d", {"upstream": {"url": brain.url("/pcm"), "protocol": "pcm-stream"},
                                    "network": {"watch": True}}, netns=net.robot)
            try:
                d.start()
                d.wait_state("live")
                events = d.events(["session", "network"])
                # A 1.5 s blip: ridden out as one link.blip, no session.lost?
                down = time.monotonic()
                net.carrier(False)
                time.sleep(1.5)
                net.carrier(True)
                time.sleep(4.0)
                blips.append(len(events.all("link.blip")) == 1 and not events.all("session.lost"))
                # A 5 s outage, past grace: from `ip link set up` to session.live.
                d.wait_state("live")
                net.carrier(False)
                time.sleep(5)
                up = time.monotonic()
                net.carrier(True)
                live = events.wait_for("session.live", timeout=5, after=up)
                restore.append((live["_t"] - up) * 1000)
                # A silently dead path with the default 3 s ping: until the session degrades.
                time.sleep(1)
                cut = time.monotonic()
                net.blackhole_robot_address()
                degraded = events.wait_for("session.state", lambda e: e["data"]["to"] == "degraded", timeout=10, after=cut)
                detect.append((degraded["_t"] - cut) * 1000)
            finally:
                d.close()
                brain.close()
                net.close()
    return {"restore_to_live_ms": summary(restore), "blips_survived": f"{sum(blips)}/{len(blips)}",
            "dead_path_detected_ms": summary(detect)}


def stripped_sizes():
    """The binaries as `make install` puts them (stripped), in MB."""
    sizes = {}
    with tempfile.TemporaryDirectory(prefix="tether-bench-") as tmp:
        for name in ("tetherd", "tetherctl"):
            source = pathlib.Path(os.environ["TETHER_BIN_DIR"], name)
            if not source.exists() or not shutil.which("strip"):
                continue
            target = pathlib.Path(tmp, name)
            subprocess.run(["strip", "-o", str(target), str(source)], check=True)
            sizes[name] = round(target.stat().st_size / 1e6, 1)
    return sizes


def summary(samples):
    ordered = sorted(samples)
    return {"median": round(statistics.median(ordered), 1), "p90": round(ordered[int(0.9 * (len(ordered) - 1))], 1),
            "max": round(ordered[-1], 1), "runs": len(ordered)}


def main():
    results = {"machine": os.uname().machine, "cpus": os.cpu_count(), "bin": os.environ["TETHER_BIN_DIR"]}
    if "duplex" in ONLY:
        results["duplex"] = [duplex("pcm-stream"), duplex("openai-realtime")]
    if "floor" in ONLY:
        results["floor"] = floor()
        results["uplink_floor"] = uplink_floor()
        if "duplex" in ONLY and "total_cpu_s" in results["floor"]:
            for run in results["duplex"]:
                run["cpu_vs_floor"] = round(run["cpu_s"] / results["floor"]["total_cpu_s"], 2)
                for design, reference in results["uplink_floor"].items():
                    if isinstance(reference, dict):
                        run[f"cpu_vs_uplink_floor_{design}"] = round(run["cpu_s"] / reference["total_cpu_s"], 2)
    results["stripped_mb"] = stripped_sizes()
    if "reconnect" in ONLY:
        results["reconnect_ms"] = reconnect()
    if "bargein" in ONLY:
        results["bargein"] = bargein()
    if "rotation" in ONLY:
        results["rotation"] = rotation()
    if "network" in ONLY:
        results["network"] = network()
    if "echo" in ONLY:
        results["echo"] = echo_cost()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)
    main()
