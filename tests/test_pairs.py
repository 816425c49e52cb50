"""Pairs by capability and topology (laghil.pairs): which hosts and path every
LAG suite would use, on the example physical rack (servers dual-homed to a
switch, a jump host first), on a lab whose first two hosts are back to back,
and on the virtual rack."""

import pytest

from laghil.cases import BOND_CASES, TEAM_CASES, bond
from laghil.lab import load_lab
from laghil.pairs import NoPair, aggregate_ports, choose_pair, lab_paths, needs_of
from pytest_laghil.lag import expand_paths

B2B_FIRST = "tests/data/good_labs/b2b_first.yaml"


def suite_asks(lab):
    """What each LAG suite's fixture asks laghil.pairs for (fixtures/lag.py,
    roce.py, suites/sriov_lag, ib_bond, switch_lag, safety)."""
    return {
        "bonding": dict(needs=needs_of("bond", "balance-xor")),
        "bonding 802.3ad": dict(needs=needs_of("bond", "802.3ad")),
        "team": dict(needs=needs_of("team", "activebackup")),
        "team lacp / lacp suite": dict(needs=needs_of("team", "lacp")),
        "roce_lag": dict(needs=("roce_lag",)),
        "sriov_lag": dict(needs=("sriov",), sriov=True),
        "ib_bond": dict(needs=(), ports=aggregate_ports(lab)),
        "switch_lag": dict(needs=needs_of("bond", "802.3ad"), via="switch"),
        "safety": dict(needs=needs_of("bond")),
    }


def test_rack3_every_lag_suite_uses_srv1_and_srv2_through_sw3_never_the_jump_host():
    lab = load_lab("rack3")
    assert list(lab.hosts)[0] == "jump3"      # the trap: the first host is the gateway
    for suite, ask in suite_asks(lab).items():
        p = choose_pair(lab, **ask)
        assert (p.a, p.b, p.via, p.switch) == ("srv1", "srv2", "switch", "sw3"), (suite, p)
        assert p.ports == {"srv1": ["ens1f0np0", "ens1f1np1"],
                           "srv2": ["ens1f0np0", "ens1f1np1"]}, (suite, p.ports)
        assert p.far == {"srv1": ["Eth1/1", "Eth1/2"], "srv2": ["Eth1/3", "Eth1/4"]}, suite
        assert [c.name for c in p.cables] == ["srv1-sw3-a", "srv1-sw3-b", "srv2-sw3-a",
                                              "srv2-sw3-b"], suite
        assert "jump3" not in p.hosts
    assert lab_paths(lab, ("bonding",)) == ("switch",)


def test_a_lab_whose_first_hosts_are_back_to_back_uses_them_back_to_back():
    lab = load_lab(B2B_FIRST)
    for suite, ask in suite_asks(lab).items():
        if suite in ("switch_lag", "sriov_lag", "ib_bond"):
            continue
        p = choose_pair(lab, **ask)
        assert (p.a, p.b, p.via, p.switch) == ("srv-a", "srv-b", "b2b", None), (suite, p)
        assert [c.name for c in p.cables] == ["a-b-0", "a-b-1"], suite
        assert p.ports == {"srv-a": ["p0", "p1"], "srv-b": ["p0", "p1"]}
    assert lab_paths(lab, ("bonding",)) == ("b2b",)
    # one cable each to the switch: no switch path, said per pair and per host
    with pytest.raises(NoPair) as e:
        choose_pair(lab, needs=("bonding",), via="switch")
    msg = str(e.value)
    assert e.value.capability == "switch pair"
    assert "considered srv-a, srv-b, gw" in msg, msg
    assert "gw: declares no capabilities (not under test)" in msg, msg
    assert "sw: srv-a 1, srv-b 1" in msg, msg


def test_the_virtual_rack_keeps_its_pairs():
    lab = load_lab("virtual")
    asks = suite_asks(lab)
    p = choose_pair(lab, **asks["bonding"])
    assert (p.via, [c.name for c in p.cables]) == ("b2b", ["h1-h2-a", "h1-h2-b"])
    p = choose_pair(lab, **asks["sriov_lag"])
    assert (p.via, [c.name for c in p.cables]) == ("b2b", ["h1-h2-vfa", "h1-h2-vfb"])
    p = choose_pair(lab, **asks["switch_lag"])
    assert (p.switch, p.far) == ("sw1", {"h1": ["swp1", "swp2"], "h2": ["swp3", "swp4"]})
    p = choose_pair(lab, **asks["ib_bond"])
    assert (p.via, p.ports) == ("b2b", {"h1": ["eth1", "eth2"], "h2": ["eth1", "eth2"]})
    assert lab_paths(lab, ("bonding",)) == ("b2b", "switch")
    # a side named: the sender first
    p = choose_pair(lab, needs=("bonding",), a="h2")
    assert (p.a, p.b, p.ports["h2"]) == ("h2", "h1", ["eth1", "eth2"])


def test_a_missing_capability_names_each_host_and_why():
    lab = load_lab("rack3")
    with pytest.raises(NoPair) as e:
        choose_pair(lab, needs=("ib_bond",))
    msg = str(e.value)
    assert "jump3: declares no capabilities" in msg and "srv1: lacks ib_bond" in msg \
        and "srv2: lacks ib_bond" in msg, msg
    with pytest.raises(ValueError, match="via must be one of"):
        choose_pair(lab, via="direct")


def _ids(cases):
    return [(c.id(), c.full) for c in cases]


def test_cases_run_on_the_paths_the_lab_has():
    cases = [bond("active-backup", miimon=10, primary=0),
             bond("802.3ad", miimon=10, lacp_rate="fast"),
             bond("802.3ad", via="switch", miimon=10, lacp_rate="fast"),
             bond("balance-tlb", miimon=10)]
    # switch only (rack3): back-to-back cases go through the switch, none twice
    assert _ids(expand_paths(cases, ("switch",))) == [
        ("active-backup-via-switch[miimon=10,primary=0]", False),
        ("802.3ad-via-switch[miimon=10,lacp_rate=fast]", False),
        ("balance-tlb-via-switch[miimon=10]", False)]
    # both (virtual): back to back as before, through the switch as full-matrix ids
    assert _ids(expand_paths(cases, ("b2b", "switch"))) == [
        ("active-backup[miimon=10,primary=0]", False),
        ("active-backup-via-switch[miimon=10,primary=0]", True),
        ("802.3ad[miimon=10,lacp_rate=fast]", False),
        ("802.3ad-via-switch[miimon=10,lacp_rate=fast]", False),
        ("balance-tlb-via-switch[miimon=10]", False)]
    # back to back only: as they are
    assert _ids(expand_paths(cases, ("b2b",))) == _ids(cases)
    # every CI case of the bond and team suites keeps its id on the virtual rack
    for suite in (BOND_CASES, TEAM_CASES):
        kept = {c.id() for c in expand_paths(suite, ("b2b", "switch")) if not c.full}
        assert kept == {c.id() for c in suite if not c.full}
