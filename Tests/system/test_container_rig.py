"""Self-test of the systemd container rig (container.py): it boots a real systemd as PID 1,
runs commands in it, starts Type=notify units (a unit file and a transient one) that use
systemd-notify, reads their journal as JSON, proves the sandboxing is real (seccomp,
device and IP filters), boots inside a network namespace, and stops without leaving a
mount, a cgroup or a process behind. Every wait polls with a deadline."""

import os
import pathlib
import socket
import subprocess
import threading
import time
import uuid

import pytest

from container import CGROUP_PREFIX, CommandFailed, ContainerError, cgroup_roots, wait_until

HERE = pathlib.Path(__file__).resolve()
REPO = HERE.parents[2]

NOTIFY_UNIT = """\
[Unit]
Description=rig notify probe

[Service]
Type=notify
NotifyAccess=all
ExecStart=/bin/sh -c 'echo "rig-notify: starting"; sleep 0.3; systemd-notify --ready --status=serving; echo "rig-notify: ready"; exec sleep infinity'
"""


def rig_mounts():
    """The host's mounts that the rig could leave behind: overlays, tmpfs named tether-rig*,
    anything on /run/systemd, under /sys/fs/cgroup or in a temporary directory. (Only
    those: other suites running at the same time add and remove netns mounts.)"""
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            point, (fstype, source) = left.split()[4], right.split()[:2]
            if fstype == "overlay" or source.startswith("tether-rig") or point.startswith(("/run/systemd", "/sys/fs/cgroup", "/tmp", "/var/tmp")):
                found.append(line.split(" ", 4)[4])  # without the mount ids
    return sorted(found)


def overlay_count():
    """What `mount | grep -c overlay` says."""
    mounts = subprocess.run(["mount"], capture_output=True, text=True, check=True).stdout
    return sum("overlay" in line for line in mounts.splitlines())


def rig_cgroups():
    found = []
    for _, root in cgroup_roots():
        found += [os.path.join(root, n) for n in os.listdir(root) if n.startswith(CGROUP_PREFIX)]
    return found


def unit_show(ct, unit, *props):
    out = ct.systemctl("show", unit, *(f"-p{p}" for p in props)).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def transient(ct, *props_and_argv, **kw):
    """systemd-run --wait --pipe: a transient service, its stdout/stderr and exit status."""
    return ct.run("systemd-run", "--wait", "--pipe", "--quiet", *props_and_argv, check=False, **kw)


# --- boot and commands -------------------------------------------------------------------

def test_systemd_is_pid1_and_the_boot_is_clean(booted_container):
    ct = booted_container
    assert ct.run("cat", "/proc/1/comm").stdout.strip() == "systemd"
    assert ct.run("systemd-detect-virt").stdout.strip() == "systemd-nspawn"
    assert ct.state == "running", f"failed units: {ct.failed_units}\n{ct.log_tail()}"
    assert ct.failed_units == []
    assert ct.systemctl("is-active", "tether-rig.target").stdout.strip() == "active"
    # nothing the host enabled starts inside
    for unit in ("postgresql.service", "apt-daily.timer", "getty@tty1.service", "multi-user.target"):
        assert ct.systemctl("is-active", unit, check=False).stdout.strip() == "inactive", unit
    print(f"boot took {ct.boot_seconds:.3f} s")
    assert ct.boot_seconds < 20


def test_run_output_status_input_env_user_cwd(booted_container):
    ct = booted_container
    r = ct.sh("echo out; echo err >&2; exit 3", check=False)
    assert (r.returncode, r.stdout, r.stderr) == (3, "out\n", "err\n")
    with pytest.raises(CommandFailed) as failed:
        ct.sh("echo why >&2; exit 4")
    assert failed.value.returncode == 4 and "why" in str(failed.value)
    assert ct.run("cat", input="piped in").stdout == "piped in"
    assert ct.run("cat", input=b"\x00\x01", text=False).stdout == b"\x00\x01"
    env = ct.run("env", env={"RIG_PROBE": "1"}).stdout.splitlines()
    assert "RIG_PROBE=1" in env
    assert not [line for line in env if line.startswith(("PYTEST_", "VIRTUAL_ENV"))], env
    assert ct.run("id", "-un", user="nobody").stdout.strip() == "nobody"
    assert ct.run("pwd", cwd="/work/main").stdout.strip() == "/work/main"
    assert ct.run("hostname").stdout.strip() == ct.name


def test_a_timed_out_command_is_killed_inside(booted_container):
    ct = booted_container
    marker = f"rig-timeout-{uuid.uuid4().hex[:6]}"
    started = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired):
        ct.sh(f"exec -a {marker} sleep 30", timeout=0.5)
    assert time.monotonic() - started < 5
    wait_until(lambda: ct.run("pgrep", "-f", marker, check=False).returncode == 1, 5,
               what="the timed-out command to be gone")
    assert "<defunct>" not in ct.run("ps", "-e", "-o", "stat=,comm=").stdout


# --- files -------------------------------------------------------------------------------

def test_files_inside_do_not_change_the_host(new_container):
    probe = pathlib.Path(f"/var/tmp/tether-rig-probe-{uuid.uuid4().hex[:8]}")
    probe.write_text("host version\n")
    inside_only = pathlib.Path(f"/etc/tether-rig-probe-{uuid.uuid4().hex[:8]}")
    # (Not in the repository: a clone under /tmp is only visible inside when bound in.)
    lower_probe = pathlib.Path(f"/opt/tether-rig-probe-{uuid.uuid4().hex[:8]}")
    mounts_before, overlays_before = rig_mounts(), overlay_count()
    try:
        with new_container(boot=False) as ct:
            # the host's root file system is visible, byte for byte
            assert ct.read_file("/etc/os-release") == pathlib.Path("/etc/os-release").read_bytes()
            assert "env" in ct.run("ls", "/usr/bin").stdout.split()
            # written inside: visible inside, absent outside
            ct.write_file(inside_only, "inside\n", mode=0o600)
            ct.write_file(lower_probe, "inside\n")
            assert ct.run("cat", str(inside_only)).stdout == "inside\n"
            assert ct.run("stat", "-c", "%a %U", str(inside_only)).stdout.split() == ["600", "root"]
            assert ct.path(inside_only).read_text() == "inside\n"
            assert not inside_only.exists() and not lower_probe.exists()
            # a host file changed and deleted inside stays as it was outside
            assert ct.read_file(probe) == b"host version\n"
            ct.sh(f"echo changed > {probe} && cat {probe}")
            assert ct.read_file(probe) == b"changed\n"
            ct.run("rm", str(probe))
            assert ct.run("test", "-e", str(probe), check=False).returncode == 1
            assert probe.read_text() == "host version\n"
            # absolute symlinks resolve inside: /etc/localtime is one on Debian
            assert str(ct.path("/etc/localtime")).startswith(f"/proc/{ct.pid1}/root/")
            # the host's mount table is never touched
            assert rig_mounts() == mounts_before
    finally:
        probe.unlink()
    assert rig_mounts() == mounts_before and overlay_count() == overlays_before


# --- units and the journal ---------------------------------------------------------------

def test_unit_file_type_notify_and_its_journal(booted_container):
    ct = booted_container
    ct.install_unit("rig-notify.service", NOTIFY_UNIT)
    started = time.monotonic()
    ct.systemctl("start", "rig-notify.service")  # returns once READY=1 arrived
    assert time.monotonic() - started >= 0.3
    props = unit_show(ct, "rig-notify.service", "ActiveState", "SubState", "StatusText", "Type")
    assert props == {"ActiveState": "active", "SubState": "running", "StatusText": "serving", "Type": "notify"}
    ready = ct.wait_for_journal("rig-notify: ready", unit="rig-notify.service")
    ct.wait_for_journal("Started rig-notify.service", unit="rig-notify.service")  # systemd's own line
    messages = [e.get("MESSAGE") for e in ct.journal(unit="rig-notify.service")]
    assert messages.index("rig-notify: starting") < messages.index("rig-notify: ready"), messages
    assert ready["_SYSTEMD_UNIT"] == "rig-notify.service" and ready["_PID"] and ready["__CURSOR"]
    ct.systemctl("stop", "rig-notify.service")
    assert ct.systemctl("is-active", "rig-notify.service", check=False).stdout.strip() == "inactive"


def test_transient_type_notify_unit(booted_container):
    ct = booted_container
    unit = f"rig-transient-{uuid.uuid4().hex[:6]}.service"
    ct.run("systemd-run", f"--unit={unit}", "-p", "Type=notify", "-p", "NotifyAccess=all", "--",
           "/bin/sh", "-c", "echo transient-starting; systemd-notify --ready --status=up; exec sleep infinity")
    assert unit_show(ct, unit, "ActiveState", "StatusText") == {"ActiveState": "active", "StatusText": "up"}
    ct.wait_for_journal("transient-starting", unit=unit)
    ct.systemctl("stop", unit)


def test_journal_cursor_shows_only_what_came_after(booted_container):
    ct = booted_container
    ct.run("systemd-cat", "-t", "rig-probe", "echo", "before the cursor")
    ct.wait_for_journal("before the cursor")
    cursor = ct.cursor()
    ct.run("systemd-cat", "-t", "rig-probe", "echo", "after the cursor")
    entry = ct.wait_for_journal("after the cursor", since_cursor=cursor)
    assert entry["SYSLOG_IDENTIFIER"] == "rig-probe"
    assert "before the cursor" not in [e.get("MESSAGE") for e in ct.journal(since_cursor=cursor)]


# --- the sandbox is real -----------------------------------------------------------------

def test_seccomp_system_call_filter_is_enforced(booted_container):
    ct = booted_container
    script = "touch /tmp/rig-chown && chown 1:1 /tmp/rig-chown && echo chowned"
    free = transient(ct, "--", "/bin/sh", "-c", script)
    assert (free.returncode, free.stdout) == (0, "chowned\n"), free
    filtered = transient(ct, "-p", "SystemCallFilter=~@privileged", "-p", "SystemCallErrorNumber=EPERM",
                         "--", "/bin/sh", "-c", script)
    assert filtered.returncode != 0 and "Operation not permitted" in filtered.stderr, filtered
    killed = transient(ct, "-p", "SystemCallFilter=~@privileged", "--", "/bin/sh", "-c", script)
    assert killed.returncode == 128 + 31, killed  # default action: SIGSYS


def test_device_policy_is_enforced_and_a_missing_dev_snd_is_harmless(booted_container):
    ct = booted_container
    probe = "cat /dev/null && echo null-ok; head -c1 /dev/zero > /dev/null && echo zero-ok"
    assert transient(ct, "--", "/bin/sh", "-c", probe).stdout == "null-ok\nzero-ok\n"
    strict = transient(ct, "-p", "DevicePolicy=strict", "-p", "DeviceAllow=/dev/null rw", "--", "/bin/sh", "-c", probe)
    assert strict.stdout == "null-ok\n" and "Operation not permitted" in strict.stderr, strict
    # tether.service's lines: no sound driver here, so /dev/snd and char-alsa do not exist
    alsa = transient(ct, "-p", "DevicePolicy=closed", "-p", "DeviceAllow=char-alsa rw", "-p", "DeviceAllow=/dev/snd rw",
                     "--", "/bin/sh", "-c", "test ! -e /dev/snd && cat /dev/null && echo started")
    assert (alsa.returncode, alsa.stdout) == (0, "started\n"), alsa


def test_ip_address_deny_is_enforced(booted_container):
    ct = booted_container  # shares the host's network namespace: a host listener is reachable
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    port = server.getsockname()[1]
    accepted = []
    stop = threading.Event()

    def accept():
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                accepted.append(conn)
            except socket.timeout:
                pass
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        probe = ["timeout", "2", "bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{port} && echo connected"]
        assert transient(ct, "--", *probe).stdout == "connected\n"
        wait_until(lambda: accepted, 5, what="the connection from inside")
        denied = transient(ct, "-p", "IPAddressDeny=any", "--", *probe)
        assert denied.returncode != 0 and "connected" not in denied.stdout, denied
        assert len(accepted) == 1
    finally:
        stop.set()
        server.close()
        thread.join(5)
        for conn in accepted:
            conn.close()


# --- network namespace -------------------------------------------------------------------

def test_boot_in_a_network_namespace_with_a_veth(new_container):
    tag = uuid.uuid4().hex[:6]
    ns, outer, inner = f"tether-rig-{tag}", f"rgo{tag}", f"rgi{tag}"

    def ip(*args, check=True):
        return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=20)

    ip("netns", "add", ns)
    try:
        ip("link", "add", outer, "type", "veth", "peer", "name", inner)
        ip("link", "set", inner, "netns", ns)
        ip("-n", ns, "link", "set", "lo", "up")
        ip("-n", ns, "addr", "add", "10.231.0.2/24", "dev", inner)
        ip("-n", ns, "link", "set", inner, "up")
        ip("link", "set", outer, "up")  # the host's end: up, no address, no route
        with new_container(netns=ns, boot=False) as ct:
            links = ct.run("ip", "-br", "link").stdout
            assert inner in links and outer not in links, links
            assert ct.run("ls", "/sys/class/net").stdout.split() == sorted(["lo", inner])
            wait_until(lambda: "UP" in ct.run("ip", "-br", "link", "show", inner).stdout.split()[1], 10,
                       what="the veth to be up inside")
            assert "10.231.0.2/24" in ct.run("ip", "-br", "addr", "show", inner).stdout
            # a unit is root without CAP_NET_ADMIN
            denied = transient(ct, "--", "ip", "link", "set", inner, "down")
            assert denied.returncode != 0 and "Operation not permitted" in denied.stderr, denied
            # taken down from outside, seen down inside
            ip("-n", ns, "link", "set", inner, "down")
            wait_until(lambda: ct.run("ip", "-br", "link", "show", inner).stdout.split()[1] == "DOWN", 10,
                       what="the veth to be down inside")
            assert ct.leftovers() != []  # running: its cgroups exist
        assert ct.leftovers() == []
    finally:
        ip("link", "del", outer, check=False)
        ip("netns", "del", ns, check=False)


# --- stop --------------------------------------------------------------------------------

def test_stop_is_clean_idempotent_and_leaves_nothing(new_container):
    mounts_before, overlays_before = rig_mounts(), overlay_count()
    ct = new_container()
    assert set(ct.cgroups) <= set(rig_cgroups()) and len(ct.cgroups) == len(cgroup_roots())
    assert rig_mounts() == mounts_before  # the container's mounts live in its own namespaces
    ct.install_unit("rig-notify.service", NOTIFY_UNIT)
    ct.systemctl("start", "rig-notify.service")
    ct.sh("setsid sleep 1000 > /dev/null 2>&1 < /dev/null &")  # a process left behind by run()
    pid_ns = os.stat(f"/proc/{ct.pid1}/ns/pid").st_ino
    ct.stop()
    print(f"stop took {ct.stop_seconds:.3f} s")
    assert ct.stop_seconds < 10
    assert ct.leftovers() == []
    assert not [p for p in os.listdir("/proc") if p.isdigit() and _pid_ns(p) == pid_ns]
    assert not set(ct.cgroups) & set(rig_cgroups())
    assert rig_mounts() == mounts_before and overlay_count() == overlays_before
    assert "Halting system." in ct.log_path.read_text()
    assert "rig-notify: ready" in (ct.workdir / "journal.txt").read_text()
    ct.stop()  # idempotent
    with pytest.raises(ContainerError):
        ct.pid1


def test_stop_falls_back_to_sigkill(new_container):
    ct = new_container()
    ct.install_unit("rig-stubborn.service", """\
[Service]
ExecStart=/bin/sh -c 'trap "" TERM; echo stubborn; while :; do sleep 1; done'
TimeoutStopSec=60
""")
    ct.systemctl("start", "rig-stubborn.service")
    ct.stop(timeout=1)
    assert ct.stop_seconds < 8
    assert ct.leftovers() == []


def test_a_failed_boot_raises_with_nspawn_output_and_cleans_up(new_container):
    ct = new_container(binds=[("/nonexistent-tether-rig-path", "/mnt")], boot=False)
    with pytest.raises(ContainerError) as failed:
        ct.boot(timeout=20)
    assert "nonexistent-tether-rig-path" in str(failed.value), str(failed.value)
    assert ct.leftovers() == []


def _pid_ns(pid):
    try:
        return os.stat(f"/proc/{pid}/ns/pid").st_ino
    except OSError:
        return None
