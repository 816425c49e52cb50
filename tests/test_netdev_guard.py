"""laghil never takes a netdev it did not make: a create over a name that
exists, a member already enslaved, or the management interface is refused
before any undo is registered and before any change, naming node and netdev;
and an undo tries every step before it reports the failures."""

import pytest

from fake_iproute import FakeNode, cap
from laghil.drivers.bond import Bond
from laghil.drivers.lag import make_lag
from laghil.drivers.netdev import (NetdevRefused, UndoIncomplete, parse_preflight,
                                   preflight_command, refusals)
from laghil.drivers.team import Team


class Undo(list):
    def __call__(self, fn, *args, **kw):
        self.append(fn)


@pytest.mark.parametrize("kind,mode,name", [("bond", "802.3ad", "bond0"),
                                            ("team", "lacp", "team0")])
def test_existing_netdev_of_the_name_is_refused_and_left_alone(kind, mode, name):
    node = FakeNode(ports=("eth1", "eth2", name))
    node.links[name]["kind"] = kind
    undo = Undo()
    with pytest.raises(NetdevRefused, match=f"^h1: refusing to create {kind} {name}: a netdev "
                                            f"named {name} already exists on h1"):
        make_lag(node, kind, mode, ["eth1", "eth2"], name=name).create(defer=undo)
    assert undo == [] and node.cmds == [preflight_command()]
    assert name in node.links


def test_member_already_enslaved_elsewhere_is_refused():
    node = FakeNode(ports=("eth1", "eth2", "bond0"))
    node.links["bond0"]["kind"] = "bond"
    node.links["eth2"]["master"] = "bond0"
    undo = Undo()
    with pytest.raises(NetdevRefused, match="h1: refusing to create bond lgbond0: member eth2 "
                                            "on h1 is already enslaved to bond0"):
        Bond(node, "lgbond0", "active-backup", ["eth1", "eth2"]).create(defer=undo)
    assert undo == [] and node.cmds == [preflight_command()]
    assert node.links["eth2"]["master"] == "bond0"


def test_management_interface_is_refused_whatever_the_lab_says():
    node = FakeNode(ports=("eth1",), management=("eth0", "10.0.2.15"))
    undo = Undo()
    with pytest.raises(NetdevRefused, match="h1: refusing to create team lgteam0: member eth0 "
                                            "on h1 is the management interface .*10.0.2.15"):
        Team(node, "lgteam0", "activebackup", ["eth1", "eth0"]).create(defer=undo)
    assert undo == [] and node.cmds == [preflight_command()]


def test_missing_member_is_refused():
    node = FakeNode()
    with pytest.raises(NetdevRefused, match="member eth7 does not exist on h1"):
        Bond(node, "lgbond0", "balance-rr", ["eth1", "eth7"]).create(defer=Undo())


def test_every_reason_is_given_at_once():
    node = FakeNode(ports=("eth1", "eth2", "lgbond0"))
    node.links["eth1"]["master"] = "lgbond0"
    with pytest.raises(NetdevRefused) as e:
        Bond(node, "lgbond0", "balance-rr", ["eth1", "eth0"]).create(defer=Undo())
    msg = str(e.value)
    assert "a netdev named lgbond0 already exists" in msg
    assert "member eth1 on h1 is already enslaved to lgbond0" in msg
    assert "member eth0 on h1 is the management interface" in msg


def test_management_covers_what_it_sits_on_vlan_lower_and_bond_members():
    # a management VLAN on a production bond: the bond and both its members carry it
    netdevs = parse_preflight(
        '[{"ifname":"eno1","master":"bond0"},{"ifname":"eno2","master":"bond0"},'
        '{"ifname":"bond0","linkinfo":{"info_kind":"bond"}},'
        '{"ifname":"bond0.10","link":"bond0","linkinfo":{"info_kind":"vlan"}},'
        '{"ifname":"ens1f0"}]\n@@LAGHIL-PREFLIGHT@@\n'
        '[{"ifname":"bond0.10","addr_info":[{"local":"10.9.0.11","prefixlen":24}]}]\n'
        '@@LAGHIL-PREFLIGHT@@\n10.9.0.1 40022 10.9.0.11 22\n')
    assert set(netdevs.management) == {"bond0.10", "bond0", "eno1", "eno2"}
    why = refusals(netdevs, "srv1", "bond", "lgbond0", ["ens1f0", "eno2"])
    assert len(why) == 1 and "member eno2 on srv1 is the management interface" in why[0]
    assert "carries bond0" in why[0]


def test_preflight_parses_the_output_captured_in_the_rack():
    netdevs = parse_preflight(cap("h1-preflight.txt"))
    assert {"eth1", "eth2", "eth3", "eth4"} <= set(netdevs.links)
    assert set(netdevs.management) == {"mgmt0"}     # the rack names its management NIC mgmt0
    assert refusals(netdevs, "h1", "bond", "lgbond0", ["eth1", "eth2"]) == []


def test_bond_destroy_tries_every_step_then_reports_every_failure():
    node = FakeNode()
    bond = Bond(node, "lgbond0", "active-backup", ["eth1", "eth2"]).create(defer=Undo())
    node.fail = "ip link del dev lgbond0"
    with pytest.raises(UndoIncomplete, match=r"h1: bond lgbond0: undo incomplete \(1 of 3 steps "
                                             r"failed\): delete lgbond0"):
        bond.destroy()
    # the members were still restored after the failed delete
    assert node.links["eth1"]["master"] is None and node.links["eth2"]["master"] is None
    assert node.links["eth1"]["up"] and node.links["eth2"]["up"]
