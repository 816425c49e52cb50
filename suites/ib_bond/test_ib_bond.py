"""IB device bonding (marker ``ib_bond``): one logical RDMA device over several,
used unmodified by verbs applications. A contract suite: each host's
``rdma_aggregates`` entry in the lab file says what the aggregate is and claims
(members, mode, hidden members, link layer, affinity, SR-IOV); each claim is
proved here, and each one the lab cannot test is skipped naming it.

An aggregate is brought about the way its driver makes it: its members bonded
(mlx5 makes ``mlx5_bond_<n>`` when both PFs are enslaved, hns ``hns_bond_*``);
then found by attributes (the one RDMA device on the LAG netdev), never by name.
The virtual rack's aggregates are stand-ins, Soft-RoCE over the LAG (active-active:
an 802.3ad bond; active-passive: team's activebackup runner, which moves the
active port without the bonding failover event that rxe's QPs do not survive),
labeled as such in every figure's method.
"""

import json
import secrets
import time

import pytest
from laghil.journal import node_undo
from pytest_laghil import cable_pull_method, lacks
from pytest_laghil.lag import pick_path
from pytest_laghil.lag_checks import repeated_trials
from pytest_laghil.roce import (
    RC_QPS,
    RC_RATE,
    assert_rc_survived,
    check_rdma_gain,
    rc_probe,
    record_rc_failover,
)
from pytest_laghil.sriov import vf_rdma_failover

from laghil.cases import ROCE_OPTIONS, roce_case
from laghil.checks.ibbond import (DRIVER_LAG, ONE_MEMBER_SHARE, STAND_IN_LAG, WINDOW_S,
                                  AggregatePair, cpulist, roce_v2_gid_index, tx_shares)
from laghil.pairs import aggregate_ports
from laghil.drivers.bond import MSG_IB_MODE, Bond, BondError
from laghil.drivers.ibbond import (
    TOOLS,
    aggregate_problems,
    find_aggregate,
    numa_node_command,
    parse_ibv_devinfo,
    parse_tool_output,
    tool_commands,
)
from laghil.drivers.rdma import STAND_IN
from laghil.drivers.roce import RoceLag, inventory
from laghil.measure.failover import run_failover
from laghil.measure.figures import failover_figures
from laghil.measure.model import Measurement
from laghil.measure.rdma_probe import RdmaProbe, UdProbe
from laghil.measure.throughput import read_counters
from laghil.names import q

pytestmark = [pytest.mark.ib_bond]

ITERS = 100
# NUMA: a pinned ibv_rc_pingpong per node, 4 KiB messages (4 frames at MTU 1024)
NUMA_ITERS, NUMA_SIZE = 500, 4096
# UD probe: per QP 500 msg/s (2 ms resolution of the loss-derived outage)
UD_QPS, UD_RATE = 2, 500


def _declared(request, lab, mode=None):
    """Hosts declaring an aggregate (of ``mode``), each host's first such: at
    least two. -> (the first two, {host: declaration} of all)."""
    decl = {h: next((a for a in s.rdma_aggregates if mode in (None, a.mode)), None)
            for h, s in lab.hosts.items()}
    decl = {h: d for h, d in decl.items() if d is not None}
    if len(decl) < 2:
        lacks(request, f"rdma aggregate ({mode or 'any mode'})", lab,
              f"two hosts declaring an {mode or ''} rdma_aggregates entry, has {len(decl)}")
    return list(decl)[:2], decl


@pytest.fixture
def aggregate_pair(request, lab, lag_pair, defer):
    """``aggregate_pair(mode=None)``: the declared aggregate (of that mode) on two
    hosts, brought about over its members' LAG and found on it by attributes;
    its name checked against the declaration. -> AggregatePair."""
    def make(mode=None, sender=None):
        hosts, decl = _declared(request, lab, mode)
        if sender is not None:
            others = [h for h in decl if h != sender]
            if sender not in decl or not others:
                lacks(request, "rdma aggregate", lab, f"{sender} and another host declaring "
                      f"an {mode or ''} rdma_aggregates entry")
            hosts = [sender, others[0]]
        # two declaring hosts whose members meet, back to back or through a switch
        members = {h: p for h, p in aggregate_ports(lab, mode).items() if h in decl}
        path = pick_path(request, lab, (), "any", count=len(decl[hosts[0]].members),
                         ports=members, a=sender)
        hosts = list(path.hosts)
        d = decl[hosts[0]]
        decl = {h: decl[h] for h in hosts}
        kind, lag_mode = (STAND_IN_LAG if d.stand_in else DRIVER_LAG)[d.mode]
        members = {h: members[h] for h in hosts}
        pair = lag_pair(kind, lag_mode, path=path, members=members, **ROCE_OPTIONS[lag_mode])
        devs = {}
        for lag in (pair.a, pair.b):
            h = lag.node.name
            RoceLag(lag, STAND_IN if decl[h].stand_in else decl[h].provider).create(defer=defer)
            devs[h] = find_aggregate(inventory(lag.node), lag.name)
            assert devs[h] == decl[h].name, (
                f"{h}: the aggregate on {lag.name} is {devs[h]}, the lab file declares "
                f"{decl[h].name} (renamed? applications open it by name)")
        return AggregatePair(pair, devs, decl, kind, lag_mode)
    return make


def _stock_tool(ag, tool, gid, iters, port, *, defer, extra=""):
    """A stock tool's server started on the pair's b host (by its run tag, ended
    after the test); -> the client's command line for the a host. ``gid``:
    {host: GID index of its LAG address}; ``extra``: options both sides take."""
    a, b = ag.lag.a.node, ag.lag.b.node
    ip = ag.lag.ip_b
    server, _ = tool_commands(tool, ag.devs[b.name], gid[b.name], ip, iters, port=port)
    _, client = tool_commands(tool, ag.devs[a.name], gid[a.name], ip, iters, port=port)
    tag = f"laghil-ib-{secrets.token_hex(4)}"
    defer(node_undo(b, "kill_tagged", tag=tag, workdir=b.workdir(verify=True)))
    b.run(f"LAGHIL_TAG={tag} {server}{extra} > {b.path(tag + '.srv')} 2>&1 &")
    return client + extra


@pytest.mark.ci
def test_the_aggregate_is_one_device_the_stock_tools_use_by_its_name(aggregate_pair, defer,
                                                                    measure, profile):
    """Item 1: ``ibv_devinfo -v -d <name>``: one device, one port, ACTIVE, the
    declared link layer, a RoCE v2 GID for the LAG's address; the members hidden
    where declared (no RDMA device on a member netdev); ibv_rc_pingpong (RC),
    ibv_ud_pingpong (UD), ib_send_lat and rping between the hosts, unmodified,
    with no flag but the device's name: every iteration completes."""
    ag = aggregate_pair()
    pair, devs, decl = ag.lag, ag.devs, ag.decl
    a, b = pair.a.node, pair.b.node
    for lag, ip in ((pair.a, pair.ip_a), (pair.b, pair.ip_b)):
        n, d = lag.node, decl[lag.node.name]
        info = parse_ibv_devinfo(n.run(f"ibv_devinfo -v -d {d.name}").stdout, node=n.name)
        problems = aggregate_problems(info, d)
        assert not problems, f"{n.name}: " + "; ".join(problems)
        v2 = [g.gid for g in info[d.name].ports[1].roce_v2_gids()]
        assert any(g.endswith(ip) for g in v2), \
            f"{n.name}: {d.name} has no RoCE v2 GID for {lag.name}'s {ip}: {v2}"
        on_members = {x.name: sorted(x.netdevs & set(lag.members))
                      for x in inventory(n).values() if x.netdevs & set(lag.members)}
        if d.members_hidden:
            assert not on_members, f"{n.name}: RDMA devices on the members: {on_members}"
    gid = {a.name: roce_v2_gid_index(a, devs[a.name], pair.ip_a),
           b.name: roce_v2_gid_index(b, devs[b.name], pair.ip_b)}
    for i, tool in enumerate(TOOLS):
        client = _stock_tool(ag, tool, gid, ITERS, 18600 + i, defer=defer)
        out = None
        for _attempt in range(5):
            r = a.run(f"sleep 1; {client}", timeout=90, check=False)
            if r.rc == 0:
                out = r.stdout + r.stderr
                break
        assert out is not None, f"{tool} -d {devs[a.name]} -> {pair.ip_b}: rc {r.rc}: " \
                                f"{(r.stdout + r.stderr)[-600:]}"
        got = parse_tool_output(out, tool)
        assert got["iters"] >= ITERS, f"{tool}: {got['iters']} of {ITERS} iterations: {out[-400:]}"
        if got["usec"] is not None:
            measure.record(Measurement(
                f"{tool} latency", got["usec"], "us",
                f"{tool} client's own figure, {ITERS} iterations over {devs[a.name]} ({ag.what})",
                resolution=0.01, profile=profile.label))
        print(f"{tool}: {got['iters']} iterations over {devs[a.name]}"
              + (f", {got['usec']:.1f} us" if got["usec"] is not None else ""))


@pytest.mark.failover
@pytest.mark.disruptive
@pytest.mark.parametrize("mode", ["active-active", "active-passive"])
def test_rc_qps_on_the_aggregate_survive_a_member_pull(aggregate_pair, lab_rt, lab, mode, measure,
                                                       profile, defer, reps, pytestconfig):
    """Item 2: a member's cable pulled under RC QPs on the aggregate (the active
    member where the aggregate is active-passive, else the loaded one): no error
    completion, every QP RTS, all delivered; T_gap within what the LAG's
    configuration allows and under the QPs' survival bound."""
    ag = aggregate_pair(mode)
    lag = ag.lag
    method = cable_pull_method(lag, pytestconfig, lab)
    active = lag.active if mode == "active-passive" else None
    trials = repeated_trials(
        pytestconfig, f"aggregate {mode}", reps,
        lambda: run_failover(lab_rt, lag.a, lag.b.node, lag.ip_b, defer=defer, method=method,
                             active=active, make_probe=rc_probe(lag, profile)))
    case = roce_case(ag.kind, ag.mode)
    figs, bound_ms = record_rc_failover(
        trials, measure, profile, case,
        f"{trials[-1].member}'s cable pulled ({method}) under {RC_QPS} QPs x {RC_RATE:g} msg/s "
        f"on {ag.devs[lag.a.node.name]} ({ag.what})")
    for i, t in enumerate(trials):
        print(f"rep {i}: pulled {t.member}, RDMA T_gap {t.outage.t_gap_max_ms} ms, carried "
              f"{t.carried}, active {t.active_before} -> {t.active_during} -> {t.active_after}")
        assert_rc_survived(t.res, f"rep {i}, {t.member}'s cable pulled")
        g = t.outage.t_gap_max_ms
        assert g is not None and g < bound_ms, (
            f"rep {i}: RDMA gap {g} ms not under the RC survival bound {bound_ms:.0f} ms")
    over = [f"{m.name} {m.value} ms > the {m.threshold:g} ms the configuration allows: bound "
            f"{m.basis}" for m in figs.judged if m.verdict != "pass"]
    assert not over, f"{case.key} ({profile.label}): " + "; ".join(over)


@pytest.mark.failover
@pytest.mark.disruptive
@pytest.mark.parametrize("mode", ["active-active", "active-passive"])
def test_ud_on_the_aggregate_loses_only_a_bounded_outage_at_a_member_pull(
        aggregate_pair, lab_rt, lab, mode, measure, profile, defer, reps, pytestconfig):
    """Item 2, UD: UD QPs on the aggregate across a member's cable pull: no
    error completion, every QP still RTS; a UD message lost in the outage is
    lost, so the loss is the outage (T_loss, T_gap, reversion) and is judged,
    as for the UDP probe, against what the LAG's configuration allows."""
    ag = aggregate_pair(mode)
    lag = ag.lag
    a, b = lag.a.node, lag.b.node
    dev_a, dev_b = ag.devs[a.name], ag.devs[b.name]
    gid_a, gid_b = roce_v2_gid_index(a, dev_a, lag.ip_a), roce_v2_gid_index(b, dev_b, lag.ip_b)

    def make_probe(duration_s):
        return UdProbe(a, b, lag.ip_b, device=dev_a, gid_index=gid_a, peer_device=dev_b,
                       peer_gid_index=gid_b, qps=UD_QPS, rate_pps=UD_RATE,
                       duration_s=duration_s)
    method = cable_pull_method(lag, pytestconfig, lab)
    active = lag.active if mode == "active-passive" else None
    trials = repeated_trials(
        pytestconfig, f"aggregate {mode} (UD)", reps,
        lambda: run_failover(lab_rt, lag.a, b, lag.ip_b, defer=defer, method=method,
                             active=active, make_probe=make_probe))
    case = roce_case(ag.kind, ag.mode)
    figs = failover_figures(trials, profile, case=case,
                            what=f"{trials[-1].member}'s cable pulled ({method}) under {UD_QPS} "
                                 f"UD QPs x {UD_RATE:g} msg/s on {dev_a} ({ag.what})")
    for m in figs.all:
        measure.record(m)
    for i, t in enumerate(trials):
        print(f"rep {i}: pulled {t.member}, UD T_gap {t.outage.t_gap_max_ms} ms, T_loss "
              f"{t.outage.t_loss_max_ms} ms, lost {[f['lost'] for f in t.res.flows]}, carried "
              f"{t.carried}")
        problems = t.res.problems()
        assert not problems, f"rep {i}, {t.member}'s cable pulled: UD broke: " + "; ".join(problems)
        assert all(f["rx_count"] > 0 for f in t.res.flows), f"rep {i}: a UD QP delivered nothing"
    over = [f"{m.name} {m.value} ms > the {m.threshold:g} ms the configuration allows: bound "
            f"{m.basis}" for m in figs.judged if m.verdict != "pass"]
    assert not over, f"{case.key} ({profile.label}): " + "; ".join(over)


@pytest.mark.disruptive
@pytest.mark.throughput
def test_active_active_spreads_qps_and_carries_more_than_one_member(aggregate_pair, lab_rt, lab,
                                                                   measure, profile, defer,
                                                                   pytestconfig):
    """Item 3: ib_write_bw with many QPs on the active-active aggregate: the
    QPs spread over both members (member counters) and the aggregate carries
    more than one member does (``roce/throughput.min_gain``)."""
    ag = aggregate_pair("active-active")
    method = cable_pull_method(ag.lag, pytestconfig, lab)
    a, b = ag.lag.a.node.name, ag.lag.b.node.name
    check_rdma_gain(lab_rt, ag.lag, ag.devs[a], ag.devs[b], method, measure, profile, defer)


@pytest.mark.failover
@pytest.mark.disruptive
def test_active_passive_keeps_every_qp_on_the_active_member_and_a_pull_moves_them_all(
        aggregate_pair, lab_rt, lab, measure, profile, defer, pytestconfig):
    """Item 4: under RC QPs on the active-passive aggregate, the active member
    sends all of it (>= 95% of the members' tx packets over 1 s); its cable
    pulled, all of it moves to the other member; the QPs survive."""
    ag = aggregate_pair("active-passive")
    lag = ag.lag
    method = cable_pull_method(lag, pytestconfig, lab)
    active = lag.active()
    probe = RdmaProbe(lag.a.node, lag.b.node, lag.ip_b, qps=4, rate_pps=RC_RATE, duration_s=4.0,
                      retry_cnt=7, timeout=profile.rc_ack_timeout)
    defer(probe.stop_undo())
    t0 = probe.start()
    time.sleep(max(0.0, t0 + 1.0 - time.time()))
    before, counts = tx_shares(lag.a.node, lag.a.members)
    assert_rc_survived(probe.wait(), "steady state, before any fault")
    measure.record(Measurement(f"share on the active member {active}", before[active], "",
                               f"tx packets of {active} / all members' over {WINDOW_S:g} s under "
                               f"4 RC QPs ({ag.what})", threshold=ONE_MEMBER_SHARE,
                               comparison=">="))
    assert before[active] >= ONE_MEMBER_SHARE, (
        f"active-passive: {active} (active) sent {before[active]:.2f} of the RDMA traffic: "
        f"per member {counts}")

    def during(member):
        return tx_shares(lag.a.node, lag.a.members)
    t = run_failover(lab_rt, lag.a, lag.b.node, lag.ip_b, defer=defer, method=method,
                     member=active, make_probe=rc_probe(lag, profile, 4), observe=during)
    shares, counts = t.observed
    other = next(m for m in lag.a.members if m != active)
    measure.record(Measurement(f"share on {other} with {active}'s cable out", shares[other], "",
                               f"tx packets over {WINDOW_S:g} s during the fault",
                               threshold=ONE_MEMBER_SHARE, comparison=">="))
    print(f"active {active}: before {before}; during {active}'s pull {shares} ({counts}); "
          f"RDMA T_gap {t.outage.t_gap_max_ms} ms")
    assert shares[other] >= ONE_MEMBER_SHARE, (
        f"{active}'s cable out: {other} sent {shares[other]:.2f} of the RDMA traffic, per "
        f"member {counts}: not every QP moved")
    assert_rc_survived(t.res, f"{active}'s cable pulled")


@pytest.mark.failover
def test_moving_the_lags_active_member_moves_the_rdma_traffic(aggregate_pair, lab, measure,
                                                              profile, defer):
    """Item 6: the aggregate follows the standard LAG under it: the LAG's active
    member changed by the operator (team: teamdctl runner.active_port; bond:
    active_slave) under RC QPs, at both ends of the cable pair, moves the RDMA
    traffic to it (>= 95% of the members' tx packets), and back; the QPs
    survive, the largest per-QP gap stays under their survival bound."""
    ag = aggregate_pair("active-passive")
    lag = ag.lag
    first = lag.active()
    other = next(m for m in lag.a.members if m != first)
    probe = RdmaProbe(lag.a.node, lag.b.node, lag.ip_b, qps=4, rate_pps=RC_RATE, duration_s=8.0,
                      retry_cnt=7, timeout=profile.rc_ack_timeout)
    defer(probe.stop_undo())
    t0 = probe.start()
    time.sleep(max(0.0, t0 + 1.0 - time.time()))
    seen = []
    for target in (other, first):
        # both ends of the back-to-back LAG (a peer's activebackup drops what
        # arrives on its inactive port; a switch between them would relearn)
        lag.a.set_active_member(target)
        far = lab.cable_of(lag.a.node.name, target).other_end(lag.a.node.name, target)
        lag.b.set_active_member(far.port)
        time.sleep(0.5)
        shares, counts = tx_shares(lag.a.node, lag.a.members)
        seen.append((target, lag.a.active_member(), shares, counts))
    res = probe.wait()
    gap = res.outage().t_gap_max_ms
    measure.record(Measurement("RDMA T_gap max over two active-member moves", gap, "ms",
                               f"largest per-QP gap over the run, 4 QPs x {RC_RATE:g} msg/s "
                               f"({ag.what})", resolution=1e3 / RC_RATE,
                               threshold=probe.survival_bound_s * 1e3, comparison="<"))
    for target, now, shares, counts in seen:
        print(f"active set to {target}: LAG says {now}; tx shares {shares} ({counts})")
        assert now == target, f"{lag.a.node.name}: {lag.a.name} active {now} after setting {target}"
        assert shares[target] >= ONE_MEMBER_SHARE, (
            f"active member set to {target}: it sent {shares[target]:.2f} of the RDMA traffic, "
            f"per member {counts}: the aggregate did not follow the LAG")
    assert_rc_survived(res, "the LAG's active member moved and back")
    assert gap is not None and gap < probe.survival_bound_s * 1e3, (
        f"RDMA gap {gap} ms at an active-member move, not under the survival bound "
        f"{probe.survival_bound_s * 1e3:.0f} ms")


@pytest.mark.failover
@pytest.mark.disruptive
@pytest.mark.requires("sriov_lag", count=2)
def test_a_vf_of_the_aggregate_has_one_port_and_its_ha(request, lab, lab_rt, node, measure,
                                                       profile, defer, reps):
    """Item 7: where the aggregates declare sriov (a provider whose VFs are
    bonded with the PFs: mlx5 VF LAG), a VF's RDMA device has one port and its
    RC QPs survive a member pull as the aggregate's do."""
    _, decl = _declared(request, lab)
    if not all(d.sriov for d in decl.values()):
        lacks(request, "rdma aggregate with sriov", lab,
              f"aggregates {[d.name for d in decl.values()]} do not declare sriov")
    vf_rdma_failover(request, lab, lab_rt, node, measure, profile, reps, defer=defer,
                     what="RC QPs between VFs of the aggregate (mlx5 VF LAG)")


def _numa_host(request, lab):
    hosts = [h for h, s in lab.hosts.items() if (s.numa_nodes or 1) >= 2 and s.rdma_aggregates
             and "numa" in s.capabilities]
    if not hosts:
        lacks(request, "numa", lab, "no host with numa_nodes >= 2, the numa capability and an "
              "rdma aggregate")
    return hosts[0]


def _numa_shares(request, ag, lab, defer):
    """Per NUMA node of the sender's members: a stock verbs client
    (ibv_rc_pingpong, 4 KiB messages) pinned to that node's CPUs (taskset, the
    pinning read back from /proc/self/status) and each member's share of what
    it sent. -> {node: (local members, share on them, per-member tx packets)}."""
    lag = ag.lag
    a, b = lag.a.node, lag.b.node
    host = a.name
    nodes = {m: int(a.run(numa_node_command(m)).stdout.strip()) for m in lag.a.members}
    for m, k in nodes.items():
        declared = lab.hosts[host].ports[m].numa_node
        assert declared is None or k == declared, (
            f"{host}: {m} reads NUMA node {k} in sysfs, the lab file places it on {declared}")
    if len(set(nodes.values()) - {-1}) < 2:
        lacks(request, "numa", lab, f"{host}: members on NUMA nodes {nodes} (sysfs): need them "
              "on two nodes")
    gid = {host: roce_v2_gid_index(a, ag.devs[host], lag.ip_a),
           b.name: roce_v2_gid_index(b, ag.devs[b.name], lag.ip_b)}
    out = {}
    for i, k in enumerate(sorted(set(nodes.values()))):
        cpus = a.run(f"cat /sys/devices/system/node/node{k}/cpulist").stdout.strip()
        client = _stock_tool(ag, "ibv_rc_pingpong", gid, NUMA_ITERS, 18700 + i,
                             extra=f" -s {NUMA_SIZE}", defer=defer)
        c0 = read_counters(a, lag.a.members)[1]
        inner = f"grep Cpus_allowed_list /proc/self/status; exec {client}"
        r = a.run(f"sleep 1; taskset -c {q(cpus)} sh -c {q(inner)}", timeout=120, check=False)
        c1 = read_counters(a, lag.a.members)[1]
        assert r.rc == 0, f"{host}: pinned to node {k} ({cpus}): rc {r.rc}: {r.stdout[-400:]}"
        allowed = r.stdout.splitlines()[0].split(":", 1)[1]
        assert cpulist(allowed) == cpulist(cpus), (
            f"{host}: the client ran on CPUs {allowed.strip()}, not node {k}'s {cpus}")
        d = {m: c1[m]["tx_packets"] - c0[m]["tx_packets"] for m in lag.a.members}
        local = [m for m, v in nodes.items() if v == k]
        total = sum(d.values())
        out[k] = (local, sum(d[m] for m in local) / total if total else 0.0, d)
    return out


@pytest.mark.requires("numa", count=1)
def test_numa_locality_of_a_pinned_verbs_process_is_measured(request, aggregate_pair, lab,
                                                            measure, defer):
    """Item 5, measured always: the members' NUMA nodes read from sysfs (and
    equal to the lab file's placement where it gives one); a stock verbs client
    pinned to each node in turn; the share of its traffic on the node-local
    member recorded (judged by the next test where the lab declares a policy)."""
    host = _numa_host(request, lab)
    ag = aggregate_pair(sender=host)
    for k, (local, share, d) in _numa_shares(request, ag, lab, defer).items():
        measure.record(Measurement(
            f"share on NUMA-local {','.join(local)} pinned to node {k}", share, "",
            f"tx packets of the member(s) on node {k} / all members', ibv_rc_pingpong -n "
            f"{NUMA_ITERS} -s {NUMA_SIZE} pinned with taskset to node {k}'s CPUs "
            f"({ag.what})", note=f"per member {d}"))
        print(f"node {k}: local {local}, share {share:.2f}, per member {d}")
        assert sum(d.values()) >= NUMA_ITERS, f"node {k}: members sent {d}: the client's " \
            "traffic did not cross the LAG"


@pytest.mark.requires("numa", count=1)
def test_numa_affinity_policy_keeps_a_pinned_process_on_its_local_member(
        request, aggregate_pair, lab, measure, profile, defer):
    """Item 5, judged: where the aggregate declares affinity: numa, the share of
    a pinned process's traffic on its NUMA-local member is at least the
    profile's ib_bond/numa.min_local_share, for every node."""
    host = _numa_host(request, lab)
    d = lab.hosts[host].rdma_aggregates[0]
    if d.affinity != "numa":
        lacks(request, "rdma aggregate with a NUMA affinity policy", lab,
              f"{host}: {d.name} declares affinity {d.affinity} (the stand-in, Soft-RoCE over "
              "a LAG, places nothing by NUMA: its figure is measured, not judged)")
    ag = aggregate_pair(sender=host)
    floor = profile.threshold("ib_bond/numa.min_local_share")
    bad = {}
    for k, (local, share, per) in _numa_shares(request, ag, lab, defer).items():
        measure.record(Measurement(f"share on NUMA-local {','.join(local)} pinned to node {k}",
                                   share, "", "tx packets, local member(s) / all", threshold=floor,
                                   comparison=">=", profile=profile.label))
        if share < floor:
            bad[k] = (local, round(share, 3), per)
    assert not bad, (f"{d.name}: a process pinned to a NUMA node sent under {floor:g} of its "
                     f"traffic on the node-local member: node -> (local, share, per member) {bad}")


@pytest.mark.disruptive
def test_an_ipoib_lag_is_active_backup_only(request, lab, node, defer):
    """Item 8: on a host with two IPoIB ports (link_layer infiniband), every
    bond mode but active-backup is refused before any command, quoting the
    bonding driver; the active-backup bond made over them is an InfiniBand
    netdev with a 20-octet address. Where there is none, skipped naming it."""
    ib = {h: [p for p, s in spec.ports.items() if s.link_layer == "infiniband"]
          for h, spec in lab.hosts.items()}
    host = next((h for h, ports in ib.items() if len(ports) >= 2), None)
    if host is None:
        lacks(request, "infiniband ports", lab, "no host with two ports of link_layer infiniband")
    n, members = node(host), ib[host][:2]
    for mode in ("balance-rr", "balance-xor", "802.3ad", "broadcast", "balance-tlb", "balance-alb"):
        with pytest.raises(BondError, match=MSG_IB_MODE):
            Bond(n, lab.device_names.bond, mode, members, miimon=100)
    bond = Bond(n, lab.device_names.bond, "active-backup", members, miimon=100)
    bond.create(defer=defer)
    d = json.loads(n.run(f"ip -j link show dev {bond.name}").stdout)[0]
    octets = len(d.get("address", "").split(":"))
    assert d.get("link_type") == "infiniband" and octets == 20, (
        f"{host}: IPoIB bond {bond.name}: link_type {d.get('link_type')}, address "
        f"{d.get('address')} ({octets} octets, want 20)")
