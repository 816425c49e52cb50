"""What the bond and team suites assert, shared by both: distribution against
the mode's oracle, and failover/failback figures against the profile. Each
function records its figures on ``measure`` and asserts with numbers."""

from laghil.lag_hash import POLICIES, telling_src_base
from laghil.measure.analysis import jain_index
from laghil.measure.distribution import measure_distribution, probe_flows
from laghil.measure.failover import run_failover
from laghil.measure.model import Measurement, summarize
from laghil.oracle import PER_DESTINATION, expected_tx_share, placement, survivors

from fixtures.lag import cable_pull_method

DIST_FLOWS, DIST_RATE, DIST_S = 8, 300, 3.0
FO_FLOWS, FO_RATE = 4, 1000
# the sender must reach this share of its target rate: the figures then resolve
# to 1/achieved (stated with them); below it the run is not a measurement
MIN_ACHIEVED = 0.8


def fo_rate(case, members):
    """Per-flow rate of a failover trial: a duplicating mode (broadcast) doubles
    what the receiver takes in, so it gets the rate divided by the member count
    (an emulated guest's receive path drops above ~5 kpps)."""
    return FO_RATE // len(members) if placement(case.mode, case.options) == "duplicate" else FO_RATE


def check_distribution(pair, case, measure, profile):
    a, b = pair.a, pair.b
    tol = profile.threshold("distribution/share_tolerance")
    how = placement(case.mode, case.options)
    src_base = None
    if how == "hash" and case.hash_policy in POLICIES:
        src_base = telling_src_base(case.hash_policy, a.members, DIST_FLOWS, 47000, pair.packet())
    d = measure_distribution(a, b.node, pair.ip_b, flows=DIST_FLOWS, rate_pps=DIST_RATE,
                             duration_s=DIST_S, src_base_port=src_base)
    shares = d.shares()
    active = pair.active() if how == "one_active" else None
    expected = None
    if how != "hash" or case.hash_policy:
        expected = expected_tx_share(case.mode, case.options, a.members, d.flows, pair.packet(),
                                     active=active, hash_policy=case.hash_policy)
    for m in a.members:
        measure.record(Measurement(
            f"tx share {m}", shares[m], "", f"{m} tx_packets delta / probe packets sent "
            f"({DIST_FLOWS} flows x {DIST_RATE} pkt/s, {DIST_S:g} s, {d.sent} packets)",
            1.0 / max(d.sent, 1), note=f"oracle {expected[m]:.3f}" if expected else f"oracle: {how}",
            profile=profile.label))
    jain = jain_index([d.members[m] for m in a.members])
    measure.record(Measurement("distribution (Jain)", jain, "", "Jain's index of member tx packets",
                               None))
    seen = {m: round(v, 3) for m, v in shares.items()}
    print(f"{case.id()}: shares {seen}, expected {expected or how}, Jain {jain:.3f}, "
          f"sent {d.sent}, per member {d.members}")
    lost = {f["flow"]: (f["lost"], f["loss_bursts"][:3]) for f in d.res.flows if f["lost"]}
    assert not lost, (f"steady state (no fault) lost packets: flow -> (lost, [(first seq, count)]) "
                      f"{lost}; sent per flow {d.per_flow_packets()}; {d.res.notes}")
    if expected is not None:
        for m in a.members:
            assert abs(shares[m] - expected[m]) <= tol, (
                f"{m} carried {shares[m]:.3f} of the probe packets, the {how} oracle "
                f"({case.hash_policy or case.mode}) says {expected[m]:.3f} (+-{tol}); all {seen}")
    elif how == "per_destination":
        top = max(shares.values())
        assert top >= 1 - tol and sum(shares.values()) <= 1 + tol, (
            f"one destination must stay on one member ({case.mode}, dynamic tlb): shares {seen}")
    else:   # a hash we do not model (teamd's BPF hash): flows must not be split
        for m, s in shares.items():
            k = round(s * DIST_FLOWS)
            assert abs(s - k / DIST_FLOWS) <= tol, (
                f"{m} carried {s:.3f} of the packets, not a whole number of the "
                f"{DIST_FLOWS} flows (1/{DIST_FLOWS} each): a hash must keep a flow on one "
                f"member; all {seen}")
        assert abs(sum(shares.values()) - 1) <= tol, f"shares {seen} do not add up to 1"
    return d


def run_trials(lab_rt, pair, case, defer, reps, config, member=None):
    """``reps`` failover trials; each pulls ``member``'s cable, or by default the
    loaded member's (the active one in active-backup: measured, not assumed)."""
    method = cable_pull_method(pair, config, lab_rt.lab)
    how = placement(case.mode, case.options)
    has_active = how in ("one_active", "per_destination") or case.mode in PER_DESTINATION
    active = pair.active if has_active else None
    if member is None and active is None:
        member = loaded_member(pair, case)
    # dynamic tlb/alb balancing sends by load, not necessarily on the active
    # (receiving) member: pull the member that carried the probe
    return [run_failover(lab_rt, pair.a, pair.b.node, pair.ip_b, method, defer, member=member,
                         flows=FO_FLOWS, rate_pps=fo_rate(case, pair.members), active=active,
                         pull_loaded=how == "per_destination")
            for _ in range(reps)]


def loaded_member(pair, case):
    """The member the oracle loads most with the failover probe's flows; None
    when there is no oracle (the trial then picks it from the counters)."""
    how = placement(case.mode, case.options)
    if how == "hash" and case.hash_policy in POLICIES:
        share = expected_tx_share(case.mode, case.options, pair.members, probe_flows(FO_FLOWS),
                                  pair.packet(), hash_policy=case.hash_policy)
        return max(pair.members, key=lambda m: share[m])
    if how in ("round_robin", "duplicate", "random"):
        return pair.members[0]
    return None


def record_failover(trials, case, measure, profile):
    """Figures of the trials (worst repetition judged), and the last timeline."""
    key = case.key
    t0 = trials[-1]
    rate = t0.res.rate_pps
    res_ms = max(1e3 / (t.res.achieved_known_pps or rate) for t in trials)
    gaps = [t.outage["t_gap_max_ms"] for t in trials]
    losses = [t.outage["t_loss_max_ms"] for t in trials]
    revs = [t.reversion["reversion_max_ms"] for t in trials]
    where = (f"{FO_FLOWS} flows x {rate:g} pkt/s, {t0.member}'s cable ({t0.method}), "
             f"{len(trials)} repetition(s); {summarize_text(gaps)}")
    figs = [
        Measurement("T_gap max", max((g for g in gaps if g is not None), default=None), "ms",
                    f"gap outage per flow, max over flows, worst repetition; {where}", res_ms,
                    gaps, profile.threshold(f"failover/{key}.t_gap_ms"), "<=", profile.label),
        Measurement("T_loss max", max(losses), "ms",
                    "loss-derived outage (Tx-Rx)/R per flow over the trial, max over flows, "
                    "worst repetition", res_ms, losses,
                    profile.threshold(f"failover/{key}.t_loss_ms"), "<=", profile.label),
        Measurement("reversion max", max(revs), "ms",
                    "fail-back: first arrival after restore if down, else the largest gap "
                    "within 3 s after it, max over flows, worst repetition", res_ms, revs,
                    profile.threshold(f"failback/{key}.reversion_ms"), "<=", profile.label),
    ]
    for key_, what in (("out_of_order", "out-of-order"), ("duplicates", "duplicates")):
        vals = [t.outage[key_] for t in trials]
        figs.append(Measurement(
            what, max(vals), "packets", "sum over flows, worst repetition (measurement.md "
            "item 3: expected in broadcast and during MAC moves)", 1, vals))
    lats = [t.detection for t in trials if t.detection is not None]
    if lats:
        figs.append(Measurement(
            "detection latency", max(x.latency_ms for x in lats), "ms",
            "kernel 'link status definitely down' (node clock, /dev/kmsg marker) minus the "
            "fault instant (controller clock), offset from SSH round trips",
            max(x.uncertainty_ms for x in lats), [x.latency_ms for x in lats]))
    for m in figs:
        measure.record(m)
    measure.timeline(t0.res.timeline(
        f"{case.kind} {case.id()}: {t0.member}'s cable pulled and restored (last of {len(trials)})",
        t0.events))
    for i, t in enumerate(trials):
        print(f"rep {i}: T_gap {t.outage['t_gap_max_ms']} ms, T_loss {t.outage['t_loss_max_ms']:.1f} ms, "
              f"reversion {t.reversion['reversion_max_ms']:.1f} ms, lossless flows "
              f"{t.outage['lossless_flows']}, detection "
              f"{t.detection.latency_ms if t.detection else None}, active "
              f"{t.active_before} -> {t.active_during} -> {t.active_after}")
    return figs


def summarize_text(values):
    st = summarize(values)
    if not st["n"]:
        return "no values"
    return (f"min {st['min']:.1f} / median {st['median']:.1f} / p95 {st['p95']:.1f} / "
            f"max {st['max']:.1f} ms")


def assert_failover(trials, pair, case, figs):
    gap, loss, rev = figs[0], figs[1], figs[2]
    how = placement(case.mode, case.options)
    for i, t in enumerate(trials):
        o = t.outage
        rate = t.res.rate_pps
        assert t.res.achieved_pps >= MIN_ACHIEVED * rate, (
            f"rep {i}: probe reached {t.res.achieved_pps:.0f} pkt/s per flow, under "
            f"{MIN_ACHIEVED:.0%} of {rate:g}: too coarse to be a measurement")
        assert not o["no_arrival_flows"], (
            f"rep {i}: flows {o['no_arrival_flows']} received nothing: the LAG did not carry them")
        keep = survivors(case.mode, case.options, pair.members, t.member,
                         probe_flows(FO_FLOWS), pair.packet(), case.hash_policy,
                         active=t.active_before)
        if keep is not None:
            lost = {k: t.lost(k) for k in keep if t.lost(k)}
            assert not lost, (
                f"rep {i}: flows {keep} are not on {t.member} ({how}: {case.hash_policy or case.mode})"
                f" and must lose nothing when its cable is pulled; lost {lost} packets")
        assert t.carried.get(t.member, 0) >= 0.2 * FO_FLOWS * t.res.rate_pps, (
            f"rep {i}: {t.member} transmitted only {t.carried} packets over the trial "
            f"around the pull of {t.cable}: the fault missed the traffic's path")
        if how == "one_active":
            others = [m for m in pair.members if m != t.member]
            assert t.active_before == t.member and t.active_during in others, (
                f"rep {i}: active member {t.active_before} -> {t.active_during} while "
                f"{t.member}'s cable was out: no failover to {others}")
    assert gap.verdict == "pass", (
        f"T_gap max {gap.value} ms > {gap.threshold:g} ms ({gap.profile}, {case.key}); "
        f"per rep {gap.repetitions}")
    assert loss.verdict == "pass", (
        f"T_loss max {loss.value:.1f} ms > {loss.threshold:g} ms ({loss.profile}); "
        f"per rep {loss.repetitions}")
    assert rev.verdict == "pass", (
        f"reversion max {rev.value:.1f} ms > {rev.threshold:g} ms ({rev.profile}); "
        f"per rep {rev.repetitions}")
