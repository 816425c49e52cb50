"""SR-IOV VF LAG (marker ``sriov_lag``): VF traffic subject to HA and LAG.

On the virtual rack the PFs are QEMU's igb (Intel 82576 with SR-IOV: VFs made
by the suite through ``sriov_numvfs``, driven by igbvf in the guest, a VF's
link following its PF's). igb has no e-switch LAG, so what runs there is the
other common form of VF HA: a bond of VFs, one VF from each PF, as a tenant
makes it ("VF bond (guest side)"), with the PF cables pulled under traffic.
The mlx5 e-switch VF LAG (switchdev, the PFs bonded, the LAG reflected in
hardware) runs where a host declares ``sriov_lag``; elsewhere it is skipped
naming that capability.
"""

import pytest
from pytest_laghil.gating import lacks
from pytest_laghil.lag import sriov_port
from pytest_laghil.lag_checks import (
    assert_failover,
    check_distribution,
    record_failover,
    run_trials,
)

from laghil.cases import Case
from laghil.drivers.lag import make_lag
from laghil.drivers.sriov import create_vfs, vf_command
from laghil.drivers.vflag import (
    VfLagRefused,
    lag_state_command,
    parse_lag_debugfs,
    plan_vf_lag,
    undo_commands,
)
from laghil.node import NetnsNode
from laghil.wait import wait_until

pytestmark = [pytest.mark.sriov_lag, pytest.mark.requires("sriov", count=2)]

VF_BOND_CASES = [
    Case("bond", "active-backup", {"miimon": 10, "primary": 0}, monitor="miimon_10"),
    Case("bond", "balance-xor", {"miimon": 10, "xmit_hash_policy": "layer3+4"},
         monitor="miimon_10"),
]


def _ids(cases):
    return [c.id() for c in cases]


@pytest.fixture
def vf_bond_pair(request, lab, node, lag_pair, defer):
    """``vf_bond_pair(case)``: one VF on each of two PFs of each host (made here,
    removed after), each host's two VFs moved into a tenant namespace and bonded
    there by ``lag_pair``; the pair's cables are the PFs' (a member VF is carried
    by its PF's cable: ``bond.port_of``)."""
    def make(case):
        a, b = [h for h, s in lab.hosts.items() if "sriov" in s.capabilities][:2]
        cables = [c for c in lab.cables_between(a, b)
                  if all(sriov_port(lab, r) for r in (c.a, c.b))][:2]
        if len(cables) < 2:
            lacks(request, "sriov", lab, f"{a} and {b} share {len(cables)} cable(s) between "
                  "SR-IOV PFs (ports with sriov: true), need 2")
        members, port_of, tenants = {}, {}, {}
        for i, h in enumerate((a, b)):
            n = node(h)
            pfs = [(c.a if c.a.node == h else c.b).port for c in cables]
            members[h] = []
            for pf in pfs:
                (vf,) = create_vfs(n, pf, 1, defer=defer)
                # a bond sets its members' MAC: the PF must trust the VF with it
                n.run(vf_command(pf, 0, trust=True, spoofchk=False))
                members[h].append(vf)
            port_of[h] = dict(zip(members[h], pfs))
            # the tenant: a namespace of its own with the VFs in it (deleted after:
            # its VFs fall back to the host, then go with sriov_numvfs 0)
            ns = f"{lab.device_names.netns}{i + 1}"
            if n.run(f"[ -e /run/netns/{ns} ]", check=False).rc == 0:
                pytest.fail(f"{h}: netns {ns} exists and laghil did not make it in this test",
                            pytrace=False)
            defer(n.run, f"ip netns del {ns} 2>/dev/null; true", check=False)
            n.run(f"ip netns add {ns} && ip -n {ns} link set lo up && "
                  + " && ".join(f"ip link set dev {vf} netns {ns}" for vf in members[h]))
            tenants[h] = NetnsNode(n, ns)
        pair = lag_pair("bond", case.mode, a=a, b=b, members=members, cables=cables,
                        nodes=tenants, **case.options)
        for bond in (pair.a, pair.b):
            bond.port_of = port_of[bond.node.name]
        return pair
    return make


@pytest.mark.ci
def test_vfs_are_real_and_follow_their_pf_link(lab, node, cable, vf_bond_pair, defer):
    """Item 1 on the rack: VFs made through sriov_numvfs, bound to the VF driver,
    one port each; a PF cable pulled takes its VF's carrier down, restored brings
    it back; the VF bond reports the member down and up."""
    pair = vf_bond_pair(VF_BOND_CASES[0])
    h, host = pair.a.node, pair.a.node.host      # the tenant namespace, the host
    for vf, pf in pair.a.port_of.items():
        r = host.run(f"cat /sys/class/net/{pf}/device/sriov_numvfs; basename \"$(readlink "
                     f"/sys/class/net/{pf}/device/virtfn0/driver)\"")
        numvfs, driver = r.stdout.split()
        carrier = h.run(f"cat /sys/class/net/{vf}/carrier").stdout.strip()
        assert numvfs == "1" and carrier == "1", (pf, r.stdout, carrier)
        assert driver in ("igbvf", "mlx5_core", "iavf", "ixgbevf"), f"{vf}: VF driver {driver}"
        assert host.run(f"[ -e /sys/class/net/{vf} ]", check=False).rc != 0, \
            f"{vf} is still in the host's namespace, not the tenant's {h.netns}"
    vf, pf = next(iter(pair.a.port_of.items()))
    c = lab.cable_of(h.name, pf)
    with cable(c.name).pulled(defer=defer):
        got = h.run(f"cat /sys/class/net/{vf}/carrier").stdout.strip()
        assert got == "0", f"{vf}: carrier {got} with its PF {pf}'s cable pulled"
    cable(c.name).wait_carrier(True)
    h.run(f"i=0; while [ \"$(cat /sys/class/net/{vf}/carrier)\" != 1 ] && [ $i -lt 100 ]; do "
          "sleep 0.1; i=$((i+1)); done")
    assert h.run(f"cat /sys/class/net/{vf}/carrier").stdout.strip() == "1"


@pytest.mark.failover
@pytest.mark.disruptive
@pytest.mark.parametrize("case", [pytest.param(VF_BOND_CASES[0], marks=pytest.mark.ci),
                                  VF_BOND_CASES[1]], ids=_ids(VF_BOND_CASES))
def test_vf_bond_failover_within_profile(vf_bond_pair, lab_rt, case, measure, profile, defer,
                                         reps, pytestconfig):
    """Item 2 (VF bond, guest side): probe traffic between the hosts' VF bonds
    across a PF cable pull: per-flow T_gap / T_loss within the bound of the
    bond's configuration; reversion on restore."""
    pair = vf_bond_pair(case)
    trials = run_trials(lab_rt, pair, case, reps, pytestconfig, defer=defer)
    figs = record_failover(trials, case, measure, profile)
    assert_failover(trials, pair, case, figs)


@pytest.mark.distribution
def test_vf_bond_spreads_flows_over_both_pfs(vf_bond_pair, measure, profile):
    """Item 3 (VF bond, guest side): many flows over a balance-xor VF bond spread
    over both VFs (so both PFs' uplinks) as the hash oracle says."""
    case = VF_BOND_CASES[1]
    check_distribution(vf_bond_pair(case), case, measure, profile)


# ---- mlx5 e-switch VF LAG -------------------------------------------------------------
def _mlx5_pfs(lab, host):
    pfs = [(p, s.pci) for p, s in lab.hosts[host].ports.items() if s.sriov and s.pci]
    return pfs[:2]


def _mlx5_host(request, lab):
    host = next(h for h, s in lab.hosts.items() if "sriov_lag" in s.capabilities)
    pfs = _mlx5_pfs(lab, host)
    if len(pfs) < 2:
        lacks(request, "sriov_lag", lab, f"{host}: two ports with sriov: true and a pci address")
    return host, pfs


@pytest.mark.disruptive
@pytest.mark.requires("sriov_lag", count=1)
def test_mlx5_vf_lag_activates_in_the_profile_mode(request, lab, node, profile, defer):
    """Item 1 on mlx5: the ordered set-up (VFs, unbound, switchdev, the bond over
    both PFs, LAG active, VFs bound), each step's undo registered first; then
    the LAG debugfs says active, type switchdev, the port selection mode the
    profile expects (sriov_lag.port_sel_mode, default hash)."""
    host, pfs = _mlx5_host(request, lab)
    n = node(host)
    prof = profile.sections.get("sriov_lag") or {}
    mode, want = prof.get("mode", "802.3ad"), prof.get("port_sel_mode", "hash")
    plan = plan_vf_lag(host, pfs, int(prof.get("numvfs", 2)), mode)
    for cmd in reversed(undo_commands(pfs)):     # VFs removed, then the e-switch legacy
        defer(n.run, cmd, check=False)
    for what, cmd in plan.steps:
        if what == "bond":
            make_lag(n, "bond", mode, [pf for pf, _ in pfs], name=lab.device_names.bond,
                     miimon=100).create(defer=defer)
        elif what == "LAG active":
            wait_until(lambda: None if parse_lag_debugfs(n.run(cmd).stdout, node=host).active
                       else "state disabled", timeout=10, what=f"{host}: mlx5 LAG active")
        else:
            n.run(cmd)
    st = parse_lag_debugfs(n.run(lag_state_command(pfs[0][1])).stdout, node=host)
    assert st.active and st.type == "switchdev", f"{host}: VF LAG not active: {st}"
    assert st.port_sel_mode == want, f"{host}: port_sel_mode {st.port_sel_mode}, profile {want}"


@pytest.mark.requires("sriov_lag", count=1)
def test_mlx5_vf_lag_refuses_a_mode_it_cannot_offload(request, lab):
    """Item 5 on mlx5: broadcast (and balance-rr) are refused before any command,
    quoting the driver: VF traffic over such a bond is not claimed protected."""
    host, pfs = _mlx5_host(request, lab)
    for mode in ("broadcast", "balance-rr"):
        with pytest.raises(VfLagRefused, match="TX type isn't supported"):
            plan_vf_lag(host, pfs, 2, mode)
