"""The Open vSwitch driver (laghil.drivers.switch.ovs): its parsers on output
captured on the virtual rack's OVS guest (tests/data/captures/sw1-ovs-*, Open
vSwitch 3.1.0, kernel datapath), and the contract every switch driver keeps:
each change reads the switch first, refuses what laghil did not make, and
registers its undo (a journal record) before it sends anything."""

import json
import re
from types import SimpleNamespace

import pytest

from fake_iproute import FakeNode, cap
from test_switch_linux import _mutators
from laghil.drivers.switch import DRIVERS, OvsSwitch, SwitchError, SwitchRefused
from laghil.drivers.switch.base import IN_USE
from laghil.drivers.switch.ovs import (fdb_entries, lacp_state_bits, offload_from_flows,
                                       one_interface_port, ovs_log_errors, parse_bond_show,
                                       parse_dump_flows, parse_fdb_show, parse_lacp_show,
                                       parse_vsctl_list, switch_lag_from_ovs)
from laghil.journal import SWITCH_UNDOS, UndoRecord


# ------------------------------------------------------------------ parsers
def test_bond_show_of_a_balance_tcp_bond():
    b = parse_bond_show(cap("sw1-ovs-bond-show-balance-tcp.txt"))
    assert b["bond_mode"] == "balance-tcp" and b["lacp_status"] == "negotiated"
    assert b["active_member"] == "swp1"
    assert b["members"] == {"swp1": {"enabled": True, "active": True, "may_enable": True},
                            "swp2": {"enabled": True, "active": False, "may_enable": True}}


def test_bond_show_of_a_static_balance_slb_bond():
    b = parse_bond_show(cap("sw1-ovs-bond-show-balance-slb.txt"))
    assert b["bond_mode"] == "balance-slb" and b["lacp_status"] == "off"
    assert b["active_member"] == "swp1" and all(m["enabled"] for m in b["members"].values())


def test_a_port_with_one_interface_is_no_bond_to_ovs():
    with pytest.raises(SwitchError, match="no bond_mode line"):
        parse_bond_show(cap("sw1-ovs-bond-show-one-member.txt"))


def test_lacp_show_gives_the_state_bits_of_both_ends():
    lacp = parse_lacp_show(cap("sw1-ovs-lacp-show.txt"))
    assert lacp["sys_id"] == "52:54:00:00:03:01" and lacp["lacp_time"] == "fast"
    assert lacp["status"] == "active negotiated"
    for port in ("swp1", "swp2"):
        m = lacp["members"][port]
        assert (m["actor_state"], m["partner_state"]) == (0x3F, 0x3F), (port, m)
        assert m["partner_sys_id"] == "52:54:00:00:01:03" and m["may_enable"]


def test_state_words_are_the_8021ax_bits():
    assert lacp_state_bits("activity timeout aggregation synchronized collecting "
                           "distributing") == 63
    assert lacp_state_bits("activity timeout aggregation defaulted expired") == 0xC7
    assert lacp_state_bits("") == 0
    with pytest.raises(SwitchError, match="unknown LACP state word 'sync'"):
        lacp_state_bits("activity sync")


def test_a_healthy_lacp_bond_is_a_switch_lag_with_the_host_as_partner():
    lag = switch_lag_from_ovs("lglag1", parse_bond_show(cap("sw1-ovs-bond-show-balance-tcp.txt")),
                              parse_lacp_show(cap("sw1-ovs-lacp-show.txt")),
                              {"swp1": "up", "swp2": "up"})
    assert lag.mode == "lacp" and lag.oper_up and lag.mac == "52:54:00:00:03:01"
    assert lag.selected == ["swp1", "swp2"]
    assert all(m.actor_state & IN_USE == IN_USE for m in lag.members.values())


def test_one_member_left_says_individual_and_is_not_selected():
    """Captured after `lag_member_remove lglag1 swp1`: OVS sets the aggregation
    bit only for a port of more than one member, so the last member advertises
    an individual link and the host's bond does not sync with it."""
    lacp = parse_lacp_show(cap("sw1-ovs-lacp-show-one-member.txt"))
    m = lacp["members"]["swp2"]
    assert m["actor_state"] == 0x3B and not m["actor_state"] & 0x04      # no aggregation
    assert m["partner_state"] == 0x07 and not m["may_enable"]
    lag = switch_lag_from_ovs("lglag1", one_interface_port(["swp2"], lacp, {"swp2": "up"}),
                              lacp, {"swp2": "up"})
    assert lag.selected == [] and not lag.oper_up and lag.members["swp2"].oper_up
    static = one_interface_port(["swp2"], None, {"swp2": "up"})
    assert static["members"]["swp2"]["enabled"] and static["active_member"] == "swp2"


def test_fdb_port_numbers_become_the_bond_or_port_names():
    rows = parse_fdb_show(cap("sw1-ovs-fdb-show.txt"))
    assert [r["port"] for r in rows] == ["LOCAL", "3", "1"] and rows[1]["vlan"] == 1
    ofports = {str(r["ofport"]): r["name"]
               for r in parse_vsctl_list(cap("sw1-ovs-interface-ofport.json"))}
    owner = {"swp1": "lglag1", "swp2": "lglag1", "swp3": "lglag2", "swp4": "lglag2"}
    got = fdb_entries(rows, ofports, owner, "lgbr0")
    assert [(e["port"], e["mac"]) for e in got] == [
        ("lgbr0", "a6:d0:d9:4a:7c:48"), ("lglag2", "52:54:00:00:02:03"),
        ("lglag1", "52:54:00:00:01:03")]
    # an entry learned in the parking VLAN (a LAG taken out of the domain) is not the domain's
    parked = [dict(rows[2], vlan=4094)]
    assert fdb_entries(rows[:2] + parked, ofports, owner, "lgbr0", 4094) == got[:2]


def test_vsctl_json_decodes_sets_maps_and_uuids():
    ports = {p["name"]: p for p in parse_vsctl_list(cap("sw1-ovs-list-port.json"))}
    lag = ports["lglag1"]
    assert lag["bond_mode"] == "balance-tcp" and lag["lacp"] == "active"
    assert lag["external_ids"] == {"laghil": "made"}
    assert lag["other_config"]["lacp-time"] == "fast"
    assert isinstance(lag["interfaces"], list) and len(lag["interfaces"]) == 2
    assert lag["tag"] == 1 and lag["trunks"] == [100, 200]
    assert lag["vlan_mode"] == "native-untagged"
    assert ports["lgbr0"]["bond_mode"] == [] and isinstance(ports["lgbr0"]["interfaces"], str)


def test_the_kernel_datapath_is_no_offload_and_tc_flows_are():
    flows = parse_dump_flows(cap("sw1-ovs-dump-flows-m.txt"))
    assert len(flows) == 21 and all(f["dp"] == "ovs" and not f["offloaded"] for f in flows)
    lacp = [f for f in flows if "slow_path(lacp)" in f["actions"]]
    assert {f["in_port"] for f in lacp} == {"swp1", "swp2", "swp3", "swp4"}
    ev = offload_from_flows("lglag1", ["swp1", "swp2"], flows, None)
    assert ev.verdict == "not_offloaded" and "hw-offload" in ev.missing[0]
    assert "dp ovs" in ev.signals["datapath flows in on the LAG"]
    # the same flows as a tc-offloading datapath prints them (`offloaded:yes, dp:tc`)
    tc = [dict(f, offloaded=True, dp="tc") for f in flows]
    assert offload_from_flows("lglag1", ["swp1", "swp2"], tc, "true").verdict == "offloaded"
    part = [dict(f, offloaded=f["in_port"] == "swp1", dp="tc") for f in flows]
    assert offload_from_flows("lglag1", ["swp1", "swp2"], part, "true").verdict == \
        "not_offloaded"
    assert offload_from_flows("lglag1", ["swp9"], flows, None).verdict == "unknown"


def test_offloaded_flag_is_read_from_the_flow_line():
    line = cap("sw1-ovs-dump-flows-m.txt").splitlines()[0]
    tc = line.replace("dp:ovs", "offloaded:yes, dp:tc")
    (f,) = parse_dump_flows(tc)
    assert f["offloaded"] and f["dp"] == "tc" and f["in_port"] == "swp1"


def test_ovs_log_errors():
    log = ("2026-12-07T20:03:25.968Z|00006|bridge|INFO|ovs-vswitchd (Open vSwitch) 3.1.0\n"
           "2026-12-07T20:04:01.001Z|00031|bond|ERR|lglag1: bond stuck\n"
           "2026-12-07T20:04:02.001Z|00032|dpif|WARN|system@ovs-system: failed to put\n")
    assert ovs_log_errors(log) == ["2026-12-07T20:04:01.001Z|00031|bond|ERR|lglag1: bond stuck"]


# ------------------------------------------------------------------ the change contract
class OvsNode:
    """A switch node running a model of OVS's database: the reads the driver
    makes answered from it (as `ovs-vsctl --format=json` prints them), the
    preflight and tc reads by the fake iproute node; every command recorded,
    none applied (the contract is about order, not effect)."""

    def __init__(self, ports=None, bridges=None):
        self.inner = FakeNode("sw1", ports=("swp1", "swp2", "swp3", "swp4"),
                              management=("mgmt0", "10.0.2.15"))
        self.name = "sw1"
        self.spec = SimpleNamespace(ports={p: None for p in ("swp1", "swp2", "swp3", "swp4")},
                                    platform="ovs")
        self.cmds = []
        self.ports = ports or {}         # name -> {"bridge", "ifaces", "mine", "bond_mode"...}
        self.bridges = bridges or {}     # name -> mine

    def _doc(self, headings, rows):
        return json.dumps({"headings": headings, "data": rows})

    def _port_rows(self):
        rows = []
        for name, p in self.ports.items():
            ifs = [["uuid", f"i-{i}"] for i in p["ifaces"]]
            rows.append([["uuid", f"p-{name}"], name,
                         ifs[0] if len(ifs) == 1 else ["set", ifs],
                         ["map", [["laghil", "made"]] if p.get("mine", True) else []],
                         p.get("tag", ["set", []]), ["set", p.get("trunks", [])],
                         p.get("vlan_mode", ["set", []]), p.get("bond_mode", ["set", []]),
                         p.get("lacp", ["set", []]), ["map", []]])
        return self._doc(["_uuid", "name", "interfaces", "external_ids", "tag", "trunks",
                          "vlan_mode", "bond_mode", "lacp", "other_config"], rows)

    def run(self, cmd, check=True, **kw):
        self.cmds.append(cmd)
        out = ""
        if cmd.startswith("ip -d -j link show; echo") or cmd.startswith("ip -j addr show dev"):
            return self.inner.run(cmd, check=check)
        if "list Port; echo @@;" in cmd:
            ifaces = [[["uuid", f"i-{i}"], i] for p in self.ports.values() for i in p["ifaces"]]
            brs = [[b, ["set", [["uuid", f"p-{n}"] for n, p in self.ports.items()
                                if p["bridge"] == b]]] for b in self.bridges]
            out = "@@".join([self._port_rows(), self._doc(["_uuid", "name"], ifaces),
                             self._doc(["name", "ports"], brs)])
        elif "--columns=name,external_ids list Bridge" in cmd:
            out = self._doc(["name", "external_ids"],
                            [[b, ["map", [["laghil", "made"]] if mine else []]]
                             for b, mine in self.bridges.items()])
        return SimpleNamespace(node=self.name, command=cmd, rc=0, stdout=out, stderr="")


# what changes OVS or a port (reads never match)
MUTATING = re.compile(r"ovs-vsctl [^;]*-- (add-br|add-bond|add-port|del-port|del-br|remove|add|"
                      r"create|set|clear)\b|\bip link set\b|\btc (qdisc|filter) add\b")


def _lag(ifaces, bridge="lglag1-hold"):
    return {"bridge": bridge, "ifaces": list(ifaces), "bond_mode": "balance-tcp",
            "lacp": "active"}


# method -> (args, kwargs, the switch before the call)
CALLS = {
    "port_shutdown": (("swp1",), {}, {}, {}),
    "member_blackhole": (("swp1",), {}, {}, {}),
    "lag_create": (("lglag2", ["swp3", "swp4"], "lacp"), {}, {}, {}),
    "lag_member_remove": (("lglag1", "swp1"), {}, {"lglag1": _lag(["swp1", "swp2", "swp3"])},
                          {"lglag1-hold": True}),
    "lag_member_add": (("lglag1", "swp1"), {}, {"lglag1": _lag(["swp2"])},
                       {"lglag1-hold": True}),
    "lag_delete": (("lglag1",), {}, {"lglag1": _lag(["swp1", "swp2"], "lgbr0")},
                   {"lglag1-hold": True, "lgbr0": True}),
    "bridge_create": (("lgbr0", ["lglag1", "swp3"]), {"vlans": (100, 200)},
                      {"lglag1": _lag(["swp1", "swp2"])}, {"lglag1-hold": True}),
    "bridge_member_remove": (("lgbr0", "lglag1"), {}, {"lglag1": _lag(["swp1", "swp2"], "lgbr0")},
                             {"lglag1-hold": True, "lgbr0": True}),
    "bridge_member_add": (("lgbr0", "swp3"), {"vlans": [100]}, {}, {"lgbr0": True}),
}


def test_every_mutating_method_is_in_the_contract():
    assert DRIVERS["ovs"] is OvsSwitch
    assert set(_mutators(OvsSwitch)) == set(CALLS)


@pytest.mark.parametrize("method", sorted(CALLS))
def test_undo_registered_before_the_first_change(method):
    args, kw, ports, bridges = CALLS[method]
    node = OvsNode(dict(ports), dict(bridges))
    drv = OvsSwitch(node)
    at, undos = [], []

    def defer(fn):
        at.append([c for c in node.cmds if MUTATING.search(c)])
        undos.append(fn)
    getattr(drv, method)(*args, defer=defer, **kw)
    changes = [c for c in node.cmds if MUTATING.search(c)]
    assert changes, f"ovs.{method} changed nothing: {node.cmds}"
    assert at and at[0] == [], f"ovs.{method}: {at[0] if at else changes} before its undo"
    for u in undos:     # each undo a journal record a later process can replay
        for rec in u.records:
            assert rec.kind in ("switch", "node") and (
                rec.kind != "switch" or rec.args[0] in SWITCH_UNDOS), rec
            UndoRecord.from_json(json.loads(json.dumps(rec.to_json())))


def test_a_port_or_bridge_laghil_did_not_make_is_refused_before_any_change():
    theirs = {"lglag1": dict(_lag(["swp1", "swp2"], "br-prod"), mine=False)}
    for call in (lambda d: d.lag_delete("lglag1", defer=lambda f: None),
                 lambda d: d.lag_member_remove("lglag1", "swp1", defer=lambda f: None),
                 lambda d: d.lag_remove("lglag1", ["swp1", "swp2"])):
        node = OvsNode(dict(theirs), {"br-prod": False})
        with pytest.raises(SwitchError, match=r"switch sw1: OVS port lglag1 exists and is not "
                                              r"laghil's \(no external_ids:laghil=made\)"):
            call(OvsSwitch(node))
        assert not [c for c in node.cmds if MUTATING.search(c)], node.cmds
    # a member already in someone's bridge: the LAG is not made
    node = OvsNode({"swp3": {"bridge": "br-prod", "ifaces": ["swp3"], "mine": False}},
                   {"br-prod": False})
    with pytest.raises(SwitchError, match="swp3 is already in OVS \\(port swp3, bridge br-prod\\)"):
        OvsSwitch(node).lag_create("lglag2", ["swp3", "swp4"], "lacp", defer=lambda f: None)
    assert not [c for c in node.cmds if MUTATING.search(c)]
    # ... or an interface of someone's bond
    node = OvsNode({"bond-prod": {"bridge": "br-prod", "ifaces": ["swp3", "swp4"], "mine": False}},
                   {"br-prod": False})
    with pytest.raises(SwitchError,
                       match="swp3 is already in OVS \\(port bond-prod, bridge br-prod\\)"):
        OvsSwitch(node).lag_create("lglag2", ["swp3", "swp4"], "lacp", defer=lambda f: None)
    assert not [c for c in node.cmds if MUTATING.search(c)]


def test_min_links_and_unknown_modes_are_refused_naming_the_capability():
    node = OvsNode()
    with pytest.raises(SwitchRefused) as e:
        OvsSwitch(node).lag_create("lglag1", ["swp1", "swp2"], "lacp", min_links=2,
                                   defer=lambda f: None)
    assert e.value.capability == "min_links" and "no min-links" in str(e.value)
    with pytest.raises(SwitchRefused, match="OVS bond modes are lacp, static"):
        OvsSwitch(node).lag_create("lglag1", ["swp1", "swp2"], "balance-rr", defer=lambda f: None)
    assert not node.cmds


def test_static_is_balance_slb_taking_broadcasts_on_every_member():
    node = OvsNode()
    OvsSwitch(node).lag_create("lglag1", ["swp1", "swp2"], "static", defer=lambda f: None)
    (made,) = [c for c in node.cmds if "add-bond" in c]
    assert "bond_mode=balance-slb" in made and "lacp=off" in made
    assert "other_config:all-members-active=true" in made and "lacp-system-id" not in made
    node = OvsNode()
    OvsSwitch(node).lag_create("lglag1", ["swp1", "swp2"], "lacp", lacp_rate="slow",
                               defer=lambda f: None)
    (made,) = [c for c in node.cmds if "add-bond" in c]
    assert "bond_mode=balance-tcp" in made and "lacp=active" in made
    assert "other_config:lacp-time=slow" in made
    # the LACP system id pinned to the first member's MAC (moving the bond keeps it)
    assert "other_config:lacp-system-id=$(cat /sys/class/net/swp1/address)" in made


def test_a_shutdown_outside_the_lab_or_on_the_session_interface_is_refused():
    node = OvsNode()
    drv = OvsSwitch(node)
    with pytest.raises(SwitchError, match="port 'swp9' is not in the lab file"):
        drv.port_shutdown("swp9", defer=lambda f: None)
    node.spec.ports["mgmt0"] = None
    with pytest.raises(SwitchError, match="mgmt0"):
        drv.port_shutdown("mgmt0", defer=lambda f: None)
    assert not [c for c in node.cmds if MUTATING.search(c)]


def test_a_member_out_of_a_two_member_bond_is_refused_naming_why():
    """OVS has no bond of one interface: the last member's LACP would say
    individual (captured: sw1-ovs-lacp-show-one-member.txt) and the partner
    re-aggregates, so the step is refused (the suite skips it naming the
    capability) before any change."""
    node = OvsNode({"lglag1": _lag(["swp1", "swp2"])}, {"lglag1-hold": True})
    with pytest.raises(SwitchRefused) as e:
        OvsSwitch(node).lag_member_remove("lglag1", "swp1", defer=lambda f: None)
    assert e.value.capability == "lag_member_removal" and "individual" in str(e.value)
    assert not [c for c in node.cmds if MUTATING.search(c)]


def test_a_lag_leaves_the_domain_parked_in_a_vlan_no_port_carries():
    node = OvsNode({"lglag1": dict(_lag(["swp1", "swp2"], "lgbr0"), tag=1, trunks=[100, 200],
                                   vlan_mode="native-untagged")},
                   {"lglag1-hold": True, "lgbr0": True})
    undos = []
    OvsSwitch(node).bridge_member_remove("lgbr0", "lglag1", defer=undos.append)
    (change,) = [c for c in node.cmds if MUTATING.search(c)]
    assert "set Port lglag1 vlan_mode=access tag=4094" in change and "del-port" not in change
    (rec,) = undos[0].records
    assert rec.args == ("ovs_port_vlans", ["lglag1", ["native-untagged", "1", "100", "200"]])
    undos[0]()
    assert node.cmds[-1].endswith("set Port lglag1 vlan_mode=native-untagged tag=1 "
                                  "trunks=100,200"), node.cmds[-1]

