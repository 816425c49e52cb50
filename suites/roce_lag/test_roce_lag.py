"""RoCE LAG: one RDMA device with one port over a bond of two NICs; RC
connections over it must survive a member failure and keep working after
fail-back (mlx5 ``mlx5_bond_0`` on real racks, rxe on the bond in the virtual
rack).

The RDMA probe (``laghil.measure.rdma_probe``) runs RC QPs connected with
rdma_cm, SEND_WITH_IMM messages with sequence numbers at a fixed rate per QP;
the receiver timestamps completions. An RC QP does not lose messages: HA holds
when there is no error completion on either side, every QP is still RTS and
every message arrived; the outage is the largest per-QP gap, judged against
the profile and against the QP's own survival bound
(retry_cnt + 1) x 4.096 us x 2^timeout.
"""

import time

import pytest
from laghil.journal import node_undo
from pytest_laghil import (
    cable_pull_method,
    expect_known_defect,
    lacks,
    ready_or_fail,
)
from pytest_laghil.lag_checks import repeated_trials
from pytest_laghil.roce import (
    RC_QPS,
    RC_RATE,
    RC_RETRY_CNT,
    assert_rc_survived,
    check_rdma_gain,
    rc_probe,
    record_rc_failover,
)

from laghil.cases import ROCE_OPTIONS as MODES
from laghil.cases import roce_case
from laghil.drivers.lag import ONE_ACTIVE
from laghil.drivers.rdma import provider
from laghil.faults import fault
from laghil.faults.blackhole import RoceBlackhole
from laghil.measure.failover import run_failover
from laghil.measure.model import Measurement
from laghil.measure.rdma_probe import RdmaProbe, lag_port_remap
from laghil.wait import wait_until

pytestmark = [pytest.mark.roce_lag, pytest.mark.ci, pytest.mark.requires("roce_lag", count=2)]

QPS, RATE = RC_QPS, RC_RATE
RETRY_CNT = RC_RETRY_CNT


def _known_defect(request, pair, kind, mode):
    """(the provider's known defect, the sender node) when one is expected
    (and only it: any other failure still fails; under --certify it is a
    failure like any other), else None."""
    defect = provider(pair.provider).known_defect(kind, mode)
    if defect is None or not expect_known_defect(request, defect.reason):
        return None
    return defect, pair.lag.a.node


def _probe(pair, profile, qps=QPS):
    return rc_probe(pair.lag, profile, qps)


def _assert_survived(res, what, known_defect=None):
    """``known_defect``: (the defect, the sender node) when one is expected."""
    if known_defect is None:
        return assert_rc_survived(res, what, None, None)
    defect, sender = known_defect
    assert_rc_survived(res, what, defect.reason, lambda r: defect.evidence(r, sender))


def _record(trials, measure, profile, case, what):
    return record_rc_failover(trials, measure, profile, case, what)


def _gid_ips(roce):
    """(problems, the RoCE v2 addresses of the device's one port)."""
    problems, devs = roce.problems()
    return problems, next(iter(devs[roce.device].ports.values())).roce_v2_ips()


def test_one_rdma_device_on_the_bond_with_gids_following_its_addresses(roce_pair, lab, defer):
    pair = roce_pair("active-backup", **MODES["active-backup"])
    for r in (pair.a, pair.b):
        problems, devs = r.problems()
        where = f"{r.node.name} ({r.provider})"
        assert not problems, f"{where}: " + "; ".join(problems)
        # devices the lab declares on the members (mlx5_0/mlx5_1) give way to the bond's
        declared = [d.name for d in lab.node(r.node.name).rdma
                    if set(d.netdevs) & set(r.lag.members)]
        still = sorted(set(declared) & set(devs))
        assert not still, f"{where}: per-member RDMA devices {still} still present under RoCE LAG"
        made = provider(r.provider)
        assert made.aggregate_re(r.lag.name).fullmatch(r.device), \
            f"{where}: RoCE LAG device {r.device}, want one like {made.example}"
    # RoCE v2 GIDs follow the bond's addresses: one added appears, removed goes
    a = pair.a
    extra = "192.168.209.1"
    defer(node_undo(a.node, "addr_del", name=a.lag.name, addr=f"{extra}/24"))
    a.node.run(f"ip addr add {extra}/24 dev {a.lag.name}")

    def gid_present():
        problems, ips = _gid_ips(a)
        return None if extra in ips and not problems else (problems or sorted(ips))
    added_s = wait_until(gid_present, timeout=10, interval=0.5,
                         what=f"{a.node.name}: a RoCE v2 GID for {extra} on {a.device} after "
                              f"adding it to {a.lag.name}")
    a.node.run(f"ip addr del {extra}/24 dev {a.lag.name}")

    def gid_gone():
        ips = _gid_ips(a)[1]
        return sorted(ips) if extra in ips else None
    gone_s = wait_until(gid_gone, timeout=10, interval=0.5,
                        what=f"{a.node.name}: the GID for {extra} gone from {a.device} after "
                             "its removal")
    print(f"{a.device} on {a.lag.name}: GID for {extra} present {added_s:.1f} s after "
          f"the address was added, gone {gone_s:.1f} s after removal (poll 0.5 s)")


@pytest.mark.failover
@pytest.mark.disruptive
@pytest.mark.parametrize("kind,mode", [
    ("bond", "active-backup"), ("bond", "802.3ad"), ("team", "activebackup"),
    # the other RoCE-LAG-eligible modes (mlx5: active-backup, balance-xor, 802.3ad,
    # over a bond or a team) with --full-matrix
    pytest.param("bond", "balance-xor", marks=pytest.mark.full_matrix),
    pytest.param("team", "lacp", marks=pytest.mark.full_matrix),
])
def test_rc_traffic_survives_member_pull(roce_pair, lab_rt, lab, kind, mode, measure, profile,
                                         defer, reps, pytestconfig, request):
    """Team's activebackup runner moves the active port without the bonding
    failover event: on rxe it shows the HA that bonding's active-backup loses.
    The hosts meet back to back where the lab has it, else through a switch;
    the cables are pulled the lab's preferred way."""
    pair = roce_pair(mode, kind=kind, **MODES[mode])
    _rc_failover(pair, cable_pull_method(pair.lag, pytestconfig, lab), lab_rt, kind, mode,
                 measure, profile, defer, reps, request)


@pytest.mark.failover
@pytest.mark.disruptive
@pytest.mark.parametrize("kind,mode", [
    ("bond", "802.3ad"),
    pytest.param("bond", "active-backup", marks=pytest.mark.full_matrix),
    pytest.param("team", "activebackup", marks=pytest.mark.full_matrix),
])
def test_rc_traffic_survives_a_switch_port_shutdown(roce_pair, lab_rt, lab, kind, mode,
                                                    measure, profile, defer, reps, request):
    """Through a switch, the member's switch port shut through the switch's
    driver (the fault a top-of-rack switch gives: the host sees its carrier go)."""
    pair = roce_pair(mode, kind=kind, via="switch", **MODES[mode])
    cables = pair.lag.cables
    if not all(c.has_fault("switch_shutdown") for c in cables):
        lacks(request, "switch_shutdown", lab, f"cables {[c.name for c in cables]} must all "
              "allow switch_shutdown")
    _rc_failover(pair, "switch_shutdown", lab_rt, kind, mode, measure, profile, defer, reps,
                 request)


def _rc_failover(pair, method, lab_rt, kind, mode, measure, profile, defer, reps, request):
    """``reps`` pulls of a member's cable by ``method`` under RC QPs: the QPs
    survive, the pulled member carried the traffic, the active member moved,
    the gap under the QPs' survival bound and within the configuration's."""
    known = _known_defect(request, pair, kind, mode)
    lag = pair.lag
    active = lag.active if mode in ONE_ACTIVE else None
    trials = repeated_trials(
        request.config, f"RoCE LAG {kind} {mode}", reps,
        lambda: run_failover(lab_rt, lag.a, lag.b.node, lag.ip_b, defer=defer, method=method,
                             active=active, make_probe=_probe(pair, profile)),
        stop=lambda t: bool(t.res.problems()))   # a lost connection: the verdict, no more pulls
    t = trials[-1]
    case = roce_case(kind, mode, via=lag.via)
    figs, bound_ms = _record(trials, measure, profile, case,
                            f"{t.member}'s cable pulled ({method}) under {QPS} QPs x {RATE:g} msg/s")
    measure.timeline(t.res.timeline(
        f"RoCE LAG {kind} {mode}: RC QPs while {t.member}'s cable is pulled and restored",
        t.events))
    for i, t in enumerate(trials):
        print(f"rep {i}: pulled {t.member}, RDMA T_gap {t.outage.t_gap_max_ms} ms, "
              f"carried {t.carried}, QP states {t.res.states()}, active "
              f"{t.active_before} -> {t.active_during} -> {t.active_after}")
        _assert_survived(t.res, f"rep {i}, {t.member}'s cable pulled", known)
        assert t.carried.get(t.member, 0) >= 0.2 * RATE, (
            f"rep {i}: {t.member} sent only {t.carried} packets over the trial: the pull "
            "missed the RDMA traffic's path")
        if active is not None:
            assert t.active_during not in (None, t.member), (
                f"rep {i}: active member {t.active_before} -> {t.active_during} while "
                f"{t.member}'s cable was out")
        g = t.outage.t_gap_max_ms
        assert g is not None and g < bound_ms, (
            f"rep {i}: RDMA gap {g} ms not under the RC survival bound {bound_ms:.0f} ms")
    over = [f"{m.name} {m.value} ms > the {m.threshold:g} ms the configuration allows: bound "
            f"{m.basis}" for m in figs.judged if m.verdict != "pass"]
    assert not over, (f"{case.key} ({profile.label}): " + "; ".join(over)
                      + f"; per rep {figs.gap.repetitions}")


@pytest.mark.failover
@pytest.mark.disruptive
@pytest.mark.parametrize("mode", ["active-backup", "802.3ad",
                                  pytest.param("balance-xor", marks=pytest.mark.full_matrix)])
def test_rc_connection_made_before_fault_works_after_failback(roce_pair, lab_rt, lab, mode,
                                                              measure, profile, defer,
                                                              pytestconfig, request):
    """A member carrying the QPs is pulled and restored; the traffic moves back
    to it (active-backup: the primary is reselected; 802.3ad: the member
    rejoins the aggregator and the hash places flows on it again) under the
    same QPs, which must keep delivering."""
    opts = dict(MODES[mode], **({"primary": 0} if mode == "active-backup" else {}))
    pair = roce_pair(mode, **opts)
    known = _known_defect(request, pair, "bond", mode)
    method = cable_pull_method(pair.lag, pytestconfig, lab)
    lag = pair.lag
    after_s = 5.0
    if mode == "active-backup":
        member, active = lag.a.members[0], lag.active
    else:
        member, active = None, None          # the loaded member, from the counters
    t = run_failover(lab_rt, lag.a, lag.b.node, lag.ip_b, defer=defer, method=method,
                     member=member, active=active, make_probe=_probe(pair, profile), after_s=after_s)
    rev = t.reversion.reversion_max_ms
    fig = measure.record(Measurement(
        "RDMA fail-back gap", rev, "ms",
        "per QP: largest gap within the tail after the restore (first arrival if none), max "
        f"over {QPS} QPs", resolution=1e3 / RATE, threshold=profile.threshold("roce/failback.t_gap_ms"),
        comparison="<=", profile=profile.label))
    measure.timeline(t.res.timeline(
        f"RoCE LAG {mode}: {t.member}'s cable pulled and restored, fail-back", t.events))
    tail = [round(f["last"] - t.restore_t, 2) if f["last"] else None for f in t.res.flows]
    print(f"pulled {t.member}; active {t.active_before} -> {t.active_during} -> {t.active_after}; "
          f"fail-back gap {rev:.1f} ms; last arrivals {tail} s after the restore; carried "
          f"{t.carried}")
    if mode == "active-backup":
        assert t.active_during != t.member and t.active_after == t.member, (
            f"active {t.active_before} -> {t.active_during} -> {t.active_after}: the bond did "
            f"not fail over and back to the primary {t.member}")
    _assert_survived(t.res, "after fail-back", known)
    assert None not in tail and min(tail) >= after_s / 2, (
        f"QPs stopped delivering {tail} s after the restore (want traffic >= {after_s / 2:g} s "
        f"into the {after_s:g} s after it)")
    assert fig.verdict == "pass", f"fail-back gap {rev:.1f} ms > {fig.threshold:g} ms ({fig.profile})"


@pytest.mark.failover
@pytest.mark.disruptive
def test_qp_created_while_member_down_works_and_survives_restore(roce_pair, lab_rt, lab,
                                                                 measure, profile, defer,
                                                                 pytestconfig):
    """802.3ad: one member's cable out, QPs connected over the survivor; the
    cable comes back (the member rejoins the aggregator, flows may rehash onto
    it) under traffic; nothing may break."""
    pair = roce_pair("802.3ad", **MODES["802.3ad"])
    method = cable_pull_method(pair.lag, pytestconfig, lab)
    lag = pair.lag
    down = lag.a.members[0]
    cable = lab_rt.lab.cable_of(lag.a.node.name, down)
    qps = 4
    with fault(lab_rt, cable.name, defer=defer, kind=method, at=lag.a.node.name, timeout=5,
               revert_timeout=10) as f:
        probe = RdmaProbe(lag.a.node, lag.b.node, lag.ip_b, qps=qps, rate_pps=RATE,
                          duration_s=8.0, retry_cnt=RETRY_CNT, timeout=profile.rc_ack_timeout)
        defer(probe.stop_undo())
        t_start = probe.start()
        time.sleep(max(0.0, t_start + 3.0 - time.time()))
    t_restore = f.t_revert
    res = probe.wait()
    ready_or_fail(lag.a)
    rows = [(f["flow"], f["tx_count"], f["rx_count"], f["tx_qp"]["state"]) for f in res.flows]
    print(f"{down}'s cable out while {qps} QPs connected, restored {t_restore - t_start:.1f} s "
          f"into the traffic; per QP (flow, sent, delivered, state): {rows}")
    measure.timeline(res.timeline(f"RoCE LAG 802.3ad: QPs made while {down} was down, "
                                  "cable restored under traffic"))
    measure.record(Measurement("RDMA T_gap max", res.outage().t_gap_max_ms, "ms",
                               f"largest per-QP gap over the run, {qps} QPs", resolution=1e3 / RATE))
    _assert_survived(res, f"QPs made while {down} was down")


@pytest.mark.disruptive
@pytest.mark.throughput
def test_rdma_aggregate_throughput_over_lag_against_one_member(roce_pair, lab_rt, lab, measure,
                                                               profile, defer, pytestconfig):
    """802.3ad layer3+4: perftest ib_write_bw with N QPs over the LAG, then
    with one member's cable out (one member), members shaped to a known
    rate so that the links, not the hosts' CPUs, are the bottleneck. The
    LAG must carry more than one member (gain from perftest and from the
    member counters) and spread the QPs over both members."""
    pair = roce_pair("802.3ad", **MODES["802.3ad"])
    method = cable_pull_method(pair.lag, pytestconfig, lab)
    check_rdma_gain(lab_rt, pair.lag, pair.a.device, pair.b.device, method, measure, profile,
                    defer)


@pytest.mark.failover
@pytest.mark.disruptive
def test_probe_reports_lost_connection_when_outage_exceeds_survival_bound(roce_pair, measure,
                                                                          defer):
    """Negative control: the receiver drops all RoCE v2 packets (UDP 4791) for
    far longer than a short survival bound; the probe must report what an
    application would see: IBV_WC_RETRY_EXC_ERR on the requester and its QPs
    in ERR. (A blackhole, not both cables: with no member left, rxe's
    requester spins in the kernel, a soft lockup of the guest.)"""
    pair = roce_pair("802.3ad", **MODES["802.3ad"])
    lag = pair.lag
    rx = lag.b.node
    retry_cnt, timeout, hole_s, run_s = 1, 12, 1.0, 5.0
    # ready before any traffic: only the filter's add is timed
    hole = RoceBlackhole(rx, lag.b.name).prepare(defer=defer)
    probe = RdmaProbe(lag.a.node, rx, lag.ip_b, qps=QPS, rate_pps=RATE, duration_s=run_s,
                      retry_cnt=retry_cnt, timeout=timeout)
    bound_ms = probe.survival_bound_s * 1e3
    defer(probe.stop_undo())
    t0 = probe.start()
    time.sleep(max(0.0, t0 + 1.0 - time.time()))
    t_on = hole.on()
    time.sleep(hole_s)
    hole.off()
    late = t_on - t0
    assert late + hole_s <= run_s, (
        f"the blackhole was in place only {late:.1f} s after the traffic began, past its "
        f"{run_s:g} s: not a valid trial")
    res = probe.wait()
    errs = [e for e in res.errors() if e["side"] == "tx"]
    measure.record(Measurement("RC survival bound", bound_ms, "ms",
                               f"(retry_cnt + 1) x 4.096 us x 2^timeout, retry_cnt={retry_cnt}, "
                               f"timeout={timeout}; blackhole {hole_s * 1e3:.0f} ms"))
    print(f"blackhole {hole_s:g} s against a {bound_ms:.1f} ms survival bound: states "
          f"{res.states()}, errors {[(e['flow'], e['name'], e['count']) for e in errs]}")
    retry = {e["flow"] for e in errs if e["name"] == "RETRY_EXC_ERR"}
    assert retry == set(range(QPS)), (
        f"a {hole_s * 1e3:.0f} ms outage against a {bound_ms:.1f} ms survival bound must end "
        f"every QP with IBV_WC_RETRY_EXC_ERR; QPs with it: {sorted(retry)}, errors {errs}")
    assert res.states()["tx"] == ["ERR"] * QPS, f"requester QP states {res.states()['tx']}"
    assert res.problems(), "the probe called a lost connection healthy"


@pytest.mark.failover
@pytest.mark.disruptive
@pytest.mark.requires("mlx5", count=2)
def test_mlx5_qp_lag_port_moves_to_the_survivor(roce_pair, lab_rt, lab, measure, profile, defer,
                                               pytestconfig):
    """mlx5 RoCE LAG (queue affinity): each QP has a LAG port
    (mlx5dv_query_qp_lag_port, sampled every 50 ms by the probe); the QPs on
    the pulled member's port must be moved to the survivor within 1 s and stay
    there while it is out, and the connection survives."""
    qps = 8
    pair = roce_pair("802.3ad", **MODES["802.3ad"])
    method = cable_pull_method(pair.lag, pytestconfig, lab)
    lag = pair.lag
    host = lab.node(lag.a.node.name)
    # device port numbers follow the PCI functions of the members (PF0 -> port 1)
    order = sorted(lag.a.members, key=lambda m: (host.ports[m].pci or "", m))
    member, failed_port = order[0], 1
    sampled = provider(pair.provider).lag_port_sampling     # mlx5dv_query_qp_lag_port

    def make(duration_s):
        return RdmaProbe(lag.a.node, lag.b.node, lag.ip_b, qps=qps, rate_pps=RATE,
                         duration_s=duration_s, retry_cnt=RETRY_CNT, timeout=profile.rc_ack_timeout,
                         lag_port_every=0.05 if sampled else 0.0)
    t = run_failover(lab_rt, lag.a, lag.b.node, lag.ip_b, defer=defer, method=method,
                     member=member, make_probe=make)
    if t.res.lag_port_error or not t.res.lag_ports:
        lacks(pytestconfig, "mlx5 per-QP LAG port", lab,
              f"mlx5dv_query_qp_lag_port on {pair.a.device}: {t.res.lag_port_error or 'no sample'}"
              " (hash port-selection mode has no per-QP port)")
    m = lag_port_remap(t.res.lag_ports, failed_port, t.fault_t + t.to_sender_s,
                       t.restore_t + t.to_sender_s)
    measure.record(Measurement(
        "QP LAG port remap", m.remap_ms, "ms",
        f"first mlx5dv_query_qp_lag_port sample with no QP on port {failed_port} minus the fault "
        f"instant ({member}'s cable), {qps} QPs (clock offset from SSH round trips)",
        resolution=m.resolution_ms, threshold=1000.0, comparison="<="))
    print(f"ports before {m.before}, remap {m.remap_ms} ms, stuck {m.stuck}")
    assert m.on_failed_before, (
        f"no QP used port {failed_port} ({member}) before the fault: {m.before}; "
        "queue affinity should spread QPs over both ports")
    assert m.remap_ms is not None and m.remap_ms <= 1000.0, (
        f"QPs {m.on_failed_before} still on port {failed_port} {m.remap_ms} ms after "
        f"{member}'s cable was pulled")
    assert not m.stuck, f"QPs back on the failed port {failed_port} while it was out: {m.stuck}"
    _assert_survived(t.res, f"{member}'s cable pulled")
