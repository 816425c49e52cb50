"""SONiC's L2 domain and member operations (issue 23), over its shell with
SONiC's own `config vlan` / `config portchannel` commands: the switch read
first (`show vlan brief`, `show interfaces portchannel`: sonic-utilities' own
test output), what laghil did not make refused before any change, a journaled
idempotent undo registered first; the MAC table, a port's link state and the
kernel log read as SONiC shows them."""

from pathlib import Path
from types import SimpleNamespace

import pytest

from laghil.drivers.switch import SwitchError
from laghil.drivers.switch.sonic import (SonicSwitch, parse_interfaces_status, parse_show_mac,
                                         parse_vlan_brief)
from laghil.journal import UndoRecord

SAMPLES = Path(__file__).parent / "data" / "samples"
SHOWS = {"show vlan brief": "sonic-utilities--show_vlan_brief.txt",
         "show interfaces portchannel": "sonic-utilities--show_interfaces_portchannel.txt",
         "show mac": "sonic-utilities--show_mac.txt",
         "show interfaces status": "sonic-utilities--show_interfaces_status.txt"}


def sample(name):
    return (SAMPLES / name).read_text()


class Sonic:
    """A SONiC shell: each show answered with its sample, every command kept."""

    def __init__(self, ports=("Ethernet0", "Ethernet4", "Ethernet112", "Ethernet116",
                              "Ethernet24", "Ethernet60"), l2_vlan=3901):
        self.name = "sw5"
        self.spec = SimpleNamespace(ports={p: None for p in ports}, platform="sonic",
                                    l2_vlan=l2_vlan)
        self.cmds = []

    def run(self, cmd, check=True, **kw):
        self.cmds.append(cmd)
        out = sample(SHOWS[cmd]) if cmd in SHOWS else ""
        return SimpleNamespace(stdout=out, stderr="", rc=0)

    def changes(self):
        return [c for c in self.cmds if c.startswith("sudo config") or "; sudo config" in c]


def test_parsers_on_sonic_utilities_output():
    vl = parse_vlan_brief(sample(SHOWS["show vlan brief"]))
    assert vl == {1000: {p: "untagged" for p in ("Ethernet4", "Ethernet8", "Ethernet12",
                                                  "Ethernet16")},
                  2000: {"Ethernet24": "untagged", "Ethernet28": "untagged"}, 3000: {},
                  4000: {"PortChannel1001": "tagged"}}
    mac = parse_show_mac(sample(SHOWS["show mac"]))
    assert len(mac) == 5 and mac[1] == {"mac": "11:22:33:66:55:44", "port": "Ethernet4",
                                        "vlan": 3, "flags": ["static"]}
    st = parse_interfaces_status(sample(SHOWS["show interfaces status"]))
    assert st["Ethernet0"] is False and st["Ethernet16"] is True
    assert st["PortChannel0001"] is False and st["PortChannel0002"] is True
    with pytest.raises(SwitchError, match="no header"):
        parse_interfaces_status("Error: not a command")


def test_l2_domain_reads_refuses_then_undo_first():
    node = Sonic()
    drv = SonicSwitch(node)
    seen = []
    undo = drv.bridge_create("lgbr0", ["Ethernet0", "lglag2"],
                             defer=lambda u: seen.append(node.changes()))
    assert seen == [[]] and node.cmds[0] == "show vlan brief"
    assert node.changes() == ["sudo config vlan add 3901",
                              "sudo config vlan member add -u 3901 Ethernet0",
                              "sudo config vlan member add -u 3901 PortChannel0002"]
    rec = undo.records[0].to_json()
    assert rec["args"] == ["sonic_l2_remove", [["3901"], ["Ethernet0", "PortChannel0002"]]]
    UndoRecord.from_json(rec)
    undo()
    assert node.cmds[-1].startswith("sudo config vlan member del 3901 Ethernet0 2>/dev/null;")
    assert node.cmds[-1].endswith("sudo config vlan del 3901 2>/dev/null; true")
    n = len(node.cmds)
    with pytest.raises(SwitchError, match="VLAN 2000 exists and laghil did not make it; "
                                          "Ethernet24 is in VLAN 2000"):
        drv.bridge_create("lgbr0", ["Ethernet24"], defer=lambda u: None, vlans=[2000])
    with pytest.raises(SwitchError, match="needs the lab file's `l2_vlan`"):
        SonicSwitch(Sonic(l2_vlan=None)).bridge_create("lgbr0", ["Ethernet0"],
                                                       defer=lambda u: None)
    assert node.cmds[n:] == ["show vlan brief"], "refused on the read, nothing changed"


def test_a_member_out_of_its_vlan_goes_back_as_it_was():
    node = Sonic()
    undo = SonicSwitch(node).bridge_member_remove("lgbr0", "Ethernet24", defer=lambda u: None)
    assert node.changes() == ["sudo config vlan member del 2000 Ethernet24 2>/dev/null; true"]
    assert undo.records[0].args == ("sonic_l2_join", ["Ethernet24", ["untagged", "2000"]])


def test_portchannel_members_out_and_in():
    node = Sonic()
    drv = SonicSwitch(node)
    out = drv.lag_member_remove("lglag2", "Ethernet116", defer=lambda u: None)
    assert node.changes() == ["sudo config portchannel member del PortChannel0002 Ethernet116"]
    assert out.records[0].args == ("sonic_member_add", ["lglag2", "Ethernet116"])
    with pytest.raises(SwitchError, match="refusing to add Ethernet112 to lglag2: it is in "
                                          "PortChannel0001"):
        drv.lag_member_add("lglag2", "Ethernet112", defer=lambda u: None)
    with pytest.raises(SwitchError, match="no PortChannel0009"):
        drv.lag_member_remove("lglag9", "Ethernet116", defer=lambda u: None)
    node.spec.ports.pop("Ethernet112")          # PortChannel0001's member: not the lab's
    n = len(node.changes())
    with pytest.raises(SwitchError, match=r"refusing to change PortChannel0001 \(lglag1\): "
                                          "Ethernet112 in it are not ports of the lab file"):
        drv.lag_member_add("lglag1", "Ethernet0", defer=lambda u: None)
    assert len(node.changes()) == n


def test_a_portchannel_deleted_is_rebuilt_by_its_undo():
    node = Sonic()
    undo = SonicSwitch(node).lag_delete("lglag2", defer=lambda u: None)
    assert undo.records[0].args == ("sonic_lag_rebuild",
                                    ["lglag2", ["Ethernet116"], ["lacp", "none"]])
    assert "sudo config portchannel del PortChannel0002" in node.changes()[-1]
    n = len(node.cmds)
    undo()                  # the sample still shows it: nothing rebuilt twice
    assert node.cmds[n:] == ["show interfaces portchannel"]


def test_fdb_link_state_and_log_as_sonic_shows_them():
    node = Sonic()
    drv = SonicSwitch(node)
    assert [e["mac"] for e in drv.fdb_on("lgbr0", ["Ethernet4"])] == ["11:22:33:66:55:44",
                                                                     "77:66:55:44:22:11"]
    assert drv.port_oper_up("Ethernet116") is True and drv.port_oper_up("Ethernet0") is False
    with pytest.raises(SwitchError, match="Ethernet60 is not in `show interfaces status`"):
        drv.port_oper_up("Ethernet60")
    assert drv.left_behind("lglag2", ["Ethernet116"]) == ["PortChannel0002",
                                                          "member Ethernet116"]
