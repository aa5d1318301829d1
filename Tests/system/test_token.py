"""Fleet tokens: tetherd fetches its upstream credential from a token endpoint over HTTPS
(libcurl) before each connection attempt, caches it until it nears expiry, and reports every
way the endpoint can fail in `status.session.last_error` without crashing, hanging or leaking a
secret. Also: static API keys rotate on reload without dropping the live session.
Issue: credentials for a fleet.

The token endpoint is a real HTTPS server (Python `http.server` + `ssl`) with a certificate
from a CA made for the test run by the `openssl` CLI; the upstream is the independent
Python WebSocket peer, which lets in exactly the tokens the endpoint handed out."""

import json
import pathlib
import secrets
import select
import socket
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import BIN, wait_until
from peers import PythonPeer

# The robot's device credential: must never show up in tetherd's output or status.
DEVICE_CREDENTIAL = "devcred-" + secrets.token_hex(16)


# -- a CA, a server certificate and an unrelated CA, made once per run -------------------------


class PKI:
    def __init__(self, directory):
        self.dir = pathlib.Path(directory)
        self.ca, self.ca_key = self._ca("tether test CA")
        self.other_ca, _ = self._ca("some other CA")
        self.cert, self.key = self._server_cert()

    def _openssl(self, *args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=30)

    def _ca(self, name):
        stem = name.replace(" ", "-")
        cert, key = self.dir / f"{stem}.pem", self.dir / f"{stem}.key"
        self._openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                      "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", f"/CN={name}",
                      "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        return cert, key

    def _server_cert(self):
        key, csr, cert, ext = (self.dir / n for n in ("server.key", "server.csr", "server.pem", "server.ext"))
        ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
                       "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n")
        self._openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                      "-keyout", str(key), "-out", str(csr), "-subj", "/CN=127.0.0.1")
        self._openssl("x509", "-req", "-in", str(csr), "-CA", str(self.ca), "-CAkey", str(self.ca_key),
                      "-CAcreateserial", "-out", str(cert), "-days", "2", "-extfile", str(ext))
        return cert, key


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return PKI(tmp_path_factory.mktemp("pki"))


# -- the token endpoint ----------------------------------------------------------------------


class TokenServer:
    """An HTTPS token endpoint whose behaviour the test switches with `mode`:
    ok (OpenAI's client_secrets shape), status (answer `status_code`), silent (read the request,
    never answer), huge / huge-unannounced (a body past 64 KiB, with and without a length),
    missing (JSON without the token field)."""

    def __init__(self, pki, peer):
        self.peer = peer
        self.mode = "ok"
        self.status_code = 500
        self.lifetime = 4.0  # seconds until expires_at; None: no expiry in the answer
        self.requests = []  # (monotonic time, method, path, headers, body)
        self.issued = []
        self.lock = threading.Lock()
        self.release = threading.Event()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(pki.cert), str(pki.key))
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                owner._handle(self)

            def do_GET(self):
                owner._handle(self)

            def log_message(self, *args):
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def finish_request(self, request, client_address):
                # TLS per connection, on the connection's own thread: a client that rejects
                # our certificate must not stall the accept loop.
                request.settimeout(5)
                try:
                    tls = context.wrap_socket(request, server_side=True)
                except (ssl.SSLError, OSError):
                    return
                super().finish_request(tls, client_address)

            def handle_error(self, request, client_address):
                pass

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"https://127.0.0.1:{self.port}/v1/realtime/client_secrets"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _handle(self, h):
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        with self.lock:
            self.requests.append((time.monotonic(), h.command, h.path, dict(h.headers), body))
            mode = self.mode
        if mode == "silent":
            self.release.wait(30)
            return
        if mode == "status":
            self._send(h, self.status_code, {"error": {"message": "nope", "echo": DEVICE_CREDENTIAL}})
        elif mode == "missing":
            self._send(h, 200, {"token": "wrong-field", "expires_at": time.time() + 60})
        elif mode in ("huge", "huge-unannounced"):
            payload = json.dumps({"value": "ek_huge", "pad": "a" * 100_000}).encode()
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            if mode == "huge":
                h.send_header("Content-Length", str(len(payload)))
            h.end_headers()  # HTTP/1.0: without a length the body ends when we close
            try:
                h.wfile.write(payload)
            except OSError:
                pass  # tetherd hung up once it had 64 KiB: what we want
        else:
            token = "ek_" + secrets.token_hex(16)
            with self.lock:
                self.issued.append(token)
            self.peer.accepted_keys.add(token)
            answer = {"value": token, "session": {"type": "realtime", "model": "gpt-realtime"}}
            if self.lifetime is not None:
                answer["expires_at"] = time.time() + self.lifetime
            self._send(h, 200, answer)

    @staticmethod
    def _send(h, status, obj):
        payload = json.dumps(obj).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(payload)))
        h.end_headers()
        h.wfile.write(payload)

    def count(self):
        with self.lock:
            return len(self.requests)

    def times(self):
        with self.lock:
            return [r[0] for r in self.requests]

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def peer():
    p = PythonPeer(accepted_keys=set())
    yield p
    p.close()


@pytest.fixture
def token_server(pki, peer):
    server = TokenServer(pki, peer)
    yield server
    server.close()


def token_config(tmp_path, peer, url, pki, ca_file="right", **token):
    credential = tmp_path / "device-credential"
    credential.write_text(DEVICE_CREDENTIAL + "\n")
    credential.chmod(0o600)
    upstream = {
        "url": peer.url("/v1/realtime?model=gpt-realtime"), "protocol": "openai-realtime", "ping_interval": "1s",
        "token": {"url": url, "credential_file": str(credential), "refresh_before": "1s",
                  "body": {"session": {"type": "realtime", "model": "gpt-realtime"}},
                  "connect_timeout": "500ms", "timeout": "1s", **token},
    }
    if ca_file == "right":
        upstream["ca_file"] = str(pki.ca)
    elif ca_file == "wrong":
        upstream["ca_file"] = str(pki.other_ca)
    return {"upstream": upstream, "link": {"backoff": {"initial": "100ms", "max": "500ms", "jitter": 0}}}


def wait_error(d, fragment, timeout=5):
    def check():
        status = d.status()
        return status if fragment in (status["session"]["last_error"] or "") else None
    return wait_until(check, timeout, interval=0.05, what=f"last_error containing {fragment!r}")


def assert_no_secrets(d, server=None):
    """Neither the device credential nor any token appears in tetherd's output or status."""
    texts = [d.output()]
    if d.proc.poll() is None:
        texts.append(json.dumps(d.status()))
    secrets_ = [DEVICE_CREDENTIAL] + (list(server.issued) if server else [])
    for text in texts:
        for secret in secrets_:
            assert secret not in text, "a credential leaked into tetherd's output or status"


def bearer(connection):
    return connection.headers.get("Authorization", "").removeprefix("Bearer ")


def libcurl_mapped(d):
    """Whether tetherd has libcurl loaded: it is opened on first use, only for token endpoints."""
    return "libcurl.so" in pathlib.Path(f"/proc/{d.pid}/maps").read_text()


# -- the happy path ----------------------------------------------------------------------------


def test_token_is_fetched_used_cached_and_refreshed(peer, token_server, pki, daemon_factory, tmp_path):
    d = daemon_factory(token_config(tmp_path, peer, token_server.url, pki), api_key=False).start()
    events = d.events(["session"])
    d.wait_state("live")
    # One fetch, with the device credential, the configured body, as JSON.
    assert token_server.count() == 1
    _, method, path, headers, body = token_server.requests[0]
    assert (method, path) == ("POST", "/v1/realtime/client_secrets")
    assert headers["Authorization"] == f"Bearer {DEVICE_CREDENTIAL}"
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body) == {"session": {"type": "realtime", "model": "gpt-realtime"}}
    first = token_server.issued[0]
    assert bearer(peer.latest()) == first
    fetched = token_server.times()[0]

    # A reconnect inside the token's life (4 s, refreshed 1 s early) reuses it: no fetch.
    asked = time.monotonic()
    assert d.request("reconnect")["ok"]
    events.wait_for("session.live", timeout=5, after=asked)
    assert len(peer.connections) == 2 and bearer(peer.latest()) == first
    assert token_server.count() == 1
    assert time.monotonic() - fetched < 3.0, "the reuse check ran too late to mean anything"

    # Once it is within refresh_before of expiry, the next connection fetches a fresh one.
    time.sleep(max(0.0, fetched + 4.2 - time.monotonic()))  # the token's own clock: nothing to await
    asked = time.monotonic()
    assert d.request("reconnect")["ok"]
    events.wait_for("session.live", timeout=5, after=asked)
    assert token_server.count() == 2
    assert bearer(peer.latest()) == token_server.issued[1] != first
    assert libcurl_mapped(d)
    assert_no_secrets(d, token_server)


def test_a_token_without_expiry_is_used_once(peer, token_server, pki, daemon_factory, tmp_path):
    token_server.lifetime = None
    d = daemon_factory(token_config(tmp_path, peer, token_server.url, pki), api_key=False).start()
    events = d.events(["session"])
    d.wait_state("live")
    asked = time.monotonic()
    assert d.request("reconnect")["ok"]
    events.wait_for("session.live", timeout=5, after=asked)
    assert token_server.count() == 2
    assert [bearer(c) for c in peer.connections] == token_server.issued
    assert_no_secrets(d, token_server)


def test_a_token_the_upstream_refuses_is_not_offered_again(peer, token_server, pki, daemon_factory, tmp_path):
    token_server.lifetime = 600.0
    d = daemon_factory(token_config(tmp_path, peer, token_server.url, pki), api_key=False).start()
    events = d.events(["session"])
    d.wait_state("live")
    first = token_server.issued[0]
    peer.accepted_keys.discard(first)  # revoked upstream while tetherd still caches it
    asked = time.monotonic()
    assert d.request("reconnect")["ok"]
    events.wait_for("session.state", lambda e: "HTTP 401" in e["data"]["reason"], timeout=5, after=asked)
    events.wait_for("session.live", timeout=5, after=asked)
    assert token_server.count() == 2
    assert bearer(peer.latest()) == token_server.issued[1] != first
    assert_no_secrets(d, token_server)


# -- every way the endpoint can fail ---------------------------------------------------------


FAILURES = {
    "http-500": ({"mode": "status", "status_code": 500}, "token endpoint: HTTP 500"),
    "http-401": ({"mode": "status", "status_code": 401}, "token endpoint: HTTP 401 (check the device credential)"),
    "silent": ({"mode": "silent"}, "token endpoint: timed out"),
    "huge": ({"mode": "huge"}, "token endpoint: response larger than 64 KiB"),
    "huge-unannounced": ({"mode": "huge-unannounced"}, "token endpoint: response larger than 64 KiB"),
    "missing-field": ({"mode": "missing"}, 'token endpoint: no "value" in the response'),
}


@pytest.mark.parametrize("case", FAILURES.keys())
def test_endpoint_failures_are_explained_paced_and_survived(peer, token_server, pki, daemon_factory, tmp_path, case):
    setup, message = FAILURES[case]
    for key, value in setup.items():
        setattr(token_server, key, value)
    d = daemon_factory(token_config(tmp_path, peer, token_server.url, pki), api_key=False).start()
    started = time.monotonic()
    status = wait_error(d, message, timeout=4)
    assert status["session"]["last_error"] == message
    assert status["state"] in ("connecting", "reconnecting")
    if case == "silent":
        # The fetch gives up after token.timeout (1 s); meanwhile tetherd answers at once.
        first = token_server.times()[0]
        assert time.monotonic() - first < 2.5
        asked = time.monotonic()
        d.status()
        assert time.monotonic() - asked < 0.5, "the control socket stalled behind the token fetch"
    # Retried with backoff, not in a hot loop; 401 waits backoff.max (500 ms) between tries.
    window = time.monotonic()
    time.sleep(1.5)
    times = [t for t in token_server.times() if t >= window]
    assert 1 <= len(times) <= 8, f"{len(times)} fetches in 1.5 s"
    if case == "http-401":
        gaps = [b - a for a, b in zip(token_server.times(), token_server.times()[1:])]
        assert min(gaps) >= 0.45, f"refusals retried after {min(gaps):.2f}s"
    assert d.proc.poll() is None
    assert peer.connections == [], "no upgrade may be tried without a token"
    # The endpoint recovers: the next attempt goes live.
    token_server.mode = "ok"
    token_server.release.set()
    d.wait_state("live", timeout=5)
    assert bearer(peer.latest()) == token_server.issued[-1]
    assert time.monotonic() - started < 12
    assert_no_secrets(d, token_server)


def test_a_server_that_never_finishes_tls_hits_the_connect_timeout(peer, pki, daemon_factory, tmp_path):
    # Accepted by the kernel's backlog, never read: TLS never starts. connect_timeout is 500 ms.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        url = f"https://127.0.0.1:{silent.getsockname()[1]}/token"
        d = daemon_factory(token_config(tmp_path, peer, url, pki), api_key=False).start()
        started = time.monotonic()
        wait_error(d, "token endpoint: timed out", timeout=3)
        assert time.monotonic() - started < 2.0
        assert d.proc.poll() is None
        assert_no_secrets(d)


# -- trust -------------------------------------------------------------------------------------


@pytest.mark.parametrize("ca_file", ["wrong", "none"])
def test_an_untrusted_certificate_is_refused(peer, token_server, pki, daemon_factory, tmp_path, ca_file):
    d = daemon_factory(token_config(tmp_path, peer, token_server.url, pki, ca_file=ca_file), api_key=False).start()
    status = wait_error(d, "certificate", timeout=4)
    assert status["session"]["last_error"].startswith("token endpoint: SSL certificate problem")
    assert token_server.issued == [] and peer.connections == []
    assert_no_secrets(d)


# -- proxies -------------------------------------------------------------------------------------


class ConnectProxy:
    """A minimal HTTP CONNECT proxy that records the targets it tunnels to."""

    def __init__(self):
        self.targets = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._tunnel, args=(client,), daemon=True).start()

    def _tunnel(self, client):
        with client:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = client.recv(4096)
                if not chunk:
                    return
                head += chunk
            target = head.split(b" ")[1].decode()
            self.targets.append(target)
            host, port = target.rsplit(":", 1)
            with socket.create_connection((host, int(port)), timeout=5) as upstream:
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                sockets = [client, upstream]
                while True:
                    readable, _, _ = select.select(sockets, [], [], 5)
                    if not readable:
                        return
                    for s in readable:
                        data = s.recv(65536)
                        if not data:
                            return
                        (upstream if s is client else client).sendall(data)

    def close(self):
        self.sock.close()


@pytest.mark.parametrize("no_proxy", [False, True])
def test_https_proxy_from_the_environment_is_honoured(peer, token_server, pki, daemon_factory, tmp_path, no_proxy):
    proxy = ConnectProxy()
    try:
        env = {"HTTPS_PROXY": f"http://127.0.0.1:{proxy.port}", "NO_PROXY": "127.0.0.1" if no_proxy else ""}
        d = daemon_factory(token_config(tmp_path, peer, token_server.url, pki), api_key=False, env=env).start()
        d.wait_state("live")
        expected = [] if no_proxy else [f"127.0.0.1:{token_server.port}"]
        assert proxy.targets == expected
        assert_no_secrets(d, token_server)
    finally:
        proxy.close()


# -- configuration -------------------------------------------------------------------------------


def test_an_unreadable_credential_file_is_a_configuration_error(tmp_path, peer, pki):
    config = token_config(tmp_path, peer, "https://127.0.0.1:9/token", pki)
    config["upstream"]["token"]["credential_file"] = str(tmp_path / "absent")
    path = tmp_path / "tether.yaml"
    path.write_text(json.dumps(config))
    result = subprocess.run([str(BIN / "tetherd"), "--check-config", "--config", str(path)],
                            capture_output=True, text=True, timeout=20)
    assert result.returncode == 78, result
    assert "upstream.token.credential_file" in result.stderr + result.stdout


def test_the_systemd_credential_wins_over_credential_file(peer, token_server, pki, daemon_factory, tmp_path):
    loaded = "devcred-systemd-" + secrets.token_hex(8)
    directory = tmp_path / "credentials"
    directory.mkdir()
    (directory / "device-credential").write_text(loaded + "\n")
    (directory / "device-credential").chmod(0o600)
    d = daemon_factory(token_config(tmp_path, peer, token_server.url, pki), api_key=False,
                       env={"CREDENTIALS_DIRECTORY": str(directory)}).start()
    d.wait_state("live")
    assert token_server.requests[0][3]["Authorization"] == f"Bearer {loaded}"
    assert loaded not in d.output()
    assert_no_secrets(d, token_server)


# -- static keys rotate on reload ----------------------------------------------------------------


def test_a_rotated_key_file_is_used_by_the_next_connection_without_dropping_the_live_one(daemon_factory):
    old_key, new_key = "sk-old-" + secrets.token_hex(8), "sk-new-" + secrets.token_hex(8)
    peer = PythonPeer(accepted_keys={old_key, new_key})
    try:
        d = daemon_factory({"upstream": {"url": peer.url("/pcm"), "protocol": "pcm-stream", "ping_interval": "1s"},
                            "link": {"backoff": {"initial": "100ms", "max": "500ms"}}}, api_key=False)
        key_file = d.tmp / "rotating-key"
        key_file.write_text(old_key + "\n")
        key_file.chmod(0o600)
        d.config["upstream"]["api_key_file"] = str(key_file)
        d.write_config()
        d.start()
        events = d.events(["session"])
        d.wait_state("live")
        live = peer.latest()
        assert bearer(live) == old_key
        assert not libcurl_mapped(d), "libcurl was loaded by a daemon that has no token endpoint"
        # Rotate (and leave it group-readable: the warning must stay), then reload.
        key_file.write_text(new_key + "\n")
        key_file.chmod(0o640)
        assert d.request("reload")["ok"]
        wait_until(lambda: "readable by group or others" in d.output(), 5, what="the key file mode warning")
        time.sleep(0.5)  # a key change must not reconnect: give a wrong reconnect time to show
        assert peer.latest() is live and live.closed_at is None and live.close_frame_at is None
        assert d.status()["state"] == "live"
        # The next connection presents the new key.
        asked = time.monotonic()
        assert d.request("reconnect")["ok"]
        events.wait_for("session.live", timeout=5, after=asked)
        assert bearer(peer.latest()) == new_key
        output = d.output()
        assert old_key not in output and new_key not in output
    finally:
        peer.close()
