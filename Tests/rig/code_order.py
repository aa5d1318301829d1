#!/usr/bin/env python3
"""Writes packaging/tetherd.order, the order in which lld lays out tetherd's functions
(`make code-order`; the release link reads it through `--symbol-ordering-file`).

Why: the kernel maps a binary's code into a process 64 KiB around every page it touches
(fault-around), so functions that run scattered among the 9.6 MB of functions that never run
keep most of the binary resident. Of tetherd's functions about 1.4 MB run at all; laid out
together first, the duplex run's peak RSS falls by about 2.8 MB (docs/BENCHMARKS.md, "Lean
binaries").

How: the release tetherd (debug info stripped: valgrind 3.19 cannot read lld's) runs under
callgrind against the mock brain on the ALSA rig, both protocols, through start-up, streaming
both ways, replies, a dropped connection and its reconnect, and control commands; every
function that ran is listed, the busiest first (instructions, its calls' included). Symbols are names, so the file
outlives small changes: a name that no longer exists is skipped (`--no-warn-symbol-ordering`)
and a new function is laid out as if the file did not name it; regenerate after large changes.

Needs valgrind. Usage: TETHER_BIN_DIR=.build/release python3 Tests/rig/code_order.py OUT
"""

import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
os.environ.setdefault("TETHER_BIN_DIR", str(HERE.parents[1] / ".build" / "release"))
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "system"))

from alsa_rig import Format, Rig, make_speech  # noqa: E402
from conftest import API_KEY, BIN, Daemon, wait_until  # noqa: E402
from mock import Mock  # noqa: E402

SECONDS = float(os.environ.get("ORDER_SECONDS", "20"))
FUNCTION = re.compile(r"^c?fn=\((\d+)\)(?: (.*))?$")


def profile(tetherd, protocol, out):
    """Runs tetherd under callgrind for one protocol; the profile goes to `out`."""
    with tempfile.TemporaryDirectory(prefix="tether-order-") as tmp:
        mock = Mock(tmp, "--no-echo", "--api-key", API_KEY)
        fmt = Format(24000, 1, 20)
        rig = Rig(f"{tmp}/rig", capture=fmt, playback=fmt)
        rig.start(capture_pcm=make_speech("Robots like to talk while they listen.", 24000) * 40, lead_ms=0)
        path = "/pcm" if protocol == "pcm-stream" else "/v1/realtime?model=order"
        d = Daemon(f"{tmp}/d", {"upstream": {"url": mock.url(path), "protocol": protocol},
                                "audio": {"capture": {"device": "tether_capture"}, "playback": {"device": "tether_playback"}},
                                "log": {"level": "info"}}, env=rig.env)
        d.stderr_file = open(d.stderr_path, "wb")
        d.proc = subprocess.Popen(["valgrind", "--tool=callgrind", "--demangle=no", f"--callgrind-out-file={out}",
                                   str(tetherd), "--config", str(d.config_path)],
                                  env=d.env, stdout=d.stderr_file, stderr=subprocess.STDOUT)
        try:
            wait_until(lambda: d.socket_path.exists() or d.proc.poll() is not None, 120, what="control socket")
            wait_until(lambda: d.status()["state"] == "live", 60, interval=0.2, what="live")
            started = time.monotonic()
            dropped = False
            while time.monotonic() - started < SECONDS:
                mock.control("say", ms=3000)
                if not dropped and time.monotonic() - started > SECONDS / 2:
                    mock.control("drop")
                    dropped = True
                time.sleep(3)
                d.status()
            d.request("reconnect")
            wait_until(lambda: d.status()["state"] == "live", 60, interval=0.2, what="live again")
        finally:
            d.proc.terminate()
            d.proc.wait(timeout=120)
            mock.close()
            rig.stop()


def functions(profiles):
    """{name: self cost} of every function that ran, over all profiles (callgrind's name
    compression: a function is named once, at its first fn= or cfn=, then by number)."""
    cost = {}
    for path in profiles:
        names, current = {}, None
        for line in open(path, errors="replace"):
            line = line.rstrip("\n")
            m = FUNCTION.match(line)
            if m:
                if m.group(2):
                    names[m.group(1)] = re.sub(r"'\d+$", "", m.group(2))  # 'N: a recursion level
                if line.startswith("fn="):
                    current = names.get(m.group(1))
                    cost.setdefault(current, 0)
                continue
            if current and line[:1] in "0123456789+-":  # a cost line: position, then instructions
                fields = line.split()
                if len(fields) >= 2 and fields[1].isdigit():
                    cost[current] += int(fields[1])
    cost.pop(None, None)
    return cost


def main():
    out = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "packaging/tetherd.order")
    with tempfile.TemporaryDirectory(prefix="tether-order-bin-") as tmp:
        tetherd = pathlib.Path(tmp) / "tetherd"
        shutil.copy(BIN / "tetherd", tetherd)
        subprocess.run(["strip", "--strip-debug", str(tetherd)], check=True)
        defined = set()
        for line in subprocess.run(["nm", "--defined-only", str(tetherd)], capture_output=True, text=True, check=True).stdout.splitlines():
            fields = line.split()
            if len(fields) == 3 and fields[1] in "tTwW":
                defined.add(fields[2])
        profiles = []
        for protocol in ("pcm-stream", "openai-realtime"):
            profiles.append(f"{tmp}/{protocol}.callgrind")
            profile(tetherd, protocol, profiles[-1])
        cost = functions(profiles)
    ran = sorted((name for name in cost if name in defined), key=lambda name: (-cost[name], name))
    out.write_text("".join(name + "\n" for name in ran))
    print(f"{out}: {len(ran)} functions that ran, of {len(defined)}")


if __name__ == "__main__":
    main()
