"""A bond's whole configuration against the configured values and the driver's
defaults (laghil.drivers.bond_config), on output captured in the rack."""

import pytest

from fake_iproute import cap
from laghil.drivers.bond_config import BondConfigError, Mismatch, mismatches, parse_config

# `ip link add name lgbond0d type bond mode active-backup && ip -d -j link show
# dev lgbond0d` on the rack's Debian 6.1 guest: the driver's defaults
FRESH_AB = cap("h1-bond-fresh-ab.json")


def _read_ab():
    # h1-bond-ab.txt: /proc and `ip -d -j link` of an active-backup bond made with
    # miimon 10, updelay 100, downdelay 20, primary eth2
    return parse_config(cap("h1-bond-ab.txt").split("@@LAGHIL@@")[1], "bond0")


def test_defaults_of_a_fresh_bond():
    d = parse_config(FRESH_AB, "lgbond0d")
    assert d["downdelay"] == "0" and d["updelay"] == "0" and d["arp_interval"] == "0"
    assert d["fail_over_mac"] == "none" and d["arp_validate"] == "none"
    assert d["xmit_hash_policy"] == "layer2" and d["lacp_rate"] == "slow"
    assert d["num_grat_arp"] == "1" and d["primary_reselect"] == "always"


def test_what_the_test_set_reads_back_and_nothing_else_differs():
    defaults = parse_config(FRESH_AB, "lgbond0d")
    read = _read_ab()
    configured = {"miimon": "10", "updelay": "100", "downdelay": "20", "primary": "eth2"}
    assert mismatches(read, configured, defaults) == []


def test_an_option_nobody_set_that_differs_is_named_with_both_values():
    defaults = parse_config(FRESH_AB, "lgbond0d")
    configured = {"miimon": "10", "updelay": "100", "primary": "eth2"}    # downdelay not set
    (m,) = mismatches(_read_ab(), configured, defaults)
    assert m == Mismatch("downdelay", "0", "20", "driver default")
    assert str(m) == "downdelay: read 20, expected 0 (driver default)"
    (c,) = mismatches(_read_ab(), dict(configured, downdelay="20", updelay="200"), defaults)
    assert str(c) == "updelay: read 100, expected 200 (configured)"


def test_the_arp_monitor_turns_miimon_off_and_a_non_bond_is_an_error():
    defaults = parse_config(FRESH_AB, "lgbond0d")
    read = dict(defaults, arp_interval="100", miimon="0")
    assert mismatches(read, {"arp_interval": "100"}, defaults) == []
    with pytest.raises(BondConfigError, match="eth1: not a bond"):
        parse_config('[{"ifname": "eth1", "linkinfo": {"info_kind": "veth"}}]', "eth1")
