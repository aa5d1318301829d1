"""tether-mock-upstream as a test fixture: the real binary, its port read from its first line,
its control endpoint, and its recordings."""

import json
import pathlib
import signal
import subprocess
import urllib.request

from conftest import BIN


class Mock:
    def __init__(self, tmp, *args):
        self.record = pathlib.Path(tmp) / "mock-record"
        self.proc = subprocess.Popen([str(BIN / "tether-mock-upstream"), "--port", "0", "--record", str(self.record),
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
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read())

    def status(self):
        return self.control("status")

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
