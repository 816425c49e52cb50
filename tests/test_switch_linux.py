"""The Linux switch driver (laghil.drivers.switch.linux) and the switch suite's
building blocks: parsers on output captured on the virtual rack's switch guest
(tests/data/captures/sw1-*), the refusal and offload verdicts, the bounds of a
configuration step, and the contract that every mutating method registers its
undo before it sends a change."""

import inspect
import json
import re
from types import SimpleNamespace

import pytest

from fake_iproute import FakeNode, cap
from laghil.drivers.switch import DRIVERS, LinuxSwitch, SwitchError, switch_lag_from_bond
from laghil.drivers.switch.linux import (offload_verdict, parse_bridge_vlans, parse_fdb,
                                         parse_uptime_mark, refusal_reason)
from laghil.drivers.bond import parse_state_output
from laghil.drivers.vlan import Vlan, VlanError
from laghil.profile import load_profile
from laghil.cases import SWITCH_LAG_CASES
from laghil.checks.switch import parse_port_counts, step_bound, tagged_command

# what changes a Linux switch (reads never match)
MUTATING = re.compile(r"\bip link (add|set|del)\b|\bip addr (add|del)\b|\bbridge vlan (add|del)\b"
                      r"|\bnv (set|unset)\b|\bnv config apply\b|\btc (qdisc|filter) (add|del)\b")


def test_refusal_reason_is_the_extack_line():
    # mlxsw's text as the kernel prints it (drivers/net/ethernet/mellanox/mlxsw/spectrum.c;
    # selftests/drivers/net/mlxsw/extack.sh asserts the prefix and the text)
    err = ("Error: mlxsw_spectrum: LAG device using unsupported Tx type.\n")
    assert refusal_reason(err) == "Error: mlxsw_spectrum: LAG device using unsupported Tx type."
    # -EBUSY (out of members) carries no extack: the errno text is the reason
    assert refusal_reason("RTNETLINK answers: Device or resource busy\n") == \
        "RTNETLINK answers: Device or resource busy"
    assert refusal_reason("") == "(no reason given)"


def test_offload_verdict_never_passes_a_software_lag():
    sw_fdb = [{"mac": "52:54:00:00:01:03", "port": "lglag1", "vlan": 1, "flags": [],
               "master": "lgbr0"}]
    ev = offload_verdict("lglag1", {"swp1": None, "swp2": None}, sw_fdb)
    assert ev.verdict == "not_offloaded" and "phys_switch_id" in ev.missing[0]
    hw = [dict(sw_fdb[0], flags=["offload"])]
    assert offload_verdict("lglag1", {"swp1": "00aa", "swp2": "00aa"}, hw).verdict == "offloaded"
    # an ASIC under the ports, yet entries on the LAG without the flag: the silent fallback
    assert offload_verdict("lglag1", {"swp1": "00aa", "swp2": "00aa"},
                           sw_fdb).verdict == "not_offloaded"
    assert offload_verdict("lglag1", {"swp1": "00aa"}, []).verdict == "unknown"


def test_step_bound_adds_the_lacp_timeout_only_where_the_protocol_must_notice():
    prof = load_profile("default")
    case = SWITCH_LAG_CASES[0]          # 802.3ad, lacp_rate fast
    out = step_bound("swp1 out", case, prof, 2.0, lacp_timeout=True)
    back = step_bound("swp1 back", case, prof, 2.0)
    assert out.inputs["LACP short timeout"] == 3000 and out.inputs["802.3ad tick"] == 100
    assert out.ms - back.ms == 3100, (out.describe(), back.describe())
    assert back.ms < 500, f"a step the protocol hides may cost only allowances: {back.describe()}"


def test_tagged_frames_command_is_bounded_and_quoted():
    cmd = tagged_command([("swp1", "in"), ("swp3", "out")], 100, 8)
    assert cmd.count("timeout 8 tcpdump") == 2 and "-c 5" in cmd and "-Q out" in cmd
    assert "'vlan 100'" in cmd and cmd.endswith(" wait")
    with pytest.raises(Exception):
        tagged_command([("swp1;reboot", "in")], 100, 8)
    assert parse_port_counts("swp1 5\nswp3 0\nswp4\n") == {"swp1": 5, "swp3": 0, "swp4": 0}


def test_vlan_names_and_ids():
    node = FakeNode("h1", ports=("lgbond0",))
    v = Vlan(node, "lgbond0", 100)
    assert v.name == "lgbond0.100"
    assert v.create_commands("192.168.210.1/24") == [
        "ip link add link lgbond0 name lgbond0.100 type vlan id 100",
        "ip link set dev lgbond0.100 up", "ip addr add 192.168.210.1/24 dev lgbond0.100"]
    for bad in (0, 4095, "x"):
        with pytest.raises(VlanError):
            Vlan(node, "lgbond0", bad)


def test_uptime_mark():
    assert parse_uptime_mark("1234.56 1100.00\n") == 1234.56
    with pytest.raises(Exception, match="uptime"):
        parse_uptime_mark("")


# ------------------------------------------------------------------ the undo contract
class ScriptedSwitch:
    """A switch node for the contract: the preflight and member reads answered by
    the fake iproute node, the LAG/bridge reads by output captured on sw1, every
    command recorded."""

    def __init__(self):
        self.inner = FakeNode("sw1", ports=("swp1", "swp2", "swp3", "swp4"),
                              management=("mgmt0", "10.0.2.15"))
        self.inner.links["lglag1"] = {"ifname": "lglag1", "address": "52:54:00:00:03:01",
                                      "mtu": 1500, "up": True, "master": None, "addrs": [],
                                      "kind": "bond"}
        self.name = "sw1"
        self.spec = SimpleNamespace(ports={p: None for p in ("swp1", "swp2", "swp3", "swp4")},
                                    platform="linux")
        self.cmds = []

    def run(self, cmd, check=True, **kw):
        self.cmds.append(cmd)
        if cmd.startswith("ip -d -j link show; echo") or cmd.startswith("ip -j addr show dev"):
            return self.inner.run(cmd, check=check)
        out, rc = "", 0
        exists = re.fullmatch(r"\[ -e /sys/class/net/([^/ ]+)(/master)? \]", cmd)
        if exists:
            link = self.inner.links.get(exists.group(1))
            rc = 0 if link and (not exists.group(2) or link["master"]) else 1
        elif cmd.startswith("cat /proc/net/bonding/"):
            out = cap("sw1-lag-state-8023ad.txt")
        elif cmd.startswith("bridge -j vlan show dev"):
            out = cap("sw1-bridge-vlan-lglag1.json")
        elif cmd.startswith("readlink /sys/class/net/") and cmd.endswith("/master"):
            out = "../../devices/virtual/net/lgbr0\n"
        return SimpleNamespace(node=self.name, command=cmd, rc=rc, stdout=out, stderr="")


class CumulusScripted:
    """A Cumulus switch for the contract: NVUE's bridge (br_default) and bonds
    as the kernel shows them, in the state each call needs (``in_bridge``:
    lglag1 an access member of VLAN 3901, as laghil's domain leaves it; else
    every port and bond outside any bridge); the bond read from sw1's capture."""

    def __init__(self, in_bridge):
        self.name = "sw1"
        self.spec = SimpleNamespace(ports={p: None for p in ("swp1", "swp2", "swp3", "swp4")},
                                    platform="cumulus", l2_vlan=3901)
        self.master = {"lglag1": "br_default"} if in_bridge else {}
        self.vlans = ([{"ifname": "lglag1", "vlans": [
            {"vlan": 3901, "flags": ["PVID", "Egress Untagged"]}]}] if in_bridge else [])
        self.cmds = []

    def run(self, cmd, check=True, **kw):
        self.cmds.append(cmd)
        out, rc = "", 0
        m = re.fullmatch(r"readlink /sys/class/net/(\S+)/master", cmd)
        if m:
            out, rc = (f"../../devices/virtual/net/{self.master[m.group(1)]}\n", 0) \
                if m.group(1) in self.master else ("", 1)
        elif cmd == "bridge -j vlan show":
            out = json.dumps(self.vlans)
        elif cmd.startswith("cat /proc/net/bonding/"):
            out = cap("sw1-lag-state-8023ad.txt")
        return SimpleNamespace(node=self.name, command=cmd, rc=rc, stdout=out, stderr="")


def scripted(platform, method):
    """The contract's switch node for ``platform`` and the call ``method``."""
    if platform == "cumulus" and method in NVUE_READS:
        return CumulusScripted(in_bridge=method in ("bridge_member_remove", "lag_delete"))
    return ScriptedSwitch()


# Cumulus's calls that read NVUE's bridge and the bonds before their change
NVUE_READS = ("bridge_create", "bridge_member_add", "bridge_member_remove", "lag_delete",
              "lag_member_add", "lag_member_remove")


CALLS = {
    "port_shutdown": (("swp1",), {}),
    "lag_create": (("lglag2", ["swp3", "swp4"], "lacp"), {}),
    "lag_member_remove": (("lglag1", "swp1"), {}),
    "lag_member_add": (("lglag1", "swp1"), {}),
    "lag_delete": (("lglag1",), {}),
    "bridge_create": (("lgbr0", ["lglag1", "swp3"]), {"vlans": (100, 200)}),
    "bridge_member_remove": (("lgbr0", "lglag1"), {}),
    "bridge_member_add": (("lgbr0", "lglag1"), {}),
    "member_blackhole": (("swp1",), {}),
}


def _mutators(cls):
    """Every public method of a driver that takes ``defer``: a change."""
    return sorted(n for n, f in inspect.getmembers(cls, inspect.isfunction)
                  if not n.startswith("_") and "defer" in inspect.signature(f).parameters)


# the platforms the iproute2 scripted switch answers for (OVS: tests/test_switch_ovs.py)
LINUX = {p: c for p, c in DRIVERS.items() if issubclass(c, LinuxSwitch) and p != "ovs"}


def test_every_mutating_method_is_in_the_contract():
    assert "linux" in LINUX
    for platform, cls in LINUX.items():
        assert set(_mutators(cls)) <= set(CALLS), (
            f"{platform}: mutating methods without a contract case: "
            f"{set(_mutators(cls)) - set(CALLS)}")
        assert _mutators(cls), platform
    assert set(LINUX) == {"linux", "cumulus"}


@pytest.mark.parametrize("method", sorted(CALLS))
def test_undo_registered_before_the_first_change(method):
    for platform, cls in LINUX.items():
        node = scripted(platform, method)
        drv = cls(node)
        at = []
        args, kw = CALLS[method]
        try:
            getattr(drv, method)(*args, defer=lambda fn: at.append(
                [c for c in node.cmds if MUTATING.search(c)]), **kw)
        except SwitchError as e:
            # a driver that does not drive this yet must refuse before any change
            assert f"not driven by laghil's {platform} driver yet" in str(e), (
                f"{platform}.{method}: {e}")
            assert not at and not [c for c in node.cmds if MUTATING.search(c)], platform
            continue
        changes = [c for c in node.cmds if MUTATING.search(c)]
        assert changes, f"{platform}.{method} changed nothing: {node.cmds}"
        assert at, f"{platform}.{method} sent {changes} without registering an undo"
        assert at[0] == [], (f"{platform}.{method}: {at[0]} sent before its undo was "
                             "registered")


# ------------------------------------------------------------------ parsers on sw1's output
def _lag(name):
    text = cap(name)
    state, _, tail = text.rpartition("@@MAC")
    proc, _ip = parse_state_output(state, "lglag1")
    mac, oper = tail.split()
    return switch_lag_from_bond("lglag1", proc, mac, oper == "up")


def test_switch_lag_state_with_the_host_as_partner():
    lag = _lag("sw1-lag-state-8023ad-partnered.txt")
    assert lag.mode == "lacp" and lag.oper_up and lag.mac == "52:54:00:00:03:01"
    assert lag.selected == ["swp1", "swp2"]
    for m in lag.members.values():
        assert (m.actor_state, m.partner_state) == (63, 63)
        assert m.partner_system == "52:54:00:00:01:03", "h1's lgbond0 (eth3's MAC)"


def test_switch_lag_without_a_partner_selects_nothing():
    """The LAG up (bonding keeps carrier with min_links 0) but no member in use:
    no partner, actor state without sync/collecting/distributing."""
    lag = _lag("sw1-lag-state-8023ad.txt")
    assert lag.oper_up and lag.selected == []
    assert {p: m.actor_state for p, m in lag.members.items()} == {"swp1": 79, "swp2": 71}
    assert all(m.partner_state == 0 for m in lag.members.values())


def test_fdb_keeps_learned_entries_only():
    fdb = parse_fdb(cap("sw1-fdb-lgbr0.json"))
    assert fdb, "h1's ARP through the LAG was learned"
    assert all(e["port"] in ("lglag1", "swp3") for e in fdb)
    learned = [e for e in fdb if e["port"] == "lglag1"]
    assert learned and learned[0]["vlan"] == 1 and learned[0]["flags"] == []
    assert offload_verdict("lglag1", {"swp1": None, "swp2": None}, fdb).signals["fdb on LAG"] \
        == f"{len(learned)} entries, 0 flagged offload/extern_learn"


def test_bridge_vlans_with_flags():
    v = parse_bridge_vlans(cap("sw1-bridge-vlan-lglag1.json"))
    assert v == {"lglag1": [(1, ("PVID", "Egress Untagged")), (100, ()), (200, ())]}
    allv = parse_bridge_vlans(cap("sw1-bridge-vlan.json"))
    assert {100, 200} <= {vid for vid, _ in allv["swp3"]}


def test_cumulus_changes_through_nvue():
    from laghil.drivers.switch import CumulusSwitch
    assert CumulusSwitch.lag_create_commands("lglag1", ["swp1", "swp2"], "lacp", "fast", 2) == [
        "nv set interface lglag1 bond member swp1,swp2", "nv set interface lglag1 bond mode lacp",
        "nv set interface lglag1 bond lacp-rate fast", "nv set interface lglag1 bond min-links 2",
        "nv config apply -y"]
    assert CumulusSwitch.lag_delete_commands("lglag1") == ["nv unset interface lglag1",
                                                           "nv config apply -y"]
    node = ScriptedSwitch()
    with pytest.raises(SwitchError, match="lglag1: a netdev of that name exists"):
        CumulusSwitch(node).lag_create("lglag1", ["swp1", "swp2"], "lacp", defer=lambda f: None)
    assert not [c for c in node.cmds if MUTATING.search(c)]


def test_a_linux_switch_refuses_to_shut_its_session_interface_or_a_port_outside_the_lab():
    from laghil.drivers.switch import LinuxSwitch
    from laghil.drivers.switch.cumulus import CumulusSwitch
    for cls in (LinuxSwitch, CumulusSwitch):
        node = FakeNode("sw1", ports=("swp1", "swp2"), management=("swp9", "10.0.2.15"))
        node.spec = SimpleNamespace(ports={"swp1": None, "swp2": None, "swp9": None},
                                    platform=cls.platform)
        drv = cls(node)
        with pytest.raises(SwitchError, match="sw1: refusing to shut swp9: it is the "
                                              "management interface"):
            drv.port_shutdown("swp9", defer=lambda fn: pytest.fail("undo of a refusal"))
        with pytest.raises(SwitchError, match="port 'swp7' is not in the lab file"):
            drv.port_shutdown("swp7", defer=lambda fn: None)
        from laghil.errors import BadName
        with pytest.raises(BadName, match="swp1;reboot"):
            drv.port_shutdown("swp1;reboot", defer=lambda fn: None)
        assert not any(c.startswith(("ip link set", "nv set")) for c in node.cmds), node.cmds
        undone = []
        drv.port_shutdown("swp1", defer=undone.append)
        assert undone and node.cmds[-1] in ("ip link set dev swp1 down",
                                            "nv set interface swp1 link state down && nv "
                                            "config apply -y"), node.cmds[-1]
