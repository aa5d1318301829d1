#!/usr/bin/env python3
"""A real systemd as PID 1 of a throw-away container, for tests that install a service unit
and drive it with systemctl and journalctl. Python 3 standard library only; run as root.

    from container import Container
    with Container(tmp_path / "ct") as ct:          # boots on enter, stops on exit
        ct.install_unit("x.service", UNIT_TEXT)      # /etc/systemd/system/x.service + daemon-reload
        ct.run("systemctl", "start", "x.service")
        entries = ct.journal(unit="x.service")       # journalctl -o json, parsed

How it works (each step answers an error that was actually hit on these machines):

1. The host is not booted with systemd (PID 1 is something else) and no system bus runs, so
   the container is started by hand: `systemd-nspawn -D ROOT -b --register=no --keep-unit`
   (no machined, no scope unit; `machinectl` and `systemd-run -M` cannot work).
2. Everything runs in a private mount namespace: the module starts a small launcher (this
   file, `--launcher`) under `unshare --mount --propagation private`. The host's mount table
   is never touched, and every mount disappears when the launcher and nspawn are gone.
3. ROOT is an overlayfs with `lowerdir=/` and upper/work dirs on a private tmpfs: the
   container sees the host's root file system (so /work/main, the repository, is there) and
   every write lands in the tmpfs. nspawn refuses `-D /`, and `--volatile=yes` starts with
   an empty /etc where systemd-firstboot blocks the boot.
4. A tmpfs is mounted on the host's /run/systemd (in the private namespace only): /run is on
   disk here, and nspawn refuses to clean up its /run/systemd/nspawn/ files on a non-tmpfs.
5. nspawn is started in a cgroup of its own in each hierarchy this machine has (cgroup2 at
   /sys/fs/cgroup/unified and the v1 `name=systemd` at /sys/fs/cgroup/systemd: a "hybrid"
   host); nspawn leaves `payload/` and `supervisor/` behind, so stop() removes the tree.
6. `SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1` (pure cgroup2 inside) and `--system-call-filter=bpf`
   (nspawn's own seccomp filter blocks bpf() otherwise): without both, DeviceAllow= and
   IPAddressDeny= are silently not enforced inside.
7. The container boots `systemd.unit=tether-rig.target`, a small target written into the
   overlay (basic.target and journald), after every `*.wants`/`*.requires` directory of the
   host's /etc/systemd/system has been deleted in the overlay: nothing the host enabled
   (postgresql, timers, getty, ...) starts inside. The overlay also gets its own
   /etc/machine-id (nspawn warns "Host and machine ids are equal" otherwise), /etc/hostname
   (the machine name), `DefaultTimeoutStopSec=5s` (a unit that ignores SIGTERM cannot hold
   the poweroff for 90 s) and a volatile journal without rate limiting (tests read it).
8. Commands run with `nsenter -t PID1 -m -u -i -n -p -C -r -w` (see run()); boot() waits
   with `systemctl is-system-running --wait` (talks to /run/systemd/private, no bus needed)
   and accepts "running" or "degraded" (failed units are in `failed_units`).
9. stop(): SIGTERM to nspawn is a clean poweroff of the container; after the timeout
   SIGKILL, then every process left in its cgroups, its PID namespace or the launcher's
   mount namespace is killed by PID and the cgroup tree is removed. The host's PID 1 reaps
   orphans slowly (about a second), and a zombie of the container's PID namespace holds
   that namespace up until it is reaped: so the launcher is a child subreaper (it reaps
   PID 1 if nspawn is SIGKILLed), and run() kills a timed-out command's processes inside
   before nsenter, so that they are reaped by nsenter or the container's systemd.
10. Network: without netns= the container shares the caller's network namespace. With
   netns=NAME (or a path such as /proc/PID/ns/net) the launcher is started under
   `nsenter --net=/run/netns/NAME`: setns only, so /sys keeps its cgroup mounts (`ip netns
   exec` would give a fresh sysfs and cgroup2 and name=systemd would have to be remounted).
   nspawn mounts a fresh sysfs inside, so /sys/class/net shows the namespace's links.

What a caller must know:

- Writable: everything. Writes go to the overlay's tmpfs upper layer and vanish at stop();
  the host's files never change (the self-test checks). /tmp, /run, /dev/shm inside are
  nspawn's own tmpfs mounts, not the host's. Only the host's root file system is in the
  overlay: a directory that is a separate mount on the host shows up empty unless bound in
  with binds=. Files the host changes after boot are usually visible inside (overlayfs reads
  through to the lower layer) but overlayfs calls that undefined: put test input in with
  write_file() or binds=, or have it in place before boot().
- Users: no user namespace; uid N inside is uid N on the host. /etc/passwd starts as the
  host's; users made inside (`useradd`, `make install`) exist only in the container.
- Processes started by run() are root with the *caller's* capabilities (incl.
  CAP_NET_ADMIN, CAP_SYS_ADMIN) and without nspawn's seccomp filter: they are like
  `nsenter`, not like a process of the container. Units started by the container's systemd
  get the container's bounding set: no CAP_NET_ADMIN (no `ip link set` in a unit), no
  CAP_SYS_MODULE, ... and CAP_SYS_RESOURCE is missing on this host altogether (dbus-daemon
  inside logs "Failed to set fd limit"). run() processes sit in the caller's cgroup but in
  the container's PID namespace: they die with the container at the latest.
- systemd-run works inside (run("systemd-run", "--wait", "--pipe", ...)): the container's
  dbus.socket activates a dbus-daemon on first use.
- Enforced inside (checked by the self-test): SystemCallFilter= (seccomp),
  DevicePolicy=/DeviceAllow= (cgroup2 BPF), IPAddressDeny= (cgroup BPF). There is no sound
  driver: DeviceAllow=/dev/snd only logs "Couldn't stat device /dev/snd" and the unit
  starts; DeviceAllow=char-alsa is silently ignored.
- The journal is volatile: read it before stop(). stop() saves `journalctl -o
  short-precise` to WORKDIR/journal.txt, and nspawn's console (the boot and shutdown
  messages) is in WORKDIR/nspawn.log.
- PR_SET_PDEATHSIG: the launcher gets SIGTERM when the *thread* that called boot() exits
  (a killed pytest takes its containers with it). Boot from a thread that outlives the
  container (pytest's fixtures run on the main thread).
- run()'s environment is DEFAULT_ENV plus env=, not the caller's: PATH has no
  /opt/swift/usr/bin (pass env={"PATH": ...} for a `make` that calls swift).
- The launcher runs sys.executable on this file (`--launcher`), so this file must stay
  importable as plain Python with the standard library only.
- Boot takes about 0.5-0.6 s; a clean stop 0.2-0.3 s (a unit that ignores SIGTERM holds
  it up to DefaultTimeoutStopSec=5s, or stop(timeout) then SIGKILL).

Surprises met while building this (so that nobody has to meet them again):

- `apt-get install systemd-container` also upgrades systemd and libsystemd0 when the
  installed systemd is older than the package (the versions must be equal).
- `nsenter --wd=DIR` opens DIR on the *host* before entering; run(cwd=) uses `env -C DIR`
  inside instead.
- DevicePolicy=closed still allows /dev/null, zero, full, random, urandom, tty, ptmx:
  only DevicePolicy=strict shows that the device filter works.
- SystemCallFilter= kills the process with SIGSYS (status 159 from a shell) unless
  SystemCallErrorNumber=EPERM is set, then the call fails with "Operation not permitted".
- IPAddressDeny= drops packets silently: connect() hangs until its timeout, no EPERM.
- The host has /var/log/journal, so journald inside would "persist" into the overlay's
  tmpfs and flush there: Storage=volatile skips that.
- Without systemd.unit= the container boots the host's default (graphical) target with
  postgresql, getty and apt timers; without a fresh /etc/machine-id nspawn refuses to link
  journals and the container journal carries the host's machine ID.
"""

import ctypes
import errno
import json
import os
import pathlib
import shutil
import signal
import stat
import subprocess
import sys
import time
import uuid

RIG_TARGET = "tether-rig.target"
CGROUP_PREFIX = "tether-rig-"
PACKAGE = "systemd-container"
PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36

# The environment of every run(): the caller's (venv, TETHER_*, ...) would leak in otherwise.
DEFAULT_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "HOME": "/root",
    "TERM": "dumb",
    "SYSTEMD_PAGER": "",
    "SYSTEMD_COLORS": "0",
}

TARGET_UNIT = """\
[Unit]
Description=tether test rig (Tests/systemd/container.py)
Documentation=file:///work/main/Tests/systemd/container.py
Requires=basic.target
Wants=systemd-journald.socket systemd-journald-dev-log.socket systemd-journald.service
After=basic.target systemd-journald.service
AllowIsolate=yes
"""

SYSTEM_CONF = """\
# Tests/systemd/container.py: a unit that ignores SIGTERM must not hold the poweroff 90 s.
[Manager]
DefaultTimeoutStopSec=5s
"""

JOURNALD_CONF = """\
# Tests/systemd/container.py: tests read every line, and the container is thrown away.
[Journal]
Storage=volatile
RateLimitIntervalSec=0
RateLimitBurst=0
"""


class ContainerError(RuntimeError):
    """The container could not be booted, or something inside failed."""


class ContainerUnavailable(ContainerError):
    """This machine cannot run containers at all (see unavailable_reason())."""


class CommandFailed(subprocess.CalledProcessError):
    """run(check=True) saw a non-zero exit; str() includes the command's output."""

    def __str__(self):
        text = super().__str__()
        for name, value in (("stdout", self.stdout), ("stderr", self.stderr)):
            if value:
                if isinstance(value, bytes):
                    value = value.decode(errors="replace")
                text += f"\n--- {name} ---\n{value[-4000:]}"
        return text


# Waiting on events with deadlines, for every rig and test (conftest re-exports it): this
# module is also run as a script (the launcher), so it depends on nothing of the suite's.
class DeadlinePassed(AssertionError, TimeoutError):
    """A wait ran out: a test failure (AssertionError) and a timeout (TimeoutError) alike."""


def wait_until(predicate, timeout, interval=0.01, what="condition"):
    """Polls `predicate` until it returns a truthy value (returned) or `timeout` s pass."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise DeadlinePassed(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


# --- what the machine offers -------------------------------------------------------------

def unavailable_reason():
    """None if this machine can run a container, else why not (a reason to skip tests)."""
    if not sys.platform.startswith("linux"):
        return "not Linux"
    if os.geteuid() != 0:
        return "containers need root (systemd-nspawn, mount, cgroups)"
    try:
        with open("/proc/filesystems") as f:
            filesystems = f.read().split()
    except OSError as e:
        return f"cannot read /proc/filesystems: {e}"
    if "overlay" not in filesystems:
        return "the kernel has no overlayfs (modprobe overlay?)"
    if not any(kind == "unified" for kind, _ in cgroup_roots()):
        return "no cgroup2 hierarchy is mounted (systemd inside needs one)"
    for tool in ("unshare", "nsenter", "mount"):
        if not shutil.which(tool):
            return f"{tool} (util-linux) is missing"
    return None


def ensure_installed():
    """Installs Debian's systemd-container (systemd-nspawn) if it is missing. Note that apt
    may upgrade systemd and libsystemd0 with it (the versions must match)."""
    if shutil.which("systemd-nspawn"):
        return
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", PACKAGE]
    result = subprocess.run(install, env=env, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:  # an empty or stale package list: update once and retry
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, timeout=600)
        result = subprocess.run(install, env=env, capture_output=True, text=True, timeout=600)
    if result.returncode != 0 or not shutil.which("systemd-nspawn"):
        raise ContainerError(f"could not install {PACKAGE}:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")


def cgroup_roots():
    """[(kind, mount point)] of the hierarchies nspawn needs: "unified" (cgroup2) and
    "systemd" (v1 name=systemd, on hybrid and legacy hosts), as mounted in this process's
    mount namespace."""
    roots, seen = [], set()
    try:
        with open("/proc/self/mountinfo") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    for line in lines:
        left, _, right = line.partition(" - ")
        fields, rfields = left.split(), right.split()
        if len(fields) < 5 or len(rfields) < 3:
            continue
        fstype, options = rfields[0], rfields[2].split(",")
        kind = "unified" if fstype == "cgroup2" else "systemd" if fstype == "cgroup" and "name=systemd" in options else None
        if kind and kind not in seen:
            seen.add(kind)
            roots.append((kind, fields[4].replace("\\040", " ")))
    return roots


def remove_stale_cgroups():
    """Removes tether-rig-* cgroups that no process uses any more (left by a test process
    that was killed) and are older than a minute. rmdir fails on a cgroup that still has
    processes, so this never touches a running container."""
    for _, root in cgroup_roots():
        try:
            names = os.listdir(root)
        except OSError:
            continue
        for name in names:
            path = os.path.join(root, name)
            try:  # a minute old at least: a container being booted has an empty one for a moment
                young = time.time() - os.stat(path).st_mtime < 60
            except OSError:
                continue
            if name.startswith(CGROUP_PREFIX) and not young:
                _rmdir_tree(path, timeout=0)


# --- processes, namespaces, cgroups ------------------------------------------------------

def _status(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            return dict(line.split(":\t", 1) for line in f.read().splitlines() if ":\t" in line)
    except (OSError, ValueError):
        return {}


def _pids():
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:  # no CONFIG_PROC_CHILDREN
        return [p for p in _pids() if _status(p).get("PPid", "").strip() == str(pid)]


def _ns_id(pid, kind):
    try:
        st = os.stat(f"/proc/{pid}/ns/{kind}")
        return (st.st_dev, st.st_ino)
    except OSError:
        return None


def _pids_in_ns(kind, ns_id):
    if ns_id is None:
        return []
    me = os.getpid()
    return [p for p in _pids() if p != me and _ns_id(p, kind) == ns_id]


def _cgroup_pids(path):
    pids = set()
    for dirpath, _, filenames in os.walk(path):
        if "cgroup.procs" in filenames:
            try:
                with open(os.path.join(dirpath, "cgroup.procs")) as f:
                    pids.update(int(x) for x in f.read().split())
            except OSError:
                pass
    pids.discard(os.getpid())
    return pids


def _kill(pids, sig=signal.SIGKILL):
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def _kill_cgroup(path, timeout):
    deadline = time.monotonic() + timeout
    while os.path.isdir(path):
        pids = _cgroup_pids(path)
        if not pids or time.monotonic() > deadline:
            return not pids
        _kill(pids)
        time.sleep(0.01)
    return True


def _rmdir_tree(path, timeout):
    """rmdir's a cgroup tree, deepest first, retrying EBUSY (a dying process) until timeout."""
    deadline = time.monotonic() + timeout
    while True:
        dirs = [d for d, _, _ in os.walk(path)]
        if not dirs:
            return True
        busy = False
        for d in sorted(dirs, key=lambda d: d.count("/"), reverse=True):
            try:
                os.rmdir(d)
            except FileNotFoundError:
                pass
            except OSError as e:
                if e.errno not in (errno.EBUSY, errno.ENOTEMPTY):
                    raise
                busy = True
        if not busy:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)


def _set_pdeathsig(sig):
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)


def _resolve_in_root(root, path, max_links=40):
    """Resolves `path` as the container sees it: symlinks are followed with `root` as "/"
    (an absolute link such as /etc/localtime must not lead to the host's file). Returns
    the resolved inside path."""
    parts = [p for p in str(path).split("/") if p not in ("", ".")]
    resolved, links = [], 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = resolved + [part]
        host = root + "/" + "/".join(candidate)
        try:
            st = os.lstat(host)
        except FileNotFoundError:
            resolved = candidate
            continue
        if stat.S_ISLNK(st.st_mode):
            links += 1
            if links > max_links:
                raise OSError(errno.ELOOP, "too many symbolic links", str(path))
            target = os.readlink(host)
            if target.startswith("/"):
                resolved = []
            parts = [p for p in target.split("/") if p not in ("", ".")] + parts
        else:
            resolved = candidate
    return "/" + "/".join(resolved)


# --- the container -----------------------------------------------------------------------

class Container:
    """One throw-away container with systemd as PID 1 (see the module's docstring).

    workdir: a host directory for logs and state (created; nspawn.log, journal.txt, and the
        empty mount point rootfs/ whose tmpfs exists only in the launcher's namespace).
    netns: None (share the caller's network namespace), a name under /run/netns, or a path
        to a network namespace file (e.g. /proc/PID/ns/net).
    binds: host paths to bind into the container: "SRC[:DST]" (nspawn's --bind= syntax),
        or (SRC, DST) or (SRC, DST, "ro") tuples.
    name: the machine name (and hostname inside); default tether-rig-<random>. The cgroups
        are /sys/fs/cgroup/{unified,systemd}/tether-rig-... (the name, prefixed if needed).
    """

    def __init__(self, workdir, netns=None, binds=(), name=None):
        self.workdir = pathlib.Path(workdir).resolve()
        self.netns = netns
        self.binds = list(binds)
        self.name = name or f"{CGROUP_PREFIX}{uuid.uuid4().hex[:10]}"
        self.log_path = self.workdir / "nspawn.log"
        cgroup = self.name if self.name.startswith(CGROUP_PREFIX) else CGROUP_PREFIX + self.name
        self.cgroups = [os.path.join(root, cgroup) for _, root in cgroup_roots()]
        self.boot_seconds = None
        self.stop_seconds = None
        self.state = None  # "running" or "degraded" once booted
        self.failed_units = []
        self._launcher = None
        self._log = None
        self._nspawn_pid = None
        self._pid1 = None
        self._pid_ns = None
        self._mnt_ns = None
        self._stopped = False

    # -- lifecycle --

    def boot(self, timeout=30):
        """Starts the container; returns once systemd inside is "running" or "degraded".
        Raises ContainerError with nspawn's output (and stops everything) otherwise."""
        if self._launcher is not None or self._stopped:
            raise ContainerError("boot() called twice: a Container boots once")
        reason = unavailable_reason()
        if reason:
            raise ContainerUnavailable(reason)
        ensure_installed()
        remove_stale_cgroups()
        if not self.cgroups:
            raise ContainerUnavailable("no cgroup hierarchy found in /proc/self/mountinfo")
        rootfs = self.workdir / "rootfs"
        if any(c in str(rootfs) for c in ",:\\ "):
            raise ContainerError(f"workdir must not contain , : \\ or spaces (overlayfs options): {self.workdir}")
        argv = []
        if self.netns is not None:
            ns = str(self.netns) if str(self.netns).startswith("/") else f"/run/netns/{self.netns}"
            if not os.path.exists(ns):
                raise ContainerError(f"network namespace {ns} does not exist")
            argv += ["nsenter", f"--net={ns}", "--"]
        rootfs.mkdir(parents=True, exist_ok=True)
        config = {
            "name": self.name,
            "mnt": str(rootfs),
            "cgroups": self.cgroups,
            "pidfile": str(self.workdir / "nspawn.pid"),
            "nspawn_args": [self._bind_arg(b) for b in self.binds],
        }
        config_path = self.workdir / "launcher.json"
        config_path.write_text(json.dumps(config, indent=1))
        argv += ["unshare", "--mount", "--propagation", "private", "--",
                 sys.executable, "-I", os.path.abspath(__file__), "--launcher", str(config_path)]
        started = time.monotonic()
        deadline = started + timeout
        try:
            for path in self.cgroups:
                os.makedirs(path, exist_ok=True)
            self._log = open(self.log_path, "ab")
            self._launcher = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
                                              start_new_session=True, preexec_fn=lambda: _set_pdeathsig(signal.SIGTERM))
            self._wait_for_pid1(deadline)
            self._wait_for_boot(deadline)
        except BaseException as e:
            self.stop()
            if isinstance(e, (ContainerError, TimeoutError)):
                raise ContainerError(f"container {self.name} did not boot: {e}\n{self.log_tail()}") from None
            raise
        self.boot_seconds = time.monotonic() - started
        return self

    @staticmethod
    def _bind_arg(bind):
        if isinstance(bind, str):
            return f"--bind={bind}"
        src, dst, *rest = bind
        return f"--bind{'-ro' if rest and rest[0] == 'ro' else ''}={src}:{dst}"

    def _wait_for_pid1(self, deadline):
        pidfile = self.workdir / "nspawn.pid"
        while True:
            if self._launcher.poll() is not None:
                raise ContainerError(f"the launcher exited with status {self._launcher.returncode}")
            if self._nspawn_pid is None and pidfile.exists():
                text = pidfile.read_text().strip()
                self._nspawn_pid = int(text) if text else None
                self._mnt_ns = _ns_id(self._launcher.pid, "mnt")
            if self._nspawn_pid is not None:
                for child in _children(self._nspawn_pid):
                    st = _status(child)
                    if st.get("NSpid", "").split()[-1:] == ["1"] and st.get("Name", "").strip() == "systemd":
                        self._pid1 = child
                        self._pid_ns = _ns_id(child, "pid")
                        return
            if time.monotonic() > deadline:
                raise ContainerError("timed out waiting for systemd to start as PID 1")
            time.sleep(0.005)

    def _wait_for_boot(self, deadline):
        last = ""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ContainerError(f"timed out waiting for the boot to finish (systemctl said {last!r})")
            if self._launcher.poll() is not None:
                raise ContainerError(f"the launcher exited with status {self._launcher.returncode}")
            try:
                result = self.run("systemctl", "is-system-running", "--wait", check=False, timeout=max(remaining, 0.1))
            except subprocess.TimeoutExpired:
                continue
            last = (result.stdout.strip() or result.stderr.strip())
            if result.stdout.strip() in ("running", "degraded"):
                self.state = result.stdout.strip()
                break
            if result.stdout.strip() in ("maintenance", "stopping"):
                raise ContainerError(f"systemd is {last!r}")
            time.sleep(0.01)  # before /run/systemd/private exists: "Failed to connect to bus"
        listing = self.run("systemctl", "list-units", "--failed", "--plain", "--no-legend", check=False).stdout
        self.failed_units = [line.split()[0] for line in listing.splitlines() if line.strip()]

    @property
    def pid1(self):
        """The host PID of the container's systemd (PID 1 inside)."""
        if self._pid1 is None:
            raise ContainerError("the container is not running")
        return self._pid1

    @property
    def running(self):
        return self._pid1 is not None and not self._stopped and _ns_id(self._pid1, "pid") == self._pid_ns

    def stop(self, timeout=10):
        """Clean poweroff (SIGTERM to nspawn), SIGKILL after `timeout` s, then kills every
        leftover process by PID and removes the cgroups. Idempotent."""
        if self._stopped:
            return
        started = time.monotonic()
        try:
            if self.running:
                try:
                    journal = self.run("journalctl", "--no-pager", "-o", "short-precise", check=False, timeout=5).stdout
                    (self.workdir / "journal.txt").write_text(journal)
                except (subprocess.TimeoutExpired, OSError):
                    pass
            if self._launcher is not None and self._launcher.poll() is None:
                self._launcher.send_signal(signal.SIGTERM)  # forwarded to nspawn: poweroff
                try:
                    self._launcher.wait(timeout)
                except subprocess.TimeoutExpired:
                    self._kill_everything()
                    try:
                        self._launcher.wait(5)
                    except subprocess.TimeoutExpired:
                        self._launcher.kill()
                        self._launcher.wait(5)
            self._stopped = True
            self._kill_everything()
            for path in self.cgroups:
                if not _rmdir_tree(path, timeout=5):
                    raise ContainerError(f"could not remove cgroup {path}: {sorted(_cgroup_pids(path))} still in it")
        finally:
            self._stopped = True
            self._pid1 = None
            if self._log is not None:
                self._log.close()
                self._log = None
            self.stop_seconds = time.monotonic() - started

    def _kill_everything(self):
        if self._nspawn_pid is not None and self._launcher is not None \
                and _status(self._nspawn_pid).get("PPid", "").strip() == str(self._launcher.pid):
            _kill([self._nspawn_pid])
        for path in self.cgroups:
            _kill_cgroup(path, timeout=5)
        for kind, ns in (("pid", self._pid_ns), ("mnt", self._mnt_ns)):
            deadline = time.monotonic() + 5
            while True:
                pids = [p for p in _pids_in_ns(kind, ns) if self._launcher is None or p != self._launcher.pid or kind != "mnt"]
                if not pids or time.monotonic() > deadline:
                    break
                _kill(pids)
                time.sleep(0.01)

    def leftovers(self):
        """What is still there after stop() (should be []): cgroups, processes in the
        container's PID namespace or the launcher's mount namespace, the launcher."""
        found = [f"cgroup {p}" for p in self.cgroups if os.path.exists(p)]
        found += [f"process {p} in the container's PID namespace" for p in _pids_in_ns("pid", self._pid_ns)]
        found += [f"process {p} in the launcher's mount namespace" for p in _pids_in_ns("mnt", self._mnt_ns)]
        if self._launcher is not None and self._launcher.poll() is None:
            found.append(f"launcher {self._launcher.pid}")
        with open("/proc/self/mountinfo") as f:
            found += [f"mount {line}" for line in f if str(self.workdir) in line]
        return found

    def log_tail(self, chars=6000):
        try:
            return "--- nspawn.log (tail) ---\n" + self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no nspawn.log)"

    def __enter__(self):
        if self._launcher is None:
            self.boot()
        return self

    def __exit__(self, *exc):
        self.stop()

    # -- commands --

    def run(self, *argv, user=None, input=None, timeout=60, check=True, env=None, cwd=None, text=True):
        """Runs argv inside the container (all its namespaces and its root) and returns a
        CompletedProcess with stdout and stderr captured (str unless text=False).

        user: run as that user (name or uid, resolved inside) via runuser.
        cwd: working directory inside (default /). env: merged over DEFAULT_ENV (the caller's
        environment is not passed). On timeout every process of the command's process group
        is killed and subprocess.TimeoutExpired raised. check=True raises CommandFailed
        (a CalledProcessError) on a non-zero exit."""
        if len(argv) == 1 and isinstance(argv[0], (list, tuple)):
            argv = tuple(argv[0])
        cmd = ["nsenter", "-t", str(self.pid1), "-m", "-u", "-i", "-n", "-p", "-C", "-r", "-w", "--"]
        if cwd is not None:
            cmd += ["env", "-C", str(cwd), "--"]  # nsenter --wd=DIR would open the host's DIR
        if user is not None:
            cmd += ["runuser", "-u", str(user), "--"]
        cmd += [str(a) for a in argv]
        environment = dict(DEFAULT_ENV, **(env or {}))
        if input is not None and text and isinstance(input, bytes):
            input = input.decode()
        elif input is not None and not text and isinstance(input, str):
            input = input.encode()
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environment,
                                start_new_session=True, text=text, errors="replace" if text else None)
        try:
            out, err = proc.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_command(proc)
            out, err = proc.communicate()
            raise subprocess.TimeoutExpired(list(argv), timeout, out, err) from None
        except BaseException:
            _kill_command(proc)
            raise
        result = subprocess.CompletedProcess(list(argv), proc.returncode, out, err)
        if check and proc.returncode != 0:
            raise CommandFailed(proc.returncode, list(argv), out, err)
        return result

    def sh(self, script, **kw):
        """bash -c SCRIPT inside; keyword arguments as for run()."""
        return self.run("bash", "-c", script, **kw)

    def systemctl(self, *args, **kw):
        return self.run("systemctl", *args, **kw)

    # -- files --

    def path(self, inside_path):
        """The host path of a file inside, through /proc/PID1/root, with symlinks resolved
        the container's way. Valid while the container runs."""
        root = f"/proc/{self.pid1}/root"
        return pathlib.Path(root + _resolve_in_root(root, inside_path))

    def write_file(self, path, text, mode=0o644):
        """Writes a file inside (str or bytes), creating parent directories; root-owned."""
        target = self.path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        data = text.encode() if isinstance(text, str) else bytes(text)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
        try:
            os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        return target

    def read_file(self, path):
        return self.path(path).read_bytes()

    def install_unit(self, name, text, reload=True):
        """Writes /etc/systemd/system/NAME and runs systemctl daemon-reload."""
        self.write_file(f"/etc/systemd/system/{name}", text)
        if reload:
            self.systemctl("daemon-reload")

    # -- journal --

    def journal(self, unit=None, since_cursor=None, args=()):
        """journalctl -o json inside, one dict per entry. Binary field values (which
        journalctl prints as arrays of numbers) are decoded to str with replacement."""
        cmd = ["journalctl", "--no-pager", "-o", "json"]
        if unit:
            cmd += ["-u", unit]
        if since_cursor:
            cmd += [f"--after-cursor={since_cursor}"]
        out = self.run(*cmd, *args).stdout
        entries = []
        for line in out.splitlines():
            if not line.startswith("{"):
                continue
            entry = json.loads(line)
            for key, value in entry.items():
                if isinstance(value, list) and value and all(isinstance(x, int) for x in value):
                    entry[key] = bytes(value).decode(errors="replace")
            entries.append(entry)
        return entries

    def cursor(self):
        """The cursor of the newest journal entry: pass it as since_cursor= to see only what
        comes after now."""
        entries = self.journal(args=("-n", "1"))
        return entries[-1]["__CURSOR"] if entries else None

    def wait_for_journal(self, match, unit=None, since_cursor=None, timeout=10):
        """Polls the journal until an entry matches (`match`: a substring of MESSAGE, or a
        callable taking the entry dict); returns that entry."""
        def found():
            for entry in self.journal(unit=unit, since_cursor=since_cursor):
                if (match(entry) if callable(match) else match in str(entry.get("MESSAGE", ""))):
                    return entry
            return None
        return wait_until(found, timeout, interval=0.05, what=f"journal entry {match!r} (unit {unit})")


def _kill_command(proc):
    """Kills what run() started: first the processes of its process group inside the
    container, so that nsenter reaps its child and the orphans go to the container's
    systemd, then nsenter. Killing nsenter first would hand its child to the host's PID 1,
    which reaps slowly here, and the zombie would hold up the container's PID namespace
    (a 2-3 s longer stop)."""
    def members():
        found = []
        for pid in _pids():
            try:
                if pid != proc.pid and os.getpgid(pid) == proc.pid:
                    found.append(pid)
            except OSError:
                pass
        return found

    _kill(members())
    try:
        proc.wait(2)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# --- the launcher: runs under `unshare --mount --propagation private` ----------------------

def _say(message):
    print(f"rig: {message}", flush=True)


def _sh(*argv):
    result = subprocess.run(argv, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {(result.stderr or result.stdout).strip()}")


def _prepare_root(root, name):
    unit_dir = os.path.join(root, "etc/systemd/system")
    for entry in os.listdir(unit_dir):
        path = os.path.join(unit_dir, entry)
        if entry.endswith((".wants", ".requires")) and os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
    with open(os.path.join(unit_dir, RIG_TARGET), "w") as f:
        f.write(TARGET_UNIT)
    for rel, text in (("etc/systemd/system.conf.d/50-tether-rig.conf", SYSTEM_CONF),
                      ("etc/systemd/journald.conf.d/50-tether-rig.conf", JOURNALD_CONF),
                      ("etc/machine-id", uuid.uuid4().hex + "\n"),
                      ("etc/hostname", name + "\n")):
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if os.path.islink(path):
            os.unlink(path)
        with open(path, "w") as f:
            f.write(text)


def _launcher_main(config_path):
    with open(config_path) as f:
        cfg = json.load(f)
    state = {"child": None, "stopping": None}

    def on_signal(signum, frame):
        if state["stopping"] is None:
            state["stopping"] = time.monotonic()
        child = state["child"]
        if child is not None and child.poll() is None:
            child.send_signal(signal.SIGTERM)  # nspawn: poweroff; a second one: terminate now

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    # Orphans (the container's PID 1 when nspawn is SIGKILLed) come to us, not to the host's
    # PID 1, which reaps slowly here: an unreaped PID 1 holds up the PID namespace.
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    mnt, rc = cfg["mnt"], 1
    try:
        upper, work, root = (os.path.join(mnt, d) for d in ("upper", "work", "root"))
        _sh("mount", "-t", "tmpfs", "-o", "mode=0755", "tether-rig", mnt)
        for d in (upper, work, root):
            os.mkdir(d)
        _sh("mount", "-t", "overlay", "tether-rig-root", "-o", f"lowerdir=/,upperdir={upper},workdir={work}", root)
        _prepare_root(root, cfg["name"])
        os.makedirs("/run/systemd", exist_ok=True)
        _sh("mount", "-t", "tmpfs", "-o", "mode=0755", "tether-rig-run", "/run/systemd")
        if state["stopping"] is not None:
            return 1

        def in_own_cgroup():
            for path in cfg["cgroups"]:
                with open(os.path.join(path, "cgroup.procs"), "w") as f:
                    f.write(str(os.getpid()))
            _set_pdeathsig(signal.SIGTERM)

        argv = ["systemd-nspawn", "-D", root, "-M", cfg["name"], "-b",
                "--register=no", "--keep-unit", "--link-journal=no", "--system-call-filter=bpf",
                "--console=read-only", *cfg["nspawn_args"], f"systemd.unit={RIG_TARGET}"]
        _say(" ".join(argv))
        # TERM=dumb: nspawn hands TERM to the container's console, and the log stays plain.
        env = dict(os.environ, SYSTEMD_NSPAWN_UNIFIED_HIERARCHY="1", TERM="dumb")
        state["child"] = child = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, preexec_fn=in_own_cgroup)
        with open(cfg["pidfile"] + ".tmp", "w") as f:
            f.write(str(child.pid))
        os.rename(cfg["pidfile"] + ".tmp", cfg["pidfile"])
        if state["stopping"] is not None:
            child.send_signal(signal.SIGTERM)
        rc = _reap_until(child, state)
        _say(f"systemd-nspawn exited with status {rc}")
    except Exception as e:
        _say(f"error: {e}")
    finally:
        for path in cfg["cgroups"]:
            _kill_cgroup(path, timeout=5)
        _reap_orphans(timeout=5)
        for path in cfg["cgroups"]:
            _rmdir_tree(path, timeout=5)
        subprocess.run(["umount", "-R", "-l", mnt], capture_output=True)
    return rc


def _reap_until(child, state):
    """Waits for nspawn (reaping any orphan on the way); SIGKILLs it 15 s after a SIGTERM."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return child.returncode
        if pid == child.pid:
            child.returncode = os.waitstatus_to_exitcode(status)
            return child.returncode
        if pid == 0:
            if state["stopping"] is not None and time.monotonic() - state["stopping"] > 15:
                _say("nspawn did not stop within 15 s of SIGTERM: SIGKILL")
                child.kill()
                state["stopping"] = time.monotonic()
            time.sleep(0.02)


def _reap_orphans(timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            time.sleep(0.01)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--launcher":
        sys.exit(_launcher_main(sys.argv[2]))
    print(__doc__)
    sys.exit(2)
