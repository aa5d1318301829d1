"""A component of a running tetherd that ends unexpectedly ends tetherd with exit 70 and one
error line naming it, at once (not after a watchdog timeout), so that systemd restarts it; a
daemon whose components are all alive still stops with 0.

The fault comes through the test-only `debug-fault` control command, which exists only when
tetherd was started with TETHER_TEST_FAULTS=1. For the network monitor it replaces the netlink
socket's descriptor under the monitor with one that is not a socket, as a descriptor closed
or clobbered by a stray close(2) elsewhere in the process would be."""

import re
import signal
import subprocess
import time

from conftest import wait_until

FAULTS = {"TETHER_TEST_FAULTS": "1"}
WATCHED = {"network": {"watch": True, "debounce": "100ms"}}


def _network_watched(d):
    wait_until(lambda: d.status()["network"].get("online") is not None, 10, interval=0.05, what="first network evaluation")


def _wait_exit(d, timeout):
    try:
        return d.proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"tetherd still running {timeout} s after the fault:\n{d.output()}") from None


def test_a_dead_network_monitor_ends_tetherd_with_70_naming_it(daemon_factory):
    d = daemon_factory(config=WATCHED, env=FAULTS, user="nobody").start()
    _network_watched(d)
    response = d.request("debug-fault", component="network-monitor")
    assert response["ok"], response
    faulted = time.monotonic()
    rc = _wait_exit(d, 2.0)
    elapsed = time.monotonic() - faulted
    output = d.output()
    assert rc == 70, f"exit {rc}:\n{output}"
    assert elapsed < 2.0
    named = [line for line in output.splitlines() if re.match(r"\S+ error \S+: component network-monitor ended unexpectedly: \S", line)]
    assert len(named) == 1, f"expected one error line naming the component:\n{output}"
    # The rest of the group shut down in order, as on SIGTERM: the last service, the first
    # to hear of it, announced the stop.
    assert d.notify.lines("STOPPING=1"), "no STOPPING=1: the group did not shut down gracefully"
    assert not d.socket_path.exists(), "control socket left behind"


def test_the_fault_commands_exist_only_when_tests_enable_them(daemon_factory):
    d = daemon_factory(config=WATCHED, user="nobody").start()
    _network_watched(d)
    for command, arguments in (("debug-fault", {"component": "network-monitor"}), ("debug-stall", {"loop": "session", "seconds": 1}),
                               ("debug-rotate", {})):
        response = d.request(command, **arguments)
        assert not response["ok"] and response["error"]["code"] == "unknown_command", (command, response)
    rc, seconds = d.stop(signal.SIGTERM)
    assert rc == 0, d.output()
    assert seconds < 2.0


def test_an_unfaulted_daemon_still_exits_0_on_sigterm(daemon_factory):
    d = daemon_factory(config=WATCHED, env=FAULTS, user="nobody").start()
    _network_watched(d)
    rc, seconds = d.stop(signal.SIGTERM)
    output = d.output()
    assert rc == 0, output
    assert seconds < 2.0
    assert "ended unexpectedly" not in output


def test_an_unknown_component_is_refused_and_the_daemon_keeps_running(daemon_factory):
    d = daemon_factory(config=WATCHED, env=FAULTS, user="nobody").start()
    response = d.request("debug-fault", component="flux-capacitor")
    assert not response["ok"] and response["error"]["code"] == "invalid_argument", response
    assert "network-monitor" in response["error"]["message"]
    assert d.proc.poll() is None
    rc, _ = d.stop(signal.SIGTERM)
    assert rc == 0
