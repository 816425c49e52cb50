"""Bond driver: option checks, state parsers (/proc/net/bonding and `ip -d -j
link`, captured in the virtual rack: kernel 6.1, iproute2 6.1), the two sources'
agreement, the create/undo sequence; and the transmit-hash oracle."""

from pathlib import Path

import pytest

from fake_iproute import FakeNode
from laghil.drivers.netdev import preflight_command

from laghil.drivers.bond import (Bond, BondError, check_options, disagreements,
                                 parse_state_output)
from laghil.errors import BadName
from laghil.lag_hash import eth_hash, member_index, predict, xmit_hash

CAP = Path(__file__).parent / "data" / "captures"


def states(name, bond="bond0"):
    return parse_state_output((CAP / f"h1-bond-{name}.txt").read_text(), bond)


# ---------------------------------------------------------------- parsers
def test_8023ad_state_from_both_sources_agrees():
    proc, ip = states("8023ad", "bond1")
    assert disagreements(proc, ip) == []
    assert proc.mode == "802.3ad" and proc.options["lacp_rate"] == "fast"
    assert proc.options["xmit_hash_policy"] == "layer3+4" and proc.options["min_links"] == 1
    assert proc.aggregator == {"id": 1, "num_ports": 2, "actor_key": 15, "partner_key": 15,
                               "partner_mac": "52:54:00:00:03:01"}
    assert list(proc.slaves) == ["eth3", "eth4"]
    for s in proc.slaves.values():
        assert (s.actor_state, s.partner_state, s.aggregator_id, s.speed_mbps) == (63, 63, 1, 10000)
    assert [s.state for s in ip.slaves.values()] == ["active", "active"]


@pytest.mark.parametrize("name,mode,active,primary", [
    ("ab", "active-backup", "eth2", "eth2"),
    ("rr", "balance-rr", None, None),
    ("xor", "balance-xor", None, None),
    ("bcast", "broadcast", None, None),
    ("tlb", "balance-tlb", "eth1", None),
    ("alb", "balance-alb", "eth2", "eth2"),
])
def test_every_mode_parses_and_sources_agree(name, mode, active, primary):
    proc, ip = states(name)
    assert (proc.mode, proc.active_slave, proc.primary) == (mode, active, primary)
    assert disagreements(proc, ip) == []
    assert proc.up_slaves == ["eth1", "eth2"]


def test_options_read_back():
    proc, _ = states("ab")
    assert (proc.options["miimon"], proc.options["updelay"], proc.options["downdelay"]) == (10, 100, 20)
    assert proc.options["primary_reselect"] == "always"
    proc, _ = states("xor")
    assert proc.options["xmit_hash_policy"] == "layer2+3" and proc.options["miimon"] == 50
    proc, ip = states("abarp")
    assert proc.options["arp_interval"] == 100 and proc.options["fail_over_mac"] == "active"
    assert proc.options["arp_ip_target"] == ip.options["arp_ip_target"] == \
        ["192.168.201.2", "192.168.201.3"]
    assert proc.options["primary_reselect"] == "failure"


def test_disagreement_is_reported_per_field():
    # captured while the ARP monitor flapped the members (no target answered):
    # /proc and ip were read a moment apart and saw different member states.
    proc, ip = states("abarp")
    bad = disagreements(proc, ip)
    assert bad == ["eth1.mii_status: /proc says 'going back', ip says 'going down'",
                   "eth2.mii_status: /proc says 'going down', ip says 'going back'"]


def test_ip_listing_the_slaves_in_ifindex_order_is_no_disagreement():
    """ip lists a bond's slaves in ifindex order, /proc in enslave order: on a
    host whose ports sit behind PCIe expander buses (the rack's NUMA host h2)
    eth2 got the lower ifindex. A slave missing on one side still disagrees."""
    import dataclasses
    proc, ip = states("ab")
    swapped = dataclasses.replace(ip, slaves=dict(reversed(list(ip.slaves.items()))))
    assert list(swapped.slaves) != list(proc.slaves) and disagreements(proc, swapped) == []
    one = dataclasses.replace(ip, slaves=dict(list(ip.slaves.items())[:1]))
    assert any(d.startswith("slaves: /proc says") for d in disagreements(proc, one))


def test_state_waits_out_a_transient_disagreement_and_reports_a_lasting_one(monkeypatch):
    """/proc and ip read a moment apart during LACP negotiation (a partner_state
    seen 7 and 199, at a pair's setup under load): state() re-reads until they
    agree; one that lasts past the settle time is a BondError naming the fields."""
    import laghil.drivers.bond as bondmod
    clock = [0.0]
    monkeypatch.setattr(bondmod.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(bondmod.time, "sleep", lambda s: clock.__setitem__(0, clock[0] + s))
    good, flapping = states("8023ad", "bond1"), states("abarp")
    bond = Bond(FakeNode(), "bond1", "802.3ad", ["eth3", "eth4"])
    reads = iter([flapping] * 6 + [good])
    monkeypatch.setattr(bond, "states", lambda: next(reads))
    assert bond.state() is good[0]
    assert 1.5 <= clock[0] <= 3.0, f"settled after {clock[0]:.1f} s of re-reads"
    clock[0] = 0.0
    monkeypatch.setattr(bond, "states", lambda: flapping)
    with pytest.raises(BondError, match=r"disagree for 3 s: eth1.mii_status"):
        bond.state()
    assert 2.7 <= clock[0] <= 3.0, f"gave up after {clock[0]:.1f} s"


# ---------------------------------------------------------------- options
@pytest.mark.parametrize("mode,opts,needle", [
    ("active-backup", {"lacp_rate": "fast"}, "not accepted in mode active-backup"),
    ("802.3ad", {"lacp_rate": "quick"}, "must be one of slow, fast"),
    ("802.3ad", {"arp_interval": 100, "arp_ip_target": "10.0.0.1"}, "not accepted in mode 802.3ad"),
    ("balance-xor", {"xmit_hash_policy": "layer9"}, "must be one of layer2"),
    ("active-backup", {"miimon": "-1"}, "must be an integer from 0"),
    ("active-backup", {"miimon": 100, "updelay": 150}, "not a multiple of miimon 100"),
    ("active-backup", {"primary": "eth9"}, "primary 'eth9' is not a member"),
    ("active-backup", {"arp_interval": 100}, "arp_interval needs arp_ip_target"),
    ("active-backup", {"arp_interval": 100, "arp_ip_target": "10.0.0.300"}, "IPv4 addresses"),
    ("active-backup", {"miimon": 100, "arp_interval": 100, "arp_ip_target": "10.0.0.1"},
     "exclude each other"),
    ("balance-rr", {"frobnicate": 1}, "unknown option"),
])
def test_bad_options_are_refused_with_the_field_named(mode, opts, needle):
    with pytest.raises(BondError, match="h1: bond bond0") as e:
        check_options("h1", "bond0", mode, ["eth1", "eth2"], opts)
    assert needle in str(e.value)


def test_good_options_are_normalised():
    out = check_options("h1", "bond0", "active-backup", ["eth1", "eth2"],
                        {"arp_interval": 200, "arp_ip_target": ["192.168.201.2", "192.168.201.3"],
                         "arp_validate": "all", "primary": "eth1", "num_grat_arp": 3})
    assert out == {"arp_interval": "200", "arp_ip_target": "192.168.201.2,192.168.201.3",
                   "arp_validate": "all", "primary": "eth1", "num_grat_arp": "3"}


def test_create_registers_the_undo_before_changing_anything():
    node = FakeNode()
    undo_at = []
    bond = Bond(node, "lgbond0", "802.3ad", ["eth1", "eth2"], miimon=100, lacp_rate="fast")
    bond.create(defer=lambda fn: undo_at.append((fn, len(node.cmds))), address="192.168.201.1/24")
    (fn, n_before), = undo_at
    assert fn.fn == bond.destroy
    (rec,) = fn.records                 # journaled as data: the delete, members as they were
    assert rec.args[0] == "netdev_destroy" and rec.args[1]["name"] == "lgbond0"
    assert [m["name"] for m in rec.args[1]["members"]] == ["eth1", "eth2"]
    assert node.cmds[:n_before] == [preflight_command(), "ip -j addr show dev eth1",
                                    "ip -j addr show dev eth2"]
    create = node.cmds[n_before]
    assert create.startswith("ip link add name lgbond0 type bond mode 802.3ad miimon 100 lacp_rate fast")
    assert "ip link set dev eth1 master lgbond0" in create and "ip addr add 192.168.201.1/24" in create


def test_names_with_shell_characters_are_refused_before_any_command():
    node = FakeNode()
    with pytest.raises(BadName):
        Bond(node, "bond0", "active-backup", ["eth1;reboot", "eth2"])
    with pytest.raises(BondError, match="unknown bond mode"):
        Bond(node, "bond0", "balance-xyz", ["eth1", "eth2"])
    assert node.cmds == []


# ---------------------------------------------------------------- hash oracle
def test_layer2_hash_is_mac_bytes_and_ethertype():
    # 0x01 ^ 0x01 ^ 0x0800 = 0x800: even, so member 0 of 2 for every flow
    assert eth_hash("52:54:00:00:01:01", "52:54:00:00:02:01") == 0x800
    assert member_index("layer2", 2, src_mac="52:54:00:00:01:01", dst_mac="52:54:00:00:02:03") == 0x802 % 2


def test_layer34_hash_worked_example():
    # sport 47500 = 0xB98C, dport 47000 = 0xB798: bytes B9 8C B7 98 read little-endian
    ports = 0x98B78CB9
    # 192.168.201.1 / .2 as little-endian u32: 0x01C9A8C0 ^ 0x02C9A8C0 = 0x03000000
    h = ports ^ 0x03000000
    h ^= h >> 16
    h ^= h >> 8
    h >>= 1
    assert xmit_hash("layer3+4", "a:b:c:d:e:01", "a:b:c:d:e:02", "192.168.201.1",
                     "192.168.201.2", 47500, 47000) == h


def test_predict():
    pkt = dict(src_mac="52:54:00:00:01:01", dst_mac="52:54:00:00:02:01",
               src_ip="192.168.201.1", dst_ip="192.168.201.2")
    flows = [(47500 + i, 47000 + i) for i in range(8)]
    p = predict("layer3+4", ["eth1", "eth2"], flows, **pkt)
    assert sorted(p["eth1"] + p["eth2"]) == list(range(8))
    assert predict("layer2", ["eth1", "eth2"], flows, **pkt) == {"eth1": list(range(8)), "eth2": []}


def test_telling_src_base_and_spread_client_ports():
    from laghil.lag_hash import spread_client_ports, telling_src_base
    pkt = dict(src_mac="52:54:00:00:01:01", dst_mac="52:54:00:00:02:01",
               src_ip="192.168.201.1", dst_ip="192.168.201.2")
    base = telling_src_base("layer3+4", ["eth1", "eth2"], 8, 47000, pkt)
    split = predict("layer3+4", ["eth1", "eth2"], [(base + i, 47000 + i) for i in range(8)], **pkt)
    assert sorted(len(v) for v in split.values()) == [2, 6] or \
        sorted(len(v) for v in split.values()) == [3, 5]
    dports = [5301, 5302, 5303, 5304]
    cports = spread_client_ports("layer3+4", ["eth1", "eth2"], dports, pkt)
    assert [member_index("layer3+4", 2, sport=s, dport=d, **pkt) for s, d in zip(cports, dports)] \
        == [0, 1, 0, 1]
    assert spread_client_ports("layer2", ["eth1", "eth2"], dports, pkt) is None


def test_mode_oracles():
    from laghil.oracle import NoOracle, expected_tx_share, placement, survivors
    pkt = dict(src_mac="52:54:00:00:01:01", dst_mac="52:54:00:00:02:01",
               src_ip="192.168.201.1", dst_ip="192.168.201.2")
    flows = [(47501 + i, 47000 + i) for i in range(4)]
    m = ["eth1", "eth2"]
    assert expected_tx_share("balance-rr", {}, m, flows, pkt) == {"eth1": 0.5, "eth2": 0.5}
    assert expected_tx_share("broadcast", {}, m, flows, pkt) == {"eth1": 1.0, "eth2": 1.0}
    assert expected_tx_share("active-backup", {}, m, flows, pkt, active="eth2") == \
        {"eth1": 0.0, "eth2": 1.0}
    xor = expected_tx_share("balance-xor", {}, m, flows, pkt, hash_policy="layer3+4")
    placed = predict("layer3+4", m, flows, **pkt)
    assert xor == {k: len(v) / 4 for k, v in placed.items()}
    assert survivors("balance-xor", {}, m, "eth1", flows, pkt, "layer3+4") == placed["eth2"]
    assert survivors("broadcast", {}, m, "eth1", flows, pkt) == [0, 1, 2, 3]
    assert survivors("balance-rr", {}, m, "eth1", flows, pkt) is None
    assert placement("balance-tlb", {}) == "per_destination"
    assert placement("balance-tlb", {"tlb_dynamic_lb": 0}) == "hash"
    assert expected_tx_share("balance-alb", {}, m, flows, pkt) is None
    assert placement("lacp", {}) == "hash" and placement("random", {}) == "random"
    with pytest.raises(NoOracle):
        expected_tx_share("active-backup", {}, m, flows, pkt, active="eth9")
    with pytest.raises(NoOracle):
        placement("frobnicate", {})


def test_switch_partner_lag_and_bridge_register_their_undo_first():
    from laghil.drivers.switch import PARTNER_MODE, LinuxSwitch, SwitchError
    node = FakeNode("sw1", ports=("swp1", "swp2", "swp3"))
    undo = []
    sw = LinuxSwitch(node)
    lag = sw.lag_create("lglag1", ["swp1", "swp2"], "lacp",
                        defer=lambda fn: undo.append((fn, len(node.cmds))))
    br = sw.bridge_create("lgbr0", ["lglag1", "swp3"],
                          defer=lambda fn: undo.append((fn, len(node.cmds))))
    (f1, n1), (f2, n2) = undo
    assert f1.records[0].args[0] == "netdev_destroy" and f1.records[0].args[1]["name"] == "lglag1"
    assert lag.name == "lglag1" and lag.members == ("swp1", "swp2") and f2.fn == br.destroy
    assert node.cmds[n1].startswith("ip link add name lglag1 type bond mode 802.3ad miimon 10")
    assert "lacp_rate fast" in node.cmds[n1]
    assert node.cmds[n2].startswith("ip link add name lgbr0 type bridge stp_state 0")
    assert "ip link set dev swp3 master lgbr0" in node.cmds[n2]
    assert PARTNER_MODE["balance-alb"] is None and PARTNER_MODE["balance-rr"] == "static"
    with pytest.raises(SwitchError, match="static, lacp or a bond mode"):
        sw.lag_create("lglag2", ["swp1"], "dynamic", defer=lambda fn: None)
    with pytest.raises(BadName):
        sw.bridge_create("br;x", ["swp1"], defer=lambda fn: None)


def test_an_ipoib_bond_is_active_backup_only_refused_before_any_command():
    """IPoIB ports (link_layer infiniband in the lab file): the bonding driver
    takes them in active-backup only and not beside Ethernet ones; laghil
    refuses the rest before the first command, in the driver's words."""
    from types import SimpleNamespace

    from laghil.drivers.bond import MSG_IB_MODE, MSG_TYPE_MIX
    node = FakeNode(ports=("ib0", "ib1", "eth1"))
    ib = SimpleNamespace(link_layer="infiniband")
    node.spec = SimpleNamespace(ports={"ib0": ib, "ib1": ib,
                                       "eth1": SimpleNamespace(link_layer="ethernet")})
    for mode in ("balance-rr", "balance-xor", "802.3ad", "broadcast", "balance-tlb",
                 "balance-alb"):
        with pytest.raises(BondError, match=MSG_IB_MODE) as e:
            Bond(node, "lgbond0", mode, ["ib0", "ib1"], miimon=100)
        assert f"h1: bond lgbond0 ({mode}) over IPoIB members ['ib0', 'ib1']" in str(e.value)
    with pytest.raises(BondError, match=MSG_TYPE_MIX):
        Bond(node, "lgbond0", "active-backup", ["ib0", "eth1"], miimon=100)
    assert node.cmds == []
    assert Bond(node, "lgbond0", "active-backup", ["ib0", "ib1"], miimon=100).mode == "active-backup"
