"""tether-mock-upstream as a test fixture: the real binary, its port read from its first line,
its control endpoint, and its recordings."""

import json
import pathlib
import signal
import subprocess
import threading
import urllib.request

from conftest import BIN


def in_netns(name, fn):
    """Runs `fn` on a thread inside network namespace `name` (namespaces are per thread)."""
    from netns import enter
    result = {}

    def run():
        try:
            enter(name)
            result["value"] = fn()
        except BaseException as error:  # handed to the caller
            result["error"] = error

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result["value"]


class Mock:
    """`netns`/`host`: listen in that network namespace on that address (its control endpoint
    is then reached from a thread that enters the namespace)."""

    def __init__(self, tmp, *args, netns=None, host=None):
        self.record = pathlib.Path(tmp) / "mock-record"
        self.netns = netns
        prefix = ["ip", "netns", "exec", netns] if netns else []
        where = ["--host", host] if host else []
        self.proc = subprocess.Popen([*prefix, str(BIN / "tether-mock-upstream"), "--port", "0", *where, "--record", str(self.record),
                                      "--quiet", *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()
        assert line.startswith("listening on "), line
        self.base = line.split()[-1]
        self.http = self.base.replace("ws://", "http://")

    def url(self, path):
        return self.base + path

    def control(self, action, **query):
        q = "&".join(f"{k}={v}" for k, v in query.items())
        request = urllib.request.Request(f"{self.http}/mock/{action}{'?' + q if q else ''}", method="POST" if action != "status" else "GET")

        def ask():
            with urllib.request.urlopen(request, timeout=5) as response:
                return json.loads(response.read())

        if not self.netns:
            return ask()
        return in_netns(self.netns, ask)

    def status(self):
        return self.control("status")

    def transcripts(self, role=None):
        """The transcripts the mock sent (`user`/`assistant` turns), oldest first: what a client's
        conversation ledger should hold."""
        return [t for t in self.status()["transcripts"] if role is None or t["role"] == role]

    def items_created(self, connection=None):
        """The client's `conversation.item.create` items (with `audio_bytes_before`), in order."""
        return [i for i in self.status()["items_created"] if connection is None or i["connection"] == connection]

    def connection_pcm(self):
        """What each connection received, in connection order."""
        files = sorted(self.record.glob("conn-*.pcm"), key=lambda p: int(p.stem.split("-")[1]))
        return [p.read_bytes() for p in files]

    def close(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
