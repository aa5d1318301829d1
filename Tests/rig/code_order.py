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
function with an instruction that ran is listed (found by address in nm's symbols, with all
its names: identical code folding leaves several on one function), the busiest first.
Symbols are names, so the file outlives small changes: a name that no longer exists is
skipped (`--no-warn-symbol-ordering`) and a new function is laid out as if the file did not
name it; regenerate after large changes. What it cannot place: functions without a symbol
(the compiler's private helpers, such as closure contexts' destroy functions), about 2 MB of
the 5.4 MB of code still resident, in some thirty 64 KiB windows.

Needs valgrind. Usage: TETHER_BIN_DIR=.build/release python3 Tests/rig/code_order.py OUT
"""

import bisect
import os
import pathlib
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
from bench import daemon  # noqa: E402
from conftest import API_KEY, BIN, wait_until  # noqa: E402
from mock import Mock  # noqa: E402

SECONDS = float(os.environ.get("ORDER_SECONDS", "20"))


def profile(tetherd, protocol, out):
    """Runs tetherd under callgrind for one protocol; the profile goes to `out`."""
    with tempfile.TemporaryDirectory(prefix="tether-order-") as tmp:
        mock = Mock(tmp, "--no-echo", "--api-key", API_KEY)
        fmt = Format(24000, 1, 20)
        rig = Rig(f"{tmp}/rig", capture=fmt, playback=fmt)
        rig.start(capture_pcm=make_speech("Robots like to talk while they listen.", 24000) * 40, lead_ms=0)
        path = "/pcm" if protocol == "pcm-stream" else "/v1/realtime?model=order"
        d = daemon(f"{tmp}/d", mock.url(path), protocol, rig)  # the benchmark's configuration
        # The stripped copy, under callgrind (slow to start).
        d.start(wrapper=["valgrind", "--tool=callgrind", "--dump-instr=yes", f"--callgrind-out-file={out}"],
                binary=tetherd, ready_timeout=120)
        try:
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


def instructions(profiles):
    """{address: instructions executed there} of tetherd's code, over all profiles. Addresses,
    named afterwards from nm's symbols: callgrind names a function by one of its aliases only.
    With --dump-instr=yes a cost line starts with its address: 0x... absolute, +N/-N relative
    to the one before, * the same; a calls= line names the callee, whose own lines follow
    under its fn=."""
    executed = {}
    for path in profiles:
        address, in_tetherd, objects = 0, False, {}
        for line in open(path, errors="replace"):
            if line.startswith(("ob=", "cob=")):  # ob=(id) path, then ob=(id) alone
                ident, _, name = line.split("=", 1)[1].rstrip("\n").partition(" ")
                if name:
                    objects[ident] = name
                if line.startswith("ob="):
                    in_tetherd = objects.get(ident, "").endswith("/tetherd")
                continue
            head = line[:1]
            if head == "0" and line.startswith("0x"):
                address = int(line.split()[0], 16)
            elif head in "+-":
                address += int(line.split()[0])
            elif head != "*":
                continue
            if in_tetherd:
                fields = line.split()
                executed[address] = executed.get(address, 0) + (int(fields[2]) if len(fields) > 2 and fields[2].isdigit() else 0)
    return executed


def functions_that_ran(executed, tetherd):
    """[(instructions, [names])] of the functions containing executed addresses, every alias
    of each (identical code folding leaves several names on one function; the next link may
    keep the section of any of them)."""
    symbols = {}
    for line in subprocess.run(["nm", "-n", "-S", "--defined-only", str(tetherd)], capture_output=True, text=True, check=True).stdout.splitlines():
        fields = line.split()
        if len(fields) == 4 and fields[2] in "tTwW":
            start, size = int(fields[0], 16), int(fields[1], 16)
            symbols.setdefault(start, [size, []])[1].append(fields[3])
            symbols[start][0] = max(symbols[start][0], size)
    starts = sorted(symbols)
    cost = {}
    for address, count in executed.items():
        i = bisect.bisect_right(starts, address) - 1
        if i >= 0 and address < starts[i] + max(symbols[starts[i]][0], 1):
            cost[starts[i]] = cost.get(starts[i], 0) + count
    return [(cost[start], symbols[start][1]) for start in cost], len(symbols)


def main():
    out = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "packaging/tetherd.order")
    with tempfile.TemporaryDirectory(prefix="tether-order-bin-") as tmp:
        tetherd = pathlib.Path(tmp) / "tetherd"
        shutil.copy(BIN / "tetherd", tetherd)
        subprocess.run(["strip", "--strip-debug", str(tetherd)], check=True)
        profiles = []
        for protocol in ("pcm-stream", "openai-realtime"):
            profiles.append(f"{tmp}/{protocol}.callgrind")
            profile(tetherd, protocol, profiles[-1])
        ran, total = functions_that_ran(instructions(profiles), tetherd)
    names = []
    for _, aliases in sorted(ran, key=lambda entry: (-entry[0], entry[1])):
        names += sorted(aliases)
    out.write_text("".join(name + "\n" for name in names))
    print(f"{out}: {len(ran)} functions that ran ({len(names)} names), of {total}")


if __name__ == "__main__":
    main()
