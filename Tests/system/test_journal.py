"""Native journald records from the real tetherd, read back from a real systemd-journald that
runs in a private mount namespace (tmpfs over /run/systemd and /run/log)."""

import json
import os
import shutil
import subprocess

import pytest

from conftest import API_KEY, BIN

JOURNALD = "/lib/systemd/systemd-journald"

SCRIPT = r"""
set -e
mkdir -p /run/systemd /run/log
mount -t tmpfs tmpfs /run/systemd
mount -t tmpfs tmpfs /run/log
mkdir -p /run/systemd/journal
{journald} >/dev/null 2>&1 &
JOURNALD_PID=$!
for i in $(seq 100); do [ -S /run/systemd/journal/socket ] && [ -S /run/systemd/journal/stdout ] && break; sleep 0.05; done
# 1) log.target: journal, explicitly.
"{tetherd}" --config "{config_journal}" >/dev/null 2>&1 &
PID=$!
for i in $(seq 100); do [ -S "{socket}" ] && break; sleep 0.05; done
sleep 0.5
kill -TERM $PID; wait $PID
# 2) log.target: auto with stderr connected to the journal, as systemd runs services:
#    systemd-cat gives stderr a journal stream; JOURNAL_STREAM names it.
systemd-cat -t tether-auto bash -c 'echo $$ > "{pidfile}"; export JOURNAL_STREAM=$(stat -L -c "%d:%i" /proc/self/fd/2); exec "{tetherd}" --config "{config_auto}"' >/dev/null 2>&1 &
CAT_PID=$!
for i in $(seq 100); do [ -S "{socket_auto}" ] && break; sleep 0.05; done
sleep 0.5
kill -TERM $(cat "{pidfile}")
wait $CAT_PID || true
journalctl -D /run/log/journal -o json --no-pager > "{out}"
kill $JOURNALD_PID; wait $JOURNALD_PID || true
"""


@pytest.mark.skipif(not os.path.exists(JOURNALD) or os.geteuid() != 0, reason="needs root and systemd-journald")
def test_records_are_native_journal_entries_with_fields(tmp_path):
    key = tmp_path / "api-key"
    key.write_text(API_KEY + "\n")
    key.chmod(0o600)
    configs = {}
    for name, target in (("journal", "journal"), ("auto", "auto")):
        config = {"upstream": {"url": "ws://127.0.0.1:9/pcm", "protocol": "pcm-stream", "api_key_file": str(key)},
                  "control": {"socket": str(tmp_path / f"{name}.sock"), "group": None},
                  "network": {"watch": False}, "log": {"level": "info", "target": target}}
        path = tmp_path / f"{name}.yaml"
        path.write_text(json.dumps(config))
        configs[name] = path
    out = tmp_path / "journal.json"
    script = SCRIPT.format(journald=JOURNALD, tetherd=BIN / "tetherd", config_journal=configs["journal"],
                           socket=tmp_path / "journal.sock", config_auto=configs["auto"],
                           socket_auto=tmp_path / "auto.sock", out=out, pidfile=tmp_path / "auto.pid")
    result = subprocess.run(["unshare", "-m", "--propagation", "private", "bash", "-c", script],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    ours = [r for r in records if r.get("SYSLOG_IDENTIFIER") == "tetherd"]
    assert ours, "no tetherd records"
    # Native records: sent through the journal's native protocol, with code locations.
    native = [r for r in ours if r.get("_TRANSPORT") == "journal"]
    assert len(native) >= 4
    state = [r for r in native if r.get("TETHER_STATE")]
    assert state, "logger metadata should become TETHER_* fields"
    record = state[0]
    assert record["PRIORITY"] in ("5", "6")
    assert record["CODE_FILE"].endswith(".swift") and int(record["CODE_LINE"]) > 0 and record["CODE_FUNC"]
    assert all(k.isupper() or k.startswith("_") for k in record)
    # With target auto and stderr on the journal, records are native too (not stdout lines).
    auto = [r for r in native if r.get("TETHER_COMPONENT") and "auto.sock" in json.dumps(r)]
    stream_lines = [r for r in records if r.get("_TRANSPORT") == "stdout" and "control socket ready" in r.get("MESSAGE", "")]
    assert auto, "target auto did not write native records when JOURNAL_STREAM matched stderr"
    assert not stream_lines, "records went to the stream instead of the native protocol"
    assert API_KEY not in out.read_text()
