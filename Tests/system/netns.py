"""Network namespaces for the system tests: a "robot" namespace where tetherd runs and a
"brain" namespace where the upstream peer listens, joined by veth pairs, driven with iproute2
and nft. Real rtnetlink, real TCP; nothing simulated."""

import ctypes
import os
import subprocess
import uuid

CLONE_NEWNET = 0x40000000


def sh(*args, check=True):
    result = subprocess.run(list(args), capture_output=True, text=True, timeout=20)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {result.stderr.strip()}")
    return result


def enter(name):
    """Moves the calling thread into namespace `name` (network namespaces are per thread)."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns failed")
    finally:
        os.close(fd)


class RobotAndBrain:
    """robot: veth r0 10.77.0.2/24 (default route via 10.77.0.1) and, on demand, a second
    path r1 10.78.0.2/24. brain: b0 10.77.0.1/24, b1 10.78.0.1/24, and the service address
    10.99.0.1 on its loopback, so the robot reaches the brain through its default route (as
    it reaches a server on the Internet) and moving that route moves the path."""

    BRAIN_IP = "10.99.0.1"
    GATEWAY = "10.77.0.1"
    ROBOT_IP = "10.77.0.2"

    def __init__(self):
        tag = uuid.uuid4().hex[:6]
        self.robot = f"tether-r-{os.getpid()}-{tag}"
        self.brain = f"tether-b-{os.getpid()}-{tag}"
        sh("ip", "netns", "add", self.robot)
        sh("ip", "netns", "add", self.brain)
        for ns in (self.robot, self.brain):
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "-n", self.brain, "addr", "add", f"{self.BRAIN_IP}/32", "dev", "lo")
        self._veth("r0", "b0", "10.77.0.2", "10.77.0.1")
        sh("ip", "-n", self.robot, "route", "add", "default", "via", self.GATEWAY, "dev", "r0", "metric", "100")

    def _veth(self, robot_end, brain_end, robot_ip, brain_ip):
        tmp_r, tmp_b = f"t{uuid.uuid4().hex[:8]}", f"t{uuid.uuid4().hex[:8]}"
        sh("ip", "link", "add", tmp_r, "type", "veth", "peer", "name", tmp_b)
        sh("ip", "link", "set", tmp_r, "netns", self.robot, "name", robot_end)
        sh("ip", "link", "set", tmp_b, "netns", self.brain, "name", brain_end)
        sh("ip", "-n", self.robot, "addr", "add", f"{robot_ip}/24", "dev", robot_end)
        sh("ip", "-n", self.brain, "addr", "add", f"{brain_ip}/24", "dev", brain_end)
        sh("ip", "-n", self.robot, "link", "set", robot_end, "up")
        sh("ip", "-n", self.brain, "link", "set", brain_end, "up")

    def add_second_path(self):
        self._veth("r1", "b1", "10.78.0.2", "10.78.0.1")

    def carrier(self, up):
        """Takes the brain's end down or up: the robot's r0 loses or regains carrier, as when
        Wi-Fi drops, and its addresses and routes stay (a DHCP lease outlives a blip)."""
        sh("ip", "-n", self.brain, "link", "set", "b0", "up" if up else "down")

    def move_default_route(self):
        sh("ip", "-n", self.robot, "route", "replace", "default", "via", "10.78.0.1", "dev", "r1", "metric", "50")
        sh("ip", "-n", self.robot, "route", "del", "default", "via", self.GATEWAY, "dev", "r0")

    def blackhole_robot_address(self, address="10.77.0.2"):
        """The brain silently drops everything from and to `address`: a dead path that
        rtnetlink knows nothing about."""
        sh("ip", "netns", "exec", self.brain, "nft", "add", "table", "inet", "tether_test")
        sh("ip", "netns", "exec", self.brain, "nft", "add", "chain", "inet", "tether_test", "in",
           "{ type filter hook input priority 0 ; }")
        sh("ip", "netns", "exec", self.brain, "nft", "add", "chain", "inet", "tether_test", "out",
           "{ type filter hook output priority 0 ; }")
        sh("ip", "netns", "exec", self.brain, "nft", "add", "rule", "inet", "tether_test", "in", "ip", "saddr", address, "drop")
        sh("ip", "netns", "exec", self.brain, "nft", "add", "rule", "inet", "tether_test", "out", "ip", "daddr", address, "drop")

    def close(self):
        for ns in (self.robot, self.brain):
            sh("ip", "netns", "del", ns, check=False)
