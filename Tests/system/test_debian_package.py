"""The Debian package (make deb) as an admin meets it: lintian-clean, installed with apt on a
real systemd (container.py), no start until the key is there, an upgrade keeps a changed
configuration, and a purge leaves nothing of the package behind. The running unit itself is
tested from the package in test_systemd_unit.py. Issue: tetherd must work as the systemd unit
it ships as (install the Debian way)."""

import os
import shutil
import subprocess

import pytest

from conftest import REPO

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="a container with systemd as PID 1 needs root")


def package():
    debs = sorted((REPO / "out").glob("tether_*.deb"))
    if not debs:
        pytest.fail("the Debian package is missing: make test builds it with make deb")
    return debs[-1]


def test_the_package_is_lintian_clean():
    result = subprocess.run(["lintian", "--fail-on", "error,warning", "--display-info", str(package())],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert not [line for line in result.stdout.splitlines() if line[:2] in ("E:", "W:")], result.stdout


def repackaged(deb, directory, version):
    """The same package under a newer version: what an upgrade installs."""
    tree = directory / "tree"
    subprocess.run(["dpkg-deb", "-R", str(deb), str(tree)], check=True)
    control = tree / "DEBIAN" / "control"
    text = control.read_text()
    old = next(line for line in text.splitlines() if line.startswith("Version: "))
    control.write_text(text.replace(old, f"Version: {version}"))
    out = directory / "tether_newer.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-b", str(tree), str(out)], check=True, capture_output=True)
    return out, old.split(": ", 1)[1]


def test_install_waits_for_the_key_upgrade_keeps_the_config_and_purge_cleans_up(tmp_path, new_container):
    deb = package()
    ct = new_container(binds=[(str(REPO), str(REPO))])  # the package is in the tree: see test_systemd_unit
    installed = ct.sh(f"apt-get install -y {deb}", timeout=300)
    # No key yet: enabled, not started, and the admin is told what to do.
    assert "/etc/tether/api-key" in installed.stdout + installed.stderr
    assert ct.sh("systemctl is-enabled tether.service tether.socket").stdout.split() == ["enabled", "enabled"]
    assert ct.sh("systemctl is-active tether.service", check=False).stdout.strip() == "inactive"
    assert ct.sh("id -nG tether").stdout.split() == ["tether", "audio"]
    assert ct.sh("stat -c '%U:%G %a' /etc/tether /etc/tether/tether.yaml").stdout.split("\n")[:2] == \
        ["root:tether 750", "root:tether 640"]
    files = [line for line in ct.sh("dpkg -L tether").stdout.splitlines() if line.strip()]

    # The admin changes the configuration and adds the key; then an upgrade comes.
    ct.sh("sed -i 's/^  volume: 80/  volume: 42/' /etc/tether/tether.yaml")
    ct.write_file("/etc/tether/api-key", "sk-test\n", mode=0o600)
    newer, version = repackaged(deb, tmp_path, "99:0-1")
    shutil.copy(newer, ct.path("/var/tmp/tether_newer.deb"))  # the container's /tmp is its own
    ct.sh("apt-get install -y /var/tmp/tether_newer.deb", timeout=300)
    assert "  volume: 42" in ct.read_file("/etc/tether/tether.yaml").decode(), "the upgrade replaced the changed configuration"
    assert ct.sh("dpkg-query -W -f '${Version}' tether").stdout == "99:0-1"

    ct.sh("apt-get purge -y tether", timeout=300)
    assert ct.sh("dpkg -s tether", check=False).returncode != 0
    left = [path for path in files if path not in ("/.", "/etc", "/usr", "/lib") and ct.sh(f"test -f '{path}' || test -L '{path}'", check=False).returncode == 0]
    assert not left, left
    # What the admin made stays (Debian keeps system users and the admin's own files).
    assert ct.sh("ls -A /etc/tether").stdout.split() == ["api-key"]
    for unit in ("tether.service", "tether.socket"):
        assert ct.sh(f"systemctl is-enabled {unit}", check=False).stdout.strip() in ("", "not-found"), unit
