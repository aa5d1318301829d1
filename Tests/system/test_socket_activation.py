"""The control socket from systemd (socket activation, `tether.socket`), outside PID-1 systemd:
`systemd-socket-activate` listens, starts tetherd on the first connection and passes the
listening socket as systemd does. The real-systemd suite (Tests/systemd) runs the unit pair.
Issue: tetherd must work as the systemd unit it ships as."""

import os
import re
import signal
import socket
import subprocess
import time

from conftest import BIN, Daemon, control_request, wait_until


def test_a_passed_socket_is_served_answers_the_first_client_and_is_left_to_systemd(tmp_path):
    d = Daemon(tmp_path / "d", notify=False)
    path = d.socket_path
    env = dict(d.env)
    proc = subprocess.Popen(["systemd-socket-activate", "--listen", str(path), str(BIN / "tetherd"), "--config", str(d.config_path)],
                            env=env, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "stderr", "wb"))
    try:
        # The socket file appears at bind(), before listen(): a connect in between is refused.
        # The activator logs "Listening on" once it listens.
        wait_until(lambda: "Listening on" in (tmp_path / "stderr").read_text(), 10, what="the activator listening")
        # This connection starts tetherd (it is not running yet) and is answered once it is up.
        response = control_request(path, {"id": 1, "cmd": "status"}, timeout=15)
        assert response["ok"], response
        assert os.stat(path).st_mode & 0o777 != 0, path
        # SIGTERM once the service group runs (it installs the signal handling): one that comes
        # in the first milliseconds, before that, ends the process by the signal (noted).
        wait_until(lambda: re.search(r"tetherd \S+ ready", (tmp_path / "stderr").read_text()), 10, what="tetherd ready")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0, (tmp_path / "stderr").read_text()
        # The socket is systemd's: tetherd leaves it in place for the next start.
        assert path.exists(), "tetherd removed the socket systemd made"
        log = (tmp_path / "stderr").read_text()
        assert "control socket ready (from systemd)" in log, log
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_an_unprivileged_daemon_serving_its_own_group_needs_no_chown(tmp_path):
    """Started by hand as its own user, with control.group its own group, tetherd makes the
    socket without chown (its unit's system call filter forbids chown)."""
    d = Daemon(tmp_path / "d", user="nobody", config={"control": {"group": "nogroup"}})
    try:
        d.start()
        assert d.request("status")["ok"]
        st = os.stat(d.socket_path)
        assert (st.st_uid, st.st_gid) == (65534, 65534), (st.st_uid, st.st_gid)
        assert st.st_mode & 0o777 == 0o660
    finally:
        d.close()
