"""The upstream TCP connection's socket options, read from the running daemon's own socket
(duplicated with pidfd_getfd), with tetherd running as an unprivileged user as its unit runs
it. NIO's `.socketOption(.tcp_nodelay)` is a SOL_SOCKET option, so it set SO_DEBUG (which an
unprivileged process may not: the connection then failed with EACCES, forever) and left Nagle's
algorithm on. Issue: tetherd must work as the systemd unit it ships as."""

import ctypes
import os
import socket

from conftest import wait_until
from mock import Mock

SYS_PIDFD_GETFD = 438


def duplicate_fd(pid, fd):
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = os.pidfd_open(pid)
    try:
        copy = libc.syscall(SYS_PIDFD_GETFD, pidfd, fd, 0)
        if copy < 0:
            raise OSError(ctypes.get_errno(), "pidfd_getfd")
        return copy
    finally:
        os.close(pidfd)


def tcp_socket_to(pid, port):
    """The fd number in `pid` of its TCP connection to 127.0.0.1:`port`, or None."""
    inodes = {}
    with open(f"/proc/{pid}/net/tcp") as table:
        for line in list(table)[1:]:
            fields = line.split()
            remote_port = int(fields[2].split(":")[1], 16)
            if remote_port == port and fields[3] == "01":  # ESTABLISHED
                inodes[fields[9]] = True
    for name in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{name}")
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in inodes:
            return int(name)
    return None


def test_unprivileged_tetherd_connects_with_nodelay_and_without_so_debug(tmp_path, daemon_factory):
    mock = Mock(tmp_path)
    try:
        port = int(mock.base.rsplit(":", 1)[1])
        d = daemon_factory({"upstream": {"url": mock.url("/pcm"), "protocol": "pcm-stream"},
                            "link": {"backoff": {"initial": "100ms", "max": "1s"}}}, user="nobody").start()
        # As an unprivileged user the old option failed every connect with EACCES.
        d.wait_state("live", timeout=10)
        fd = wait_until(lambda: tcp_socket_to(d.pid, port), 5, what="tetherd's upstream socket")
        with socket.socket(fileno=duplicate_fd(d.pid, fd)) as copy:
            assert copy.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1, "Nagle's algorithm is still on"
            assert copy.getsockopt(socket.SOL_SOCKET, socket.SO_DEBUG) == 0, "socket debugging was turned on"
        assert open(f"/proc/{d.pid}/status").read().split("Uid:")[1].split()[0] != "0"
    finally:
        mock.close()
