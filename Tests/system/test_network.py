"""Network awareness end to end: tetherd in a "robot" namespace, the upstream peer in a
"brain" namespace, joined by veth pairs; the kernel's rtnetlink tells tetherd what happens.
Issue: network awareness on rtnetlink."""

import os
import time

import pytest

from audio import Format, Rig, check_across_connections, counter_pcm
from conftest import API_KEY, wait_until
from netns import RobotAndBrain
from peers import PythonPeer

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")


@pytest.fixture
def net():
    n = RobotAndBrain()
    yield n
    n.close()


@pytest.fixture
def brain(net):
    p = PythonPeer(api_key=API_KEY, host=net.BRAIN_IP, netns=net.brain)
    yield p
    p.close()


@pytest.fixture
def rig(tmp_path):
    r = Rig(str(tmp_path / "rig"), capture=Format(24000, 1, 20), playback=Format(24000, 1, 20))
    yield r
    r.stop()


def robot_daemon(daemon_factory, net, brain, rig=None, **extra):
    config = {"upstream": {"url": brain.url("/pcm"), "protocol": "pcm-stream", "ping_interval": "1s"},
              "network": {"watch": True, "debounce": "100ms", "probe_timeout": "1s"},
              "link": {"grace": "3s", "backoff": {"initial": "200ms", "max": "2s"}}}
    if rig:
        config["audio"] = {"capture": {"device": "tether_capture"}, "playback": {"device": "tether_playback"}, "echo": "none"}
    for key, value in extra.items():
        config.setdefault(key, {}).update(value)
    return daemon_factory(config, netns=net.robot, env=rig.env if rig else None)


def test_status_shows_the_network_the_kernel_reports(daemon_factory, net, brain):
    d = robot_daemon(daemon_factory, net, brain).start()
    status = d.wait_state("live")
    assert status["network"]["online"] is True
    assert status["network"]["default_interface"] == "r0"
    assert status["network"]["addresses"] == [net.ROBOT_IP]
    assert status["network"]["kind"] == "ethernet"


def test_a_short_link_loss_is_one_blip_and_no_loss(daemon_factory, net, brain, rig):
    total = 12000 * 12
    rig.start(capture_pcm=counter_pcm(1, total), lead_ms=0)
    d = robot_daemon(daemon_factory, net, brain, rig).start()
    d.wait_state("live")
    events = d.events(["session", "network"])
    first = brain.latest()
    down = time.monotonic()
    net.carrier(False)
    offline = events.wait_for("network.offline", timeout=3, after=down)
    degraded = events.wait_for("session.state", lambda e: e["data"]["to"] == "degraded", timeout=3, after=down)
    assert degraded["_t"] - down < 0.5, "the session must degrade at once, not after a ping timeout"
    time.sleep(max(0, 1.5 - (time.monotonic() - down)))
    up = time.monotonic()
    net.carrier(True)
    events.wait_for("network.online", timeout=3, after=up)
    blip = events.wait_for("link.blip", timeout=5, after=up)
    assert 1400 <= blip["data"]["duration_ms"] <= 2500
    wait_until(lambda: d.status()["state"] == "live", 5, what="live again")
    time.sleep(3.5)  # past the grace period: still no loss
    assert not events.all("session.lost")
    assert brain.latest() is first, "the connection survived the blip and carried on"
    assert first.closed_at is None
    # No audio lost upstream: the blip's audio was buffered and sent on, in order.
    wait_until(rig.feeder.clip_done.is_set, 20, what="the counting clip")
    wait_until(lambda: check_across_connections([bytes(c.pcm) for c in brain.connections], 0)[1] == total, 10,
               what="all audio upstream")
    assert check_across_connections([bytes(c.pcm) for c in brain.connections], 0)[0] == 1


def test_a_long_outage_is_one_loss_no_attempts_and_live_fast_when_back(daemon_factory, net, brain, rig):
    total = 12000 * 20
    rig.start(capture_pcm=counter_pcm(1, total), lead_ms=0)
    d = robot_daemon(daemon_factory, net, brain, rig).start()
    d.wait_state("live")
    events = d.events(["session", "network"])
    down = time.monotonic()
    net.carrier(False)
    events.wait_for("network.offline", timeout=3, after=down)
    lost = events.wait_for("session.lost", timeout=6, after=down)
    assert 2.9 <= lost["_t"] - down <= 3.6, "session.lost comes when link.grace runs out"
    generation = d.status()["session"]["generation"]
    connections = len(brain.connections)
    time.sleep(max(0, 10 - (time.monotonic() - down)))
    status = d.status()
    assert status["state"] == "offline"
    assert status["session"]["generation"] == generation, "no attempts while offline"
    assert len(brain.connections) == connections
    up = time.monotonic()  # just before `ip link set up`: the latency includes the command
    net.carrier(True)
    events.wait_for("network.online", timeout=3, after=up)
    live = events.wait_for("session.live", timeout=3, after=up)
    assert live["_t"] - up <= 0.3, f"live {1000 * (live['_t'] - up):.0f} ms after the link came back"
    assert len(events.all("session.lost")) == 1
    # The outage's microphone audio (within max_age) arrives, in order, after the link returns.
    wait_until(rig.feeder.clip_done.is_set, 20, what="the counting clip")
    streams = lambda: [bytes(c.pcm) for c in brain.connections]
    wait_until(lambda: check_across_connections(streams(), 2 * 12000)[1] == total, 10, what="all audio upstream")
    assert check_across_connections(streams(), 2 * 12000)[0] == 1
    assert d.status()["buffer"]["dropped_ms"] == 0


def test_a_moved_default_route_with_a_dead_old_path_reconnects_through_the_new_one(daemon_factory, net, brain):
    net.add_second_path()
    d = robot_daemon(daemon_factory, net, brain).start()
    d.wait_state("live")
    events = d.events(["session", "network"])
    old = brain.latest()
    moved = time.monotonic()
    net.blackhole_robot_address("10.77.0.2")
    net.move_default_route()
    change = events.wait_for("network.change", timeout=3, after=moved)
    assert change["data"]["default_interface"] == "r1"
    live = events.wait_for("session.live", timeout=5, after=moved)
    assert live["_t"] - moved <= 1.0 + 0.5, f"reconnected after {live['_t'] - moved:.2f}s (probe_timeout 1s)"
    assert brain.latest() is not old
    assert brain.latest().ws.remote_address[0] == "10.78.0.2"


def test_a_silently_dead_path_is_found_by_pings(daemon_factory, net, brain):
    d = robot_daemon(daemon_factory, net, brain).start()
    d.wait_state("live")
    events = d.events(["session"])
    cut = time.monotonic()
    net.blackhole_robot_address()
    degraded = events.wait_for("session.state", lambda e: e["data"]["to"] == "degraded", timeout=6, after=cut)
    assert degraded["_t"] - cut <= 2 * 1.0 + 1.0, f"found after {degraded['_t'] - cut:.2f}s"
    assert "ping" in degraded["data"]["reason"]


def test_without_watch_the_session_falls_back_to_pings(daemon_factory, net, brain):
    d = robot_daemon(daemon_factory, net, brain, network={"watch": False}).start()
    d.wait_state("live")
    events = d.events(["session", "network"])
    down = time.monotonic()
    net.carrier(False)
    degraded = events.wait_for("session.state", lambda e: e["data"]["to"] == "degraded", timeout=6, after=down)
    assert degraded["_t"] - down >= 0.5, "without rtnetlink only the pings can tell"
    assert not events.all("network.offline")
    assert d.status()["network"]["watch"] is False
    net.carrier(True)
