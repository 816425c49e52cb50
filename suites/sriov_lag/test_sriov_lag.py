"""SR-IOV VF LAG (marker ``sriov_lag``): VF traffic subject to HA and LAG.

On the virtual rack the PFs are QEMU's igb (Intel 82576 with SR-IOV: VFs made
by the suite through ``sriov_numvfs``, driven by igbvf in the guest; a VF's
traffic stops with its PF's cable, its carrier does not: see ARP_XOR). igb has
no e-switch LAG, so what runs there is the other common form of VF HA: a bond
of VFs, one VF from each PF, as a tenant makes it ("VF bond (guest side)"),
with the PF cables pulled under traffic.
The mlx5 e-switch VF LAG (switchdev, the PFs bonded, the LAG reflected in
hardware) runs where a host declares ``sriov_lag``; elsewhere it is skipped
naming that capability.
"""

import pytest
from laghil.journal import node_undo
from laghil.kevents import bond_events
from laghil.measure.analysis import detection_latency
from laghil.measure.probe import sample_clock
from pytest_laghil import lacks
from pytest_laghil.lag import pick_path
from pytest_laghil.lag_checks import (
    assert_failover,
    check_distribution,
    record_failover,
    run_trials,
)
from pytest_laghil.sriov import (
    make_vf_lag,
    mlx5_pfs,
    vf_lag_hosts,
    vf_rdma_failover,
    vf_tcpip_failover,
)

from laghil.cases import Case
from laghil.drivers.shaping import shape
from laghil.drivers.sriov import VF_DRIVER, create_vfs, vf_command
from laghil.drivers.vflag import (
    VfLagRefused,
    lag_state_command,
    parse_lag_debugfs,
    plan_vf_lag,
)
from laghil.lag_hash import spread_client_ports
from laghil.measure.model import Measurement
from laghil.measure.throughput import run_iperf3
from laghil.node import NetnsNode
from laghil.pairs import NoPair, choose_pair
from laghil.wait import wait_until

VF_DRIVERS = set(VF_DRIVER.values())
# a VF driver told of its PF's link changes (mailbox interrupt) polls it at once;
# igbvf's watchdog runs every 2 s otherwise: 2 s + a poll is the most it may take
VF_LINK_FOLLOW_S = 2.5

pytestmark = [pytest.mark.sriov_lag, pytest.mark.requires("sriov", count=2)]

# A VF bond's monitor. Where a VF's carrier follows its PF's link (the PF tells
# its VFs: mlx5 with vf link-state auto, igb on real hardware), a tenant's bond
# can use miimon (capability vf_link_state). QEMU's igb does not: on a PF cable
# pull it raises no PF-to-VF mailbox interrupt, so igbvf, which reads the link
# only after one (or a PF reset), keeps carrier up (measured on QEMU 10.0.2: the
# VF's "other" MSI-X vector counts 0, carrier 1 for 4 s after the pull, while a
# PF admin-down, a reset, drops it within igbvf's 2 s watchdog). There the bond
# must see the loss in its traffic: the ARP monitor, in balance-xor (every member
# sends and must receive each interval: it works back to back; active-backup's
# ARP monitor needs a switch to validate the idle backup).
ARP_XOR = Case("bond", "balance-xor", {"arp_interval": 100, "arp_ip_target": "@peer",
                                        "xmit_hash_policy": "layer3+4"}, monitor="arp_100")
def _arp_load_balancing(case):
    """An ARP-monitored bond in a load-balancing mode (every member judged by
    what it receives)."""
    return case.kind == "bond" and case.mode in ("balance-rr", "balance-xor") and \
        bool(case.options.get("arp_interval"))


VF_BOND_CASES = [
    ARP_XOR,
    Case("bond", "active-backup", {"miimon": 10, "primary": 0}, monitor="miimon_10"),
    Case("bond", "balance-xor", {"miimon": 10, "xmit_hash_policy": "layer3+4"},
         monitor="miimon_10"),
]
# the bond's ARP monitor marks a member down after missed_max (2) intervals with
# no ARP received; the test waits a margin of 3 more (a poll, the monitor's tick)
ARP_DOWN_S = (2 + 3) * ARP_XOR.options["arp_interval"] / 1e3
SHAPED_MBIT = 10.0
THROUGHPUT_FLOWS = 4
THROUGHPUT_PORT = 5301


def _param(case, *marks):
    if case.monitor.startswith("miimon"):
        marks = (*marks, pytest.mark.requires("vf_link_state", count=2))
    return pytest.param(case, marks=marks, id=case.id())


@pytest.fixture
def vf_bond_pair(request, lab, node, lag_pair, defer):
    """``vf_bond_pair(case)``: one VF on each of two PFs of each host (made here,
    removed after), each host's two VFs moved into a tenant namespace and bonded
    there by ``lag_pair``; the pair's cables are the PFs' (a member VF is carried
    by its PF's cable: ``bond.port_of``). A tenant namespace laghil would use that
    already exists is refused before the first change."""
    def make(case):
        # two hosts with two SR-IOV PFs each (ports with sriov: true) that meet,
        # back to back or through a switch
        via = case.via or "any"
        if _arp_load_balancing(case):
            # balance-xor's ARP monitor needs every member to receive within each
            # interval (and to send); back to back the peer's probes arrive on every
            # member. Through a switch its static LAG sends a broadcast ARP request,
            # or the replies to one host, on one member only: the other is marked
            # down and the bond runs on one member (the twin of rack3: 1 packet of
            # 17087 on eth0). A back-to-back path, else a skip saying why.
            try:
                path = choose_pair(lab, ("sriov",), "b2b", sriov=True)
            except NoPair as e:
                lacks(request, "back-to-back pair", lab,
                      f"{case.id()}: the load-balancing ARP monitor needs each member to "
                      "receive the peer's probes, which a switch's static LAG sends on one "
                      f"member only (use miimon, capability vf_link_state); {e.detail}")
        else:
            path = pick_path(request, lab, ("sriov",), via, sriov=True)
        a, b = path.hosts
        spaces = {h: f"{lab.device_names.netns}{i + 1}" for i, h in enumerate((a, b))}
        for h, ns in spaces.items():
            if node(h).run(f"[ -e /run/netns/{ns} ]", check=False).rc == 0:
                pytest.fail(f"{h}: network namespace {ns} exists and this test did not make "
                            "it: refusing to use or delete it", pytrace=False)
        members, port_of, tenants = {}, {}, {}
        for h in (a, b):
            n, ns = node(h), spaces[h]
            pfs = path.ports[h]
            members[h] = []
            for pf in pfs:
                (vf,) = create_vfs(n, pf, 1, defer=defer)
                # a bond sets its members' MAC: the PF must trust the VF with it
                n.run(vf_command(pf, 0, trust=True, spoofchk=False))
                members[h].append(vf)
            port_of[h] = dict(zip(members[h], pfs))
            # the tenant: a namespace of its own with the VFs in it (deleted after:
            # its VFs fall back to the host, then go with sriov_numvfs 0)
            defer(node_undo(n, "netns_delete", ns=ns))
            n.run(f"ip netns add {ns} && ip -n {ns} link set lo up && "
                  + " && ".join(f"ip link set dev {vf} netns {ns}" for vf in members[h]))
            tenants[h] = NetnsNode(n, ns)
        pair = lag_pair("bond", case.mode, path=path, members=members, nodes=tenants,
                        **case.options)
        for bond in (pair.a, pair.b):
            bond.port_of = port_of[bond.node.name]
        return pair
    return make


def _member_down_within(bond, vf, want_up, timeout):
    def check():
        st = bond.state().slaves.get(vf)
        got = st.mii_status if st else "absent"
        return None if (got == "up") == want_up else f"{vf} {got}"
    return wait_until(check, timeout=timeout, interval=0.05,
                      what=f"{bond.node.name}: {bond.name} member {vf} "
                           f"{'up' if want_up else 'down'}")


VF_BACK_S = 25.0
POLL_SLACK_S = 2.0      # the bounded wait's slack: polls over SSH under emulation


@pytest.mark.disruptive
@pytest.mark.ci
def test_vfs_are_real_and_carried_by_their_pf(lab, cable, vf_bond_pair, defer, measure):
    """Item 1 on the rack: a VF per PF made through sriov_numvfs, bound to the VF
    driver, moved into the tenant's namespace (gone from the host's), carrier
    up; its traffic crosses its PF's cable: that cable pulled, the tenant bond's
    ARP monitor marks the VF down within missed_max intervals (+ margin), restored
    it comes back up. Both delays are recorded."""
    pair = vf_bond_pair(ARP_XOR)
    bond, h, host = pair.a, pair.a.node, pair.a.node.host    # tenant namespace, host
    for vf, pf in bond.port_of.items():
        r = host.run(f"cat /sys/class/net/{pf}/device/sriov_numvfs; basename \"$(readlink "
                     f"/sys/class/net/{pf}/device/virtfn0/driver)\"")
        numvfs, driver = r.stdout.split()
        carrier = h.run(f"cat /sys/class/net/{vf}/carrier").stdout.strip()
        assert numvfs == "1" and carrier == "1", \
            f"{host.name}: {pf}: sriov_numvfs {numvfs} (want 1), VF {vf} carrier {carrier}"
        assert driver in VF_DRIVERS, f"{host.name}: {vf} of {pf} bound to {driver!r}, not a VF driver"
        assert host.run(f"[ -e /sys/class/net/{vf} ]", check=False).rc != 0, \
            f"{vf} is still in {host.name}'s namespace, not the tenant's {h.netns}"
    vf, pf = next(iter(bond.port_of.items()))
    c = lab.cable_of(host.name, pf)
    clock = sample_clock(h)
    with cable(c.name).pulled(defer=defer) as pull:
        # bounded wait (its polls take a round trip each: not the figure)
        _member_down_within(bond, vf, False, ARP_DOWN_S + POLL_SLACK_S)
    # the figure: the bond's own kernel event for the VF (the ARP monitor of a
    # load-balancing mode logs "interface is now down", the MII monitor "link status
    # definitely down"; the node's kernel log placed on its wall clock) minus the
    # pull's instant, as the failover trials' detection latency: no poll's round
    # trip in it
    down = next((e for e in bond_events(h, bond.name, since=pull.t_inject + clock.offset_s - 1.0)
                 if e.kind == "link down" and f"(slave {vf})" in e.message), None)
    assert down is not None, (f"{h.name}: {bond.name} logged no 'interface is now down' "
                              f"for {vf} after {pf}'s cable was pulled")
    lat = detection_latency(down.t, pull.t_inject, clock.offset_s, clock.uncertainty_s,
                            down.uncertainty_s)
    measure.record(Measurement(
        f"{vf} (VF of {pf}) seen down by the ARP monitor", max(0.0, lat.latency_ms), "ms",
        f"the bond's kernel event 'interface is now down' for {vf} (node clock, "
        f"/dev/kmsg marker) minus {pf}'s cable pull (controller clock)",
        resolution=max(1.0, lat.uncertainty_ms), threshold=ARP_DOWN_S * 1e3,
        note="arp_interval 100 ms, missed_max 2, a margin of 3 intervals"))
    # bounded, not judged: a PF taken down by its admin state (link_down: a twin's,
    # a physical lab's pull) resets its VFs when it comes back (igb: the VF waits
    # for the PF's reset, then its watchdog; 5.5 s was not enough on the twin)
    up = _member_down_within(bond, vf, True, ARP_DOWN_S + VF_BACK_S)
    measure.record(Measurement(
        f"{vf} (VF of {pf}) seen up by the ARP monitor", up * 1e3, "ms",
        f"bond member state polled every 50 ms (a round trip each) from {pf}'s cable "
        "restore verified at both ends", resolution=50.0, note="recorded, not judged"))
    assert lat.latency_ms <= ARP_DOWN_S * 1e3, (
        f"{vf} seen down by {bond.name}'s ARP monitor {lat.latency_ms:.0f} ms (+-"
        f"{lat.uncertainty_ms:.0f}) after {pf}'s cable pull: over {ARP_DOWN_S * 1e3:.0f} ms "
        "(missed_max 2 x arp_interval 100 + 3 intervals)")


@pytest.mark.disruptive
@pytest.mark.requires("vf_link_state", count=2)
def test_vf_carrier_follows_its_pf_link(lab, cable, vf_bond_pair, defer, measure):
    """Where the VF driver learns its PF's link (capability vf_link_state): the
    PF's cable pulled takes the VF's carrier down within VF_LINK_FOLLOW_S,
    restored brings it back."""
    pair = vf_bond_pair(VF_BOND_CASES[1])
    h = pair.a.node
    vf, pf = next(iter(pair.a.port_of.items()))

    def carrier(want):
        def check():
            got = h.run(f"cat /sys/class/net/{vf}/carrier").stdout.strip()
            return None if got == want else f"{vf} carrier {got}"
        return check
    with cable(lab.cable_of(h.name, pf).name).pulled(defer=defer):
        down = wait_until(carrier("0"), timeout=VF_LINK_FOLLOW_S, interval=0.05,
                          what=f"{h.name}: {vf} carrier down after {pf}'s cable pulled")
    up = wait_until(carrier("1"), timeout=VF_LINK_FOLLOW_S + 10, interval=0.05,
                    what=f"{h.name}: {vf} carrier up after {pf}'s cable restored")
    for what, v in (("down", down), ("up", up)):
        measure.record(Measurement(f"{vf} carrier {what} after its PF's", v * 1e3, "ms",
                                   "VF carrier polled every 50 ms from the PF cable's change",
                                   resolution=50.0))


@pytest.mark.failover
@pytest.mark.disruptive
@pytest.mark.parametrize("case", [_param(VF_BOND_CASES[0], pytest.mark.ci),
                                  *map(_param, VF_BOND_CASES[1:])])
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
    check_distribution(vf_bond_pair(ARP_XOR), ARP_XOR, measure, profile)


@pytest.mark.disruptive
@pytest.mark.throughput
def test_vf_bond_aggregate_throughput_vs_one_member(vf_bond_pair, cable, lab, defer, measure,
                                                    profile):
    """Item 3 (VF bond, guest side): TCP over the VF bond, the VFs shaped with
    tbf to a known rate and flows chosen by the kernel's hash to load both: the
    aggregate from the VFs' counters against the sum of their rates (the
    profile's throughput/lag.min_efficiency), then the same flows with one PF's
    cable pulled: the aggregate over both is N x min_efficiency times that over one."""
    case = ARP_XOR
    pair = vf_bond_pair(case)
    a = pair.a
    for m in a.members:
        shape(a.node, m, SHAPED_MBIT, defer=defer)
    dports = [THROUGHPUT_PORT + i for i in range(THROUGHPUT_FLOWS)]
    cports = spread_client_ports(case.hash_policy, a.members, dports, pair.packet())
    speeds = {m: SHAPED_MBIT * 1e6 for m in a.members}

    def run(members):
        return run_iperf3(a.node, pair.b.node, pair.ip_b, members, {m: speeds[m] for m in members},
                          flows=THROUGHPUT_FLOWS, streams=1, duration_s=10, omit_s=3,
                          base_port=THROUGHPUT_PORT, client_ports=cports)
    both = run(a.members)
    floor = profile.threshold("throughput/lag.min_efficiency")
    for m in both.measurements(threshold_efficiency=floor, profile=profile.label):
        measure.record(m)
    vf, pf = next(iter(a.port_of.items()))
    rest = [m for m in a.members if m != vf]
    with cable(lab.cable_of(a.node.host.name, pf).name).pulled(defer=defer):
        _member_down_within(a, vf, False, ARP_DOWN_S)
        one = run(rest)
    ratio = both.counters_bps / max(one.counters_bps, 1.0)
    want = len(a.members) * floor
    measure.record(Measurement(
        "aggregate over both VFs / over one", ratio, "",
        f"VF counters over the steady state, {THROUGHPUT_FLOWS} TCP flows, each VF shaped to "
        f"{SHAPED_MBIT:g} Mbit/s; then {pf}'s cable pulled", resolution=None, threshold=want,
        comparison=">=", profile=profile.label,
        basis=f"{len(a.members)} members x min_efficiency {floor:g}"))
    print(f"VF bond: both {both.counters_bps / 1e6:.2f} Mbit/s (efficiency {both.efficiency:.3f}),"
          f" one ({rest}) {one.counters_bps / 1e6:.2f} Mbit/s, ratio {ratio:.2f}, ports {cports}")
    assert both.efficiency >= floor, (
        f"VF bond: aggregate {both.counters_bps / 1e6:.2f} Mbit/s over {len(a.members)} VFs "
        f"shaped to {SHAPED_MBIT:g} Mbit/s: efficiency {both.efficiency:.3f} < {floor:g}")
    assert ratio >= want, (
        f"VF bond: {both.counters_bps / 1e6:.2f} Mbit/s over both VFs is {ratio:.2f} x the "
        f"{one.counters_bps / 1e6:.2f} Mbit/s over {rest} alone, under {want:.2f}")


# ---- mlx5 e-switch VF LAG -------------------------------------------------------------
@pytest.mark.disruptive
@pytest.mark.requires("sriov_lag", count=1)
def test_mlx5_vf_lag_activates_in_the_profile_mode(request, lab, node, profile, defer):
    """Item 1 on mlx5: the ordered set-up (VFs, unbound, switchdev, the bond over
    both PFs, LAG active, VFs bound), each step's undo registered first; then
    the LAG debugfs says active, type switchdev, the port selection mode the
    profile expects (sriov_lag.port_sel_mode, default hash); VF 0 of each PF
    bound again with a representor."""
    (host,) = vf_lag_hosts(request, lab, 1)
    prof = profile.sections.get("sriov_lag") or {}
    mode, want = prof.get("mode", "802.3ad"), prof.get("port_sel_mode", "hash")
    vfl = make_vf_lag(lab, node(host), mode, int(prof.get("numvfs", 2)), defer=defer,
                      bridge=False)
    st = parse_lag_debugfs(vfl.node.run(lag_state_command(vfl.pfs[0][1])).stdout, node=host)
    assert st.active and st.type == "switchdev", f"{host}: VF LAG not active: {st}"
    assert st.port_sel_mode == want, f"{host}: port_sel_mode {st.port_sel_mode}, profile {want}"
    print(f"{host}: VF LAG {st}; VFs {vfl.vfs}, representors {vfl.reps}")


@pytest.mark.failover
@pytest.mark.disruptive
@pytest.mark.requires("sriov_lag", count=2)
def test_mlx5_vf_traffic_survives_a_pf_member_pull(request, lab, lab_rt, node, measure, profile,
                                                   defer, reps):
    """Item 2 on mlx5: VF LAG (active-backup) on two hosts, their VFs bridged to
    the bond through their representors; UDP probe traffic between the VFs
    across the active PF's cable pull: T_gap / T_loss / reversion within the
    bond's bound."""
    vf_tcpip_failover(request, lab, lab_rt, node, measure, profile, reps, defer=defer)


@pytest.mark.failover
@pytest.mark.disruptive
@pytest.mark.requires("sriov_lag", count=2)
def test_mlx5_vf_rdma_survives_a_pf_member_pull(request, lab, lab_rt, node, measure, profile,
                                                defer, reps):
    """Item 4: a VF's RDMA device (one port) on each host's VF LAG; RC QPs
    between them across the active PF's cable pull: no error completion, RTS,
    all delivered, T_gap per profile and under the survival bound. (Soft-RoCE
    on the rack's VFs would have to stay in the initial namespace, where the VF
    is no tenant's: rack hosts lack sriov_lag.)"""
    vf_rdma_failover(request, lab, lab_rt, node, measure, profile, reps, defer=defer,
                     what="RC QPs between VF RDMA devices through mlx5 VF LAG")


@pytest.mark.requires("sriov_lag", count=1)
def test_mlx5_vf_lag_refuses_a_mode_it_cannot_offload(request, lab):
    """Item 5 on mlx5: broadcast (and balance-rr) are refused before any command,
    quoting the driver: VF traffic over such a bond is not claimed protected."""
    (host,) = vf_lag_hosts(request, lab, 1)
    for mode in ("broadcast", "balance-rr"):
        with pytest.raises(VfLagRefused, match="TX type isn't supported"):
            plan_vf_lag(host, mlx5_pfs(lab, host), 2, mode)
