"""Shared rigs for the system tests: the real tetherd binary with a temporary configuration, a
real sd_notify socket, the control socket, and event streams. Every wait has a deadline."""

import json
import os
import pathlib
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest

from container import wait_until  # noqa: F401 (re-exported to the tests)

BIN = pathlib.Path(os.environ.get("TETHER_BIN_DIR", ".build/debug")).resolve()
REPO = pathlib.Path(__file__).resolve().parents[2]

# A key that must never show up in any output: tests grep for it.
API_KEY = "sk-tether-test-" + secrets.token_hex(12)


class NotifyReceiver:
    """A real sd_notify endpoint: an AF_UNIX datagram socket that records every message
    with its arrival time (monotonic)."""

    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.settimeout(0.2)
        self.messages = []  # (monotonic time, text)
        self.lock = threading.Lock()
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while self.running:
            try:
                data, _, _, _ = self.sock.recvmsg(65536, socket.CMSG_SPACE(64))
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.messages.append((time.monotonic(), data.decode()))

    def lines(self, prefix=""):
        with self.lock:
            out = []
            for t, text in self.messages:
                for line in text.split("\n"):
                    if line.startswith(prefix):
                        out.append((t, line))
            return out

    def wait_for(self, prefix, timeout=10, after=0.0):
        return wait_until(lambda: [x for x in self.lines(prefix) if x[0] >= after], timeout, what=f"sd_notify {prefix!r}")[0]

    def close(self):
        self.running = False
        self.sock.close()


class EventStream:
    """A control-socket subscription read on a thread; events are kept in arrival order."""

    def __init__(self, path, topics=None):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(str(path))
        request = {"id": 1, "cmd": "subscribe"}
        if topics:
            request["topics"] = topics
        self.sock.sendall((json.dumps(request) + "\n").encode())
        self.events = []
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.subscribed.wait(5), "subscription was not acknowledged"

    def _run(self):
        buffer = b""
        while True:
            try:
                chunk = self.sock.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                message = json.loads(line)
                if message.get("id") == 1 and message.get("ok"):
                    self.subscribed.set()
                if "event" in message:
                    message["_t"] = time.monotonic()
                    with self.lock:
                        self.events.append(message)

    def all(self, name=None):
        with self.lock:
            return [e for e in self.events if name is None or e["event"] == name]

    def wait_for(self, name, predicate=lambda e: True, timeout=10, after=0.0):
        return wait_until(lambda: next((e for e in self.all(name) if e["_t"] >= after and predicate(e)), None),
                          timeout, what=f"event {name}")

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def control_request(path, request, timeout=5):
    """One request on a fresh control connection; returns the parsed response."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(path))
        s.sendall((json.dumps(request) + "\n").encode())
        buffer = b""
        while b"\n" not in buffer:
            chunk = s.recv(65536)
            if not chunk:
                raise AssertionError("daemon closed the connection without answering")
            buffer += chunk
        return json.loads(buffer.split(b"\n", 1)[0])


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


class Daemon:
    """The real tetherd binary with a configuration built from a dict (JSON is YAML)."""

    def __init__(self, tmp, config=None, env=None, notify=True, api_key=True, args=(), netns=None, user=None):
        self.netns = netns
        self.user = user
        self.tmp = pathlib.Path(tmp)
        self.tmp.mkdir(parents=True, exist_ok=True)
        if user:
            unprivileged_can_reach(self.tmp, user)
        self.socket_path = self.tmp / "control.sock"
        self.config = {
            "upstream": {"url": "ws://127.0.0.1:9/pcm", "protocol": "pcm-stream", "api_key_file": None},
            "control": {"socket": str(self.socket_path), "group": None},
            "network": {"watch": False},
            "log": {"level": "debug", "target": "stderr"},
        }
        if api_key:
            key_file = self.tmp / "api-key"
            key_file.write_text(API_KEY + "\n")
            key_file.chmod(0o600)
            if user:
                shutil.chown(key_file, user)
            self.config["upstream"]["api_key_file"] = str(key_file)
        merge(self.config, config or {})
        self.config_path = self.tmp / "tether.yaml"
        self.write_config()
        self.notify = NotifyReceiver(self.tmp / "notify.sock") if notify else None
        if self.notify and user:
            os.chmod(self.notify.path, 0o666)
        self.env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM")}
        if self.notify:
            self.env["NOTIFY_SOCKET"] = self.notify.path
        self.env.update(env or {})
        self.args = list(args)
        self.proc = None
        self.streams = []
        self.stderr_path = self.tmp / "tetherd.stderr"

    def write_config(self, config=None):
        self.config_path.write_text(json.dumps(config if config is not None else self.config, indent=1))

    def start(self, wait_ready=True, wrapper=(), binary=None, ready_timeout=20):
        """Runs tetherd (`binary`, default the one under test), under `wrapper` (e.g. valgrind)
        if given, inside the namespace and as the user this daemon was made for."""
        self.stderr_file = open(self.stderr_path, "wb")
        prefix = ["ip", "netns", "exec", self.netns] if self.netns else []
        if self.user:
            prefix += as_user(self.user)
        command = [*prefix, *wrapper, str(binary or BIN / "tetherd"), "--config", str(self.config_path), *self.args]
        self.proc = subprocess.Popen(command, env=self.env, stdout=self.stderr_file, stderr=subprocess.STDOUT)
        if wait_ready:
            wait_until(lambda: self.socket_path.exists() or self.proc.poll() is not None, ready_timeout, what="control socket")
            assert self.proc.poll() is None, f"tetherd exited early: {self.output()}"
            if self.notify:
                self.notify.wait_for("READY=1", timeout=ready_timeout)
        return self

    @property
    def pid(self):
        return self.proc.pid

    def request(self, cmd, **args):
        return control_request(self.socket_path, {"id": 1, "cmd": cmd, **args})

    def status(self):
        response = self.request("status")
        assert response["ok"], response
        return response["result"]

    def wait_state(self, state, timeout=10):
        """Polls status until the session is in `state`; returns the status."""
        return wait_until(lambda: (lambda st: st if st["state"] == state else None)(self.status()), timeout,
                          interval=0.02, what=f"state {state}")

    def events(self, topics=None):
        stream = EventStream(self.socket_path, topics)
        self.streams.append(stream)
        return stream

    def ctl(self, *args, env=None, prefix=()):
        """Runs tetherctl SUBCOMMAND ARGS --socket <ours>, optionally under `prefix` (setpriv)."""
        environment = dict(os.environ)
        environment.update(env or {})
        return subprocess.run([*prefix, str(BIN / "tetherctl"), *args, "--socket", str(self.socket_path)],
                              capture_output=True, text=True, timeout=15, env=environment)

    def stop(self, sig=signal.SIGTERM, timeout=5):
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None, 0.0
        started = time.monotonic()
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        return rc, time.monotonic() - started

    def output(self):
        try:
            self.stderr_file.flush()
        except Exception:
            pass
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    def close(self):
        for stream in self.streams:
            stream.close()
        self.streams = []
        self.stop()
        if self.notify:
            self.notify.close()
        output = self.output()
        assert API_KEY not in output, "the API key leaked into tetherd's output"


def as_user(user):
    """The command prefix that runs a program as `user` (its own group, no others, no
    capabilities), as systemd's `User=` does."""
    return ["setpriv", f"--reuid={user}", f"--regid={pwd.getpwnam(user).pw_gid}", "--clear-groups", "--inh-caps=-all"]


def unprivileged_can_reach(directory, user):
    """Gives `directory` to `user` and lets it traverse the folders above (pytest makes them
    0700), so a daemon running as that user can create its socket and read its files there."""
    directory = pathlib.Path(directory)
    shutil.chown(directory, user)
    for parent in directory.parents:
        if parent == pathlib.Path("/tmp") or parent == pathlib.Path("/"):
            break
        mode = parent.stat().st_mode & 0o777
        if mode & 0o001 == 0:
            parent.chmod(mode | 0o001)


def merge(base, extra):
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = value
    return base


@pytest.fixture
def daemon_factory(tmp_path):
    made = []

    def make(config=None, **kwargs):
        d = Daemon(tmp_path / f"d{len(made)}", config=config, **kwargs)
        made.append(d)
        return d

    yield make
    for d in made:
        d.close()


# -- systemd containers (container.py): a real systemd as PID 1 ------------------------------

from container import Container, ensure_installed, unavailable_reason  # noqa: E402


def _require_containers():
    reason = unavailable_reason()
    if reason:
        pytest.skip(f"cannot run systemd containers here: {reason}")
    ensure_installed()  # systemd-container; a failed install is an error, not a skip


def _booted(workdir):
    ct = Container(workdir)
    try:
        ct.boot()
    except BaseException:
        ct.stop()
        raise
    return ct


@pytest.fixture
def container(tmp_path):
    _require_containers()
    ct = _booted(tmp_path / "container")
    try:
        yield ct
    finally:
        ct.stop()


@pytest.fixture(scope="module")
def booted_container(tmp_path_factory):
    _require_containers()
    ct = _booted(tmp_path_factory.mktemp("booted-container"))
    try:
        yield ct
    finally:
        ct.stop()


@pytest.fixture
def new_container(tmp_path):
    """new_container(netns=None, binds=(), boot=True, timeout=30) -> Container."""
    _require_containers()
    made = []

    def make(netns=None, binds=(), boot=True, timeout=30):
        ct = Container(tmp_path / f"container{len(made)}", netns=netns, binds=binds)
        made.append(ct)
        if boot:
            ct.boot(timeout=timeout)
        return ct

    try:
        yield make
    finally:
        for ct in made:
            ct.stop()
