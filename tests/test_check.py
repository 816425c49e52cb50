"""`laghil lab check`: which tools each node must have, by its role (no network:
fake nodes answer the tool probe)."""

from pathlib import Path

import pytest

from laghil.check import TOOLS, check_lab, format_check, node_role, required_tools
from laghil.errors import LaghilError
from laghil.lab import load_lab

LABS = Path(__file__).resolve().parents[1] / "labs"


@pytest.fixture(scope="module")
def rack3():
    return load_lab("rack3", labs_dir=LABS)


@pytest.fixture(scope="module")
def vlab():
    return load_lab("virtual", labs_dir=LABS)


class FakeNode:
    """Answers the `command -v` probe with the tools it has; records what it was asked."""

    def __init__(self, name, has=tuple(TOOLS), reachable=True):
        self.name, self.has, self.reachable = name, set(has), reachable
        self.role = "host"
        self.commands = []
        self.connected = False
        self.session = self

    def connect(self):
        if not self.reachable:
            raise LaghilError(f"{self.name}: connection refused")
        self.connected = True

    def run(self, cmd, check=True):
        self.connect()
        self.commands.append(cmd)
        if cmd.startswith("uname -r"):          # the linux switch driver's describe()
            return type("R", (), {"stdout": "6.1.0-57-amd64\nswp1\nswp2\n"})()
        asked = [part.split()[2] for part in cmd.split("; ")]
        return type("R", (), {"stdout": "".join(f"{t} {'yes' if t in self.has else 'no'}\n"
                                                for t in asked)})()

    def carrier(self, port):
        return True


class FakeRuntime:
    def __init__(self, lab, nodes):
        self.lab, self._nodes = lab, nodes
        for name, spec in lab.switches.items():
            if name in nodes:
                nodes[name].spec = spec
        self.ssh_nodes = [nodes[n] for n in [*lab.hosts, *lab.switches]]

    def node(self, name):
        return self._nodes[name]


def test_roles_and_required_tools_on_rack3(rack3):
    assert node_role(rack3, "jump3") == "jump"
    assert required_tools(rack3, "jump3") == ()
    assert node_role(rack3, "srv1") == "host" and required_tools(rack3, "srv1") == tuple(TOOLS)
    # sw3 runs Onyx: a vendor CLI, no shell tools to probe
    assert node_role(rack3, "sw3") == "switch" and required_tools(rack3, "sw3") == ()


def test_linux_switch_needs_iproute2_and_tcpdump_only(vlab):
    assert required_tools(vlab, "sw1") == ("ip", "bridge", "tcpdump")
    assert required_tools(vlab, "h1") == tuple(TOOLS)


def test_switch_without_host_tools_passes_and_host_without_teamd_fails(vlab):
    nodes = {"h1": FakeNode("h1"), "h2": FakeNode("h2"), "sw1": FakeNode("sw1", has=["ip", "bridge", "tcpdump"])}
    rows, cables, ok = check_lab(FakeRuntime(vlab, nodes))
    assert ok, format_check(rows, cables)
    assert nodes["sw1"].commands and "teamd" not in nodes["sw1"].commands[0]
    sw1 = next(r for r in rows if r["node"] == "sw1")
    assert sw1["role"] == "switch" and sw1["tools"] == {"ip": True, "bridge": True,
                                                        "tcpdump": True}
    line = next(x for x in format_check(rows, cables).splitlines() if x.startswith("sw1"))
    assert line.split()[:4] == ["sw1", "switch", "ok", "ok"] and "n/a" in line
    # reached through its driver: the version and the LAG limit it can read
    assert sw1["switch"] == {"platform": "linux", "version": "Linux 6.1.0-57-amd64",
                             "lag_limit": "none: a software LAG (no switchdev ASIC under the "
                                          "ports)", "error": ""}
    assert "sw1: linux driver: version Linux 6.1.0-57-amd64" in format_check(rows, cables)

    nodes["h2"] = FakeNode("h2", has=set(TOOLS) - {"teamd"})
    rows, cables, ok = check_lab(FakeRuntime(vlab, nodes))
    assert not ok
    assert "MISSING (libteam-utils)" in format_check(rows, cables)


class OnyxCli:
    """Stands in for the netmiko session (no connection is ever made here)."""

    def __init__(self, session, device_type):
        assert device_type == "mellanox_mlnxos"

    def send(self, command):
        assert command == "show version"
        return (Path(__file__).parent / "data" / "samples" / "ansible--onyx_show_version.txt"
                ).read_text()


def test_jump_host_is_reached_but_not_probed_for_tools(rack3, monkeypatch):
    monkeypatch.setattr("laghil.drivers.switch.nos.NetmikoChannel", OnyxCli)
    nodes = {n: FakeNode(n) for n in [*rack3.hosts, *rack3.switches]}
    nodes["jump3"] = FakeNode("jump3", has=())
    nodes["sw3"] = FakeNode("sw3", has=())
    rows, cables, ok = check_lab(FakeRuntime(rack3, nodes))
    assert ok, format_check(rows, cables)
    jump = next(r for r in rows if r["node"] == "jump3")
    assert jump["role"] == "jump" and jump["reachable"] and jump["tools"] == {}
    assert nodes["jump3"].connected and nodes["jump3"].commands == []
    line = next(x for x in format_check(rows, cables).splitlines() if x.startswith("jump3"))
    assert "MISSING" not in line and "n/a" in line
    sw3 = next(r for r in rows if r["node"] == "sw3")
    assert sw3["switch"]["version"] == "3.6.5000" and sw3["switch"]["platform"] == "onyx"

    nodes["jump3"] = FakeNode("jump3", reachable=False)
    rows, cables, ok = check_lab(FakeRuntime(rack3, nodes))
    assert not ok
    assert "jump3: connection refused" in format_check(rows, cables)
