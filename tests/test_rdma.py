"""RDMA providers under a LAG (laghil.drivers.rdma): each one's rules as its
sources state them, the one registry the lab file and the suites read."""

import pytest

from laghil.drivers import rdma
from laghil.drivers.rdma import PROVIDERS, STAND_IN, provider, provider_for
from laghil.drivers.roce import RoceError, RoceLag
from laghil.lab import fields


def test_one_registry_every_provider_a_module_with_its_capability():
    assert set(PROVIDERS) == {"mlx5", "hns", "bnxt_re", "rxe"}
    assert fields.RDMA_PROVIDERS == tuple(PROVIDERS)
    assert all(p.capability in fields.CAPABILITIES for p in PROVIDERS.values())
    assert rdma.HARDWARE == ("mlx5", "hns", "bnxt_re") and STAND_IN == "rxe"
    with pytest.raises(rdma.RdmaError, match="'efa' unknown .*mlx5, hns, bnxt_re, rxe"):
        provider("efa")


def test_a_host_uses_its_hardware_provider_before_rxe():
    assert provider_for(("bonding", "rxe", "mlx5")).name == "mlx5"
    assert provider_for(("rxe",)).name == "rxe"
    assert provider_for(("bonding", "hns")).name == "hns"
    assert provider_for(("bonding",)) is None


@pytest.mark.parametrize("name, lag, good, bad", [
    # documented device names: mlx5 lag (mlx5_bond_0 replaces mlx5_0/mlx5_1);
    # hns: 'a bond ibdev "hns_bond_*" is registered instead of the regular PF
    # ibdev "hns_*"'; bnxt_re: bnxt_setupcc.sh 'e.g. bnxt_re0, bnxt_re_bond0'
    ("mlx5", "lgbond0", ["mlx5_bond_0", "mlx5_bond_12"], ["mlx5_0", "mlx5_bond_x"]),
    ("hns", "lgbond0", ["hns_bond_0", "hns_bond_3"], ["hns_0", "hns_bond"]),
    ("bnxt_re", "lgbond0", ["bnxt_re_bond0"], ["bnxt_re0", "bnxt_re_bond_0"]),
    ("rxe", "lgbond0", ["rxe_lgbond0"], ["rxe_lgbond1", "rxe_lgbond0x", "rxe0"]),
])
def test_the_device_a_lag_presents(name, lag, good, bad):
    r = provider(name).aggregate_re(lag)
    assert all(r.fullmatch(d) for d in good) and not any(r.fullmatch(d) for d in bad)


def test_mlx5_takes_the_hardware_lag_modes_only():
    p = provider("mlx5")
    assert p.refusal("bond", "802.3ad") is None and p.refusal("team", "lacp") is None
    assert "not 'balance-rr'" in p.refusal("bond", "balance-rr")
    assert "not 'roundrobin'" in p.refusal("team", "roundrobin")
    assert "at most 2 ports, not 4" in p.refusal("bond", "802.3ad", members=4)
    assert p.lag_port_sampling and not p.software


def test_hns_rules_from_hns_roce_bond_c():
    p = provider("hns")
    for mode in ("active-backup", "balance-xor", "802.3ad"):        # modes 1, 2, 4
        assert p.refusal("bond", mode) is None, mode
    assert "not 'balance-alb'" in p.refusal("bond", "balance-alb")
    # hash_type <= NETDEV_LAG_HASH_L23
    assert p.refusal("bond", "802.3ad", hash_policy="layer3+4") is None
    assert "not 'encap3+4'" in p.refusal("bond", "802.3ad", hash_policy="encap3+4")
    assert "not 'vlan+srcmac'" in p.refusal("bond", "balance-xor", hash_policy="vlan+srcmac")
    # a team's hash is unknown to the kernel: its activebackup runner only
    assert p.refusal("team", "activebackup") is None
    assert "not 'lacp'" in p.refusal("team", "lacp")
    assert p.refusal("bond", "802.3ad", members=4) is None
    assert "at most 4 ports, not 5" in p.refusal("bond", "802.3ad", members=5)
    assert "has VFs (2)" in p.refusal("bond", "active-backup", vfs=2)


def test_bnxt_re_bonds_only_and_refuses_no_bond_mode():
    p = provider("bnxt_re")
    assert p.refusal("bond", "balance-rr") is None
    assert "needs no team" in p.refusal("team", "activebackup")


def test_rxe_is_added_by_laghil_and_knows_its_active_backup_defect():
    p = provider("rxe")
    assert p.software and p.refusal("bond", "balance-rr") is None
    d = p.known_defect("bond", "active-backup")
    assert d is not None and "Failed allocating skb" in d.reason
    assert p.known_defect("bond", "802.3ad") is None and p.known_defect("team", "activebackup") is None
    assert all(provider(n).known_defect("bond", "active-backup") is None for n in rdma.HARDWARE)


class _Node:
    name = "h1"

    def run(self, cmd, check=True, **kw):
        raise AssertionError(f"a refused LAG ran {cmd!r}")


class _Lag:
    def __init__(self, kind, mode, members=("eth1", "eth2"), options=None):
        self.node, self.name, self.kind, self.mode = _Node(), "lgbond0", kind, mode
        self.members, self.options = list(members), options or {}


def test_a_hardware_provider_refuses_a_lag_it_would_not_take_before_any_command():
    with pytest.raises(RoceError, match="h1: hns RoCE LAG takes xmit_hash_policy .*'encap2\\+3'"):
        RoceLag(_Lag("bond", "802.3ad", options={"xmit_hash_policy": "encap2+3"}),
                "hns").create(defer=None)
    with pytest.raises(RoceError, match="h1: mlx5 RoCE LAG over a bond needs one of "
                                        "active-backup, balance-xor, 802.3ad, not 'balance-rr'"):
        RoceLag(_Lag("bond", "balance-rr"), "mlx5").create(defer=None)
    with pytest.raises(RoceError, match="h1: RoCE LAG: RDMA provider 'efa' unknown"):
        RoceLag(_Lag("bond", "802.3ad"), "efa")


def test_hns_refuses_a_lag_whose_member_pf_has_vfs_naming_them():
    """hns makes no bond device while a member has VFs: the members'
    sriov_numvfs are read (only for a provider with that rule, after the mode
    rules passed) and the LAG refused naming the count, before it is waited for."""
    class Vfs(_Node):
        def __init__(self):
            self.cmds = []

        def run(self, cmd, check=True, **kw):
            self.cmds.append(cmd)
            return type("R", (), {"stdout": "2\n0\n", "rc": 0})()
    lag = _Lag("bond", "802.3ad", options={"xmit_hash_policy": "layer3+4"})
    lag.node = Vfs()
    with pytest.raises(RoceError, match="h1: hns makes no bond device while a member PF has "
                                        "VFs \\(2\\)"):
        RoceLag(lag, "hns").create(defer=None)
    assert len(lag.node.cmds) == 1 and "eth1/device/sriov_numvfs" in lag.node.cmds[0]
    # mlx5 has no such rule: a refused mode is said before any command (_Node raises on one)
    with pytest.raises(RoceError, match="not 'balance-rr'"):
        RoceLag(_Lag("bond", "balance-rr"), "mlx5").create(defer=None)
