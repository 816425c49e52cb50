"""Cumulus Linux through NVUE (issue 23): laghil's L2 domain as VLANs in
NVUE's one bridge (br_default), bond members out and in, a bond deleted with
its place in the bridge and rebuilt. Each reads the kernel first (the Linux
driver's parsers, on sw1's captures), refuses what laghil did not make before
any change, and registers a journaled undo (NVUE paths set or unset) first."""

import pytest

from laghil.drivers.switch import SwitchError
from laghil.drivers.switch.cumulus import CumulusSwitch, nvue_words
from laghil.journal import UndoRecord

from test_switch_linux import MUTATING, CumulusScripted


def changes(node):
    return [c for c in node.cmds if MUTATING.search(c)]


def test_l2_domain_is_laghils_vlan_in_br_default():
    node = CumulusScripted(in_bridge=False)
    seen = []
    undo = CumulusSwitch(node).bridge_create("lgbr0", ["lglag1", "swp3"],
                                             defer=lambda u: seen.append(changes(node)))
    assert seen == [[]], "the undo registered before any change"
    assert changes(node) == [
        "nv set bridge domain br_default vlan 3901 && "
        "nv set interface lglag1 bridge domain br_default access 3901 && "
        "nv set interface swp3 bridge domain br_default access 3901 && nv config apply -y"]
    rec = undo.records[0].to_json()
    assert rec["args"] == ["nvue_unset", [[
        "interface/lglag1/bridge/domain/br_default", "interface/swp3/bridge/domain/br_default",
        "bridge/domain/br_default/vlan/3901"]]]
    UndoRecord.from_json(rec)
    undo()
    assert changes(node)[-1] == (
        "nv unset interface lglag1 bridge domain br_default && "
        "nv unset interface swp3 bridge domain br_default && "
        "nv unset bridge domain br_default vlan 3901 && nv config apply -y")


def test_tagged_domain_sets_the_tests_vlans_on_every_member():
    node = CumulusScripted(in_bridge=False)
    CumulusSwitch(node).bridge_create("lgbr0", ["swp3"], defer=lambda u: None, vlans=[100, 200])
    assert changes(node) == [
        "nv set bridge domain br_default vlan 100 && nv set bridge domain br_default vlan 200 && "
        "nv set interface swp3 bridge domain br_default vlan 100 && "
        "nv set interface swp3 bridge domain br_default vlan 200 && nv config apply -y"]


def test_what_is_in_the_bridge_already_is_not_laghils():
    node = CumulusScripted(in_bridge=True)
    drv = CumulusSwitch(node)
    with pytest.raises(SwitchError, match="VLAN 3901 is in br_default and laghil did not put "
                                          "it there; lglag1 is in br_default"):
        drv.bridge_create("lgbr0", ["lglag1"], defer=lambda u: None)
    with pytest.raises(SwitchError, match="refusing to add lglag1 to lgbr0: it is in br_default"):
        drv.bridge_member_add("lgbr0", "lglag1", defer=lambda u: None)
    node.spec.l2_vlan = None
    with pytest.raises(SwitchError, match="needs the lab file's `l2_vlan`"):
        drv.bridge_create("lgbr0", ["swp3"], defer=lambda u: None)
    assert changes(node) == []


def test_a_member_out_of_the_domain_goes_back_as_it_was():
    node = CumulusScripted(in_bridge=True)
    undo = CumulusSwitch(node).bridge_member_remove("lgbr0", "lglag1", defer=lambda u: None)
    assert changes(node) == ["nv unset interface lglag1 bridge domain br_default && "
                             "nv config apply -y"]
    assert undo.records[0].args == ("nvue_set", [[
        "interface/lglag1/bridge/domain/br_default/access/3901"]])


def test_bond_members_out_and_in():
    node = CumulusScripted(in_bridge=False)
    drv = CumulusSwitch(node)
    out = drv.lag_member_remove("lglag1", "swp1", defer=lambda u: None)
    assert changes(node)[-1] == "nv unset interface lglag1 bond member swp1 && nv config apply -y"
    assert out.records[0].args == ("nvue_set", [["interface/lglag1/bond/member/swp1"]])
    with pytest.raises(SwitchError, match="swp3 is not in lglag1"):
        drv.lag_member_remove("lglag1", "swp3", defer=lambda u: None)
    back = drv.lag_member_add("lglag1", "swp3", defer=lambda u: None)
    assert changes(node)[-1] == "nv set interface lglag1 bond member swp3 && nv config apply -y"
    assert back.records[0].args == ("nvue_unset", [["interface/lglag1/bond/member/swp3"]])


def test_a_bond_deleted_with_its_place_in_the_bridge_is_rebuilt_by_its_undo():
    node = CumulusScripted(in_bridge=True)
    undo = CumulusSwitch(node).lag_delete("lglag1", defer=lambda u: None)
    assert changes(node) == ["nv unset interface lglag1 && nv config apply -y"]
    assert undo.records[0].args == ("nvue_set", [[
        "interface/lglag1/bond/member/swp1", "interface/lglag1/bond/member/swp2",
        "interface/lglag1/bond/mode/lacp", "interface/lglag1/bond/lacp-rate/fast",
        "interface/lglag1/bridge/domain/br_default/access/3901"]])
    undo()
    assert changes(node)[-1].startswith("nv set interface lglag1 bond member swp1 && ")


def test_an_nvue_path_from_a_journal_is_checked_word_by_word():
    assert nvue_words("interface/swp1/bond/member/swp2") == "interface swp1 bond member swp2"
    for bad in ("interface/swp1;reboot", "interface//swp1", "interface/$(id)"):
        with pytest.raises(SwitchError, match="cannot be put into a command"):
            nvue_words(bad)
