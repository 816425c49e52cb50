"""Analysis of probe results on synthetic sequences with known answers."""

import math

import pytest

from laghil.kevents import place_events
from laghil.measure import analysis as an
from laghil.measure.model import Series

T0 = 1_700_000_000.0


def stream(n, rate=1000.0, missing=(), order=None, extra=()):
    """Arrivals of seqs 0..n-1 sent at ``rate`` (arrival = send time), minus the
    ``missing`` ones; ``order`` overrides the arrival order of seqs; ``extra``
    adds (seq, t) arrivals (duplicates)."""
    miss = set(missing)
    pk = [(s, T0 + s / rate) for s in range(n) if s not in miss]
    if order:
        seqs = {s: t for s, t in pk}
        pk = [(s, t) for s, t in zip(order, sorted(seqs.values()))]
    return sorted(pk + list(extra), key=lambda p: p[1])


def flow(n=2000, rate=1000.0, missing=(), flow_id=0, **kw):
    return an.flow_from_packets(stream(n, rate, missing, **kw), rate, tx_count=n, flow=flow_id)


def test_single_outage_gap_equals_loss():
    f = flow(missing=range(1000, 1050))
    assert f["tx_count"] == 2000 and f["rx_count"] == 1950 and f["lost"] == 50
    assert f["loss_bursts"] == [[1000, 50]] and f["loss_burst_count"] == 1
    top = f["gaps"][0]
    assert (top["seq_before"], top["seq_after"]) == (999, 1050)
    o = an.flow_outage(f)
    assert o.t_gap_ms == pytest.approx(50.0, abs=1e-3)
    assert o.t_loss_ms == pytest.approx(50.0)
    assert o.resolution_ms == pytest.approx(1.0)
    assert o.loss_bursts == 1 and o.out_of_order == 0 and o.duplicates == 0


def test_two_bursts_gap_below_loss():
    f = flow(missing=list(range(500, 520)) + list(range(1500, 1530)))
    o = an.flow_outage(f)
    assert o.t_gap_ms == pytest.approx(30.0, abs=1e-3)
    assert o.t_loss_ms == pytest.approx(50.0)
    assert o.t_gap_ms < o.t_loss_ms
    assert o.loss_bursts == 2 and o.largest_burst == 30
    assert f["loss_bursts"] == [[500, 20], [1500, 30]]


def test_loss_at_the_tail_shows_only_in_t_loss():
    f = flow(missing=range(1900, 2000))
    o = an.flow_outage(f)
    assert o.t_loss_ms == pytest.approx(100.0)
    assert o.t_gap_ms == pytest.approx(0.0, abs=1e-3)


def test_reordering_and_duplicates_counted():
    order = list(range(2000))
    order[100], order[101] = 101, 100          # 101 overtakes 100
    order[300], order[303] = 303, 300          # 303 overtakes 301, 302, 300
    dups = [(200, T0 + 0.2005), (700, T0 + 0.7005), (700, T0 + 0.7006)]
    f = an.flow_from_packets(stream(2000, order=order, extra=dups), 1000.0, tx_count=2000)
    o = an.flow_outage(f)
    assert o.out_of_order == 4 and o.duplicates == 3
    assert o.lost == 0 and o.t_loss_ms == 0.0
    assert f["rx_packets"] == 2003 and f["rx_count"] == 2000


def test_window_restricts_gap_to_the_fault():
    f = flow(missing=list(range(500, 520)) + list(range(1500, 1550)))
    assert an.flow_outage(f).t_gap_ms == pytest.approx(50.0, abs=1e-3)
    o = an.flow_outage(f, fault_t=T0 + 0.5, window=0.1)
    assert o.t_gap_ms == pytest.approx(20.0, abs=1e-3) and not o.t_gap_bounded
    o = an.flow_outage(f, fault_t=T0 + 1.5)     # default window: 1 s before to the end
    assert o.t_gap_ms == pytest.approx(50.0, abs=1e-3)


def test_window_without_recorded_gap_is_a_bound():
    # 20 equal 1 ms outages, top-16 list full: a window holding none of the
    # recorded ones gets the smallest recorded gap as an upper bound.
    f = flow(missing=[100 * k + 50 for k in range(20)])
    assert len(f["gaps"]) == 16
    o = an.flow_outage(f, fault_t=T0 + 1.0, window=0.01)
    assert o.t_gap_bounded and o.t_gap_ms == pytest.approx(1.0, abs=1e-3)


def test_no_arrivals():
    f = an.flow_from_packets([], 1000.0, tx_count=500)
    o = an.flow_outage(f)
    assert o.no_arrivals and o.t_gap_ms is None
    assert o.t_loss_ms == pytest.approx(500.0)


def test_lag_median_vs_max_and_surviving_flows():
    flows = [flow(missing=range(1000, 1050), flow_id=0),
             flow(missing=range(1000, 1100), flow_id=1),
             flow(flow_id=2), flow(flow_id=3)]
    lag = an.lag_outage(flows)
    assert lag.n_flows == 4
    assert lag.t_loss_max_ms == pytest.approx(100.0)
    assert lag.t_loss_median_ms == pytest.approx(25.0)
    assert lag.t_gap_max_ms == pytest.approx(100.0, abs=1e-3)
    assert lag.t_gap_median_ms == pytest.approx(25.0, abs=1e-3)
    assert lag.lossless_flows == [2, 3] and lag.lossy_flows == [0, 1]
    assert "max/median over 4 flows" in lag.method["t_gap"]
    # the aggregate would have said (150 lost / 4000 pkt/s) = 37.5 ms: not reported
    assert lag.resolution_ms == pytest.approx(1.0)


def test_rate_from_result_or_argument():
    f = flow(missing=range(1000, 1050))
    assert an.flow_outage(f, rate_pps=500.0).t_loss_ms == pytest.approx(100.0)
    f["rate_pps"] = 0
    with pytest.raises(ValueError):
        an.flow_outage(f)


def test_jain_index():
    assert an.jain_index([3, 3, 3, 3]) == pytest.approx(1.0)
    assert an.jain_index([7, 0, 0, 0]) == pytest.approx(0.25)
    assert an.jain_index([1, 0]) == pytest.approx(0.5)
    assert an.jain_index([0, 0]) is None


def test_repetitions():
    s = an.repetitions([10, 20, 30, None, 40, 50])
    assert s["n"] == 5 and s["min"] == 10 and s["median"] == 30 and s["max"] == 50
    assert s["p95"] == pytest.approx(48.0)


def test_clock_offset_from_min_rtt_samples():
    offset = 3.25
    samples = []
    # (one-way forward, one-way back) delays; the symmetric 1 ms one has the min RTT
    for i, (fwd, back) in enumerate([(0.004, 0.001), (0.001, 0.001), (0.002, 0.009),
                                     (0.0005, 0.003)]):
        t = 100.0 + i
        samples.append((t, t + fwd + offset, t + fwd + back))
    est = an.estimate_clock_offset(samples)
    assert est.offset_s == pytest.approx(offset, abs=1e-9)
    assert est.uncertainty_s == pytest.approx(0.001)
    assert est.rtt_min_s == pytest.approx(0.002) and est.n_used == 1 and est.n == 4
    # the true offset lies within the stated uncertainty for every sample set
    est2 = an.estimate_clock_offset(samples[:1])
    assert abs(est2.offset_s - offset) <= est2.uncertainty_s + 1e-12
    with pytest.raises(ValueError):
        an.estimate_clock_offset([(2.0, 0.0, 1.0)])


def test_detection_latency():
    lat = an.detection_latency(50.0 + 3.25 + 0.012, 50.0, 3.25, 0.001)
    assert lat.latency_ms == pytest.approx(12.0)
    assert lat.uncertainty_ms == pytest.approx(1.0)


def test_detection_latency_uncertainty_includes_the_event_marker_bracket():
    # kernel event placed via a marker written between wall readings 100.000 and 100.004
    # (+-2 ms), clock offset known to +-1 ms: the latency is known to +-3 ms
    marker = "laghil-mark-0badc0de"
    ev = place_events([(10.0, marker), (10.5, "bond0: link status definitely down")],
                      marker, 100.000, 100.004)[0]
    assert ev.uncertainty_s == pytest.approx(0.002)
    lat = an.detection_latency(ev.t, 100.002 + 0.5 - 3.25 - 0.012, 3.25, 0.001, ev.uncertainty_s)
    assert lat.latency_ms == pytest.approx(12.0)
    assert lat.uncertainty_ms == pytest.approx(3.0), (
        f"stated uncertainty +-{lat.uncertainty_ms:.2f} ms leaves out the event's own +-2 ms")


def test_reversion_time():
    # down 1000..1199 (restore at +1.15 s, first packet back at 1.2 s), then a
    # fail-back blip 2000..2009
    f = flow(n=3000, missing=list(range(1000, 1200)) + list(range(2000, 2010)))
    rv = an.reversion_time(f, T0 + 1.15)
    assert rv.resume_ms == pytest.approx(50.0, abs=1e-3)
    assert rv.failback_gap_ms == pytest.approx(10.0, abs=1e-3)
    assert rv.reversion_ms == pytest.approx(50.0, abs=1e-3)
    # a flow that failed over and keeps flowing at the restore: only the blip
    g = flow(n=3000, missing=range(2000, 2010))
    rv = an.reversion_time(g, T0 + 1.15)
    assert rv.resume_ms == 0.0 and rv.failback_gap_ms == pytest.approx(10.0, abs=1e-3)


def test_rate_series_per_flow_and_aggregate():
    # bins start half a packet before the first arrival: no arrival on a bin edge
    f0 = an.flow_from_packets(stream(100, rate=1000.0), 1000.0, tx_count=100, bin_ms=10.0,
                              origin=T0 - 0.0005)
    f1 = an.flow_from_packets(stream(100, rate=1000.0, missing=range(50, 100)), 1000.0,
                              tx_count=100, bin_ms=10.0, flow=1, origin=T0 - 0.0005)
    ss = an.rate_series([f0, f1])
    assert [s.label for s in ss] == ["flow 0", "flow 1", "all flows"]
    assert all(isinstance(s, Series) and s.bin_s == pytest.approx(0.01) for s in ss)
    assert ss[0].values == [pytest.approx(1000.0)] * 10
    assert ss[1].values == [pytest.approx(1000.0)] * 5
    assert ss[2].values == [pytest.approx(2000.0)] * 5 + [pytest.approx(1000.0)] * 5
    assert an.rate_series([f0, f1], per_flow=False)[0].label == "all flows"


def test_theoretical_rc_survival():
    assert an.theoretical_rc_survival_s(7, 14) == pytest.approx(0.536870912)
    assert an.theoretical_rc_survival_s(0, 1) == pytest.approx(8.192e-6)
    assert an.theoretical_rc_survival_s(6, 18) == pytest.approx(7 * 4.096e-6 * 2 ** 18)
    assert math.isinf(an.theoretical_rc_survival_s(7, 0))
    with pytest.raises(ValueError):
        an.theoretical_rc_survival_s(8, 14)


# --- outages on the send schedule; delivery stalls beside them ---------------------------

def delayed(packets, start_s, stall_s):
    """Arrivals whose receive time fell in [start_s, start_s + stall_s) after T0
    come out at its end, back to back (a receiver or forwarder that stopped for
    ``stall_s`` and then drained its queue): a delivery stall, nothing lost."""
    out, t_end, j = [], T0 + start_s + stall_s, 0
    for s, t in packets:
        if T0 + start_s <= t < t_end:
            t, j = t_end - 1e-4 + j * 1e-8, j + 1      # drained in order, before what follows
        out.append((s, t))
    return sorted(out, key=lambda p: p[1])


def test_a_delivery_stall_is_not_an_outage():
    # the fault at +1.0 s loses 20 packets (a 20 ms outage); 1.5 s later the
    # receiver stops for 300 ms and then drains its queue: nothing lost there
    pk = delayed(stream(4000, missing=range(1000, 1020)), 2.5, 0.3)
    f = an.flow_from_packets(pk, 1000.0, tx_count=4000)
    assert f["gaps"][0]["gap_s"] == pytest.approx(0.3, abs=2e-3)       # the receive-time gap
    o = an.flow_outage(f, fault_t=T0 + 1.0, window=(0.5, 3.0))
    assert o.t_gap_ms == pytest.approx(20.0, abs=1e-6), o
    assert o.stall_ms == pytest.approx(299.0, abs=2.0), o
    assert o.t_loss_ms == pytest.approx(20.0)
    # a reliable transport's view (every gap): the stall is the gap
    assert an.flow_outage(f, fault_t=T0 + 1.0, window=(0.5, 3.0), gaps="all").t_gap_ms \
        == pytest.approx(299.0, abs=2.0)


def test_an_outage_behind_delayed_packets_keeps_its_length():
    # 11 packets lost at +1.011 s while the 10 before them were held and
    # delivered late: the receive-time gap across the loss is about 1 ms
    pk = stream(3000, missing=range(1011, 1022))
    pk = [(s, T0 + 1.021 + (s - 1000) * 1e-5) if 1000 <= s < 1011 else (s, t) for s, t in pk]
    f = an.flow_from_packets(sorted(pk, key=lambda p: p[1]), 1000.0, tx_count=3000)
    assert max(g["gap_s"] for g in f["loss_gaps"]) < 0.0012
    o = an.flow_outage(f, fault_t=T0 + 1.0, window=(0.5, 1.0))
    assert o.t_gap_ms == pytest.approx(11.0, abs=1e-6)


def test_many_stalls_do_not_push_the_outage_out_of_the_agent_lists():
    # 20 lossless stalls of 50 ms fill the top-16 receive-gap list; the 3 ms
    # outage is still kept (the agent keeps the skips apart)
    pk = stream(12000, missing=range(6000, 6003))
    for k in range(20):
        pk = delayed(pk, 0.25 + 0.5 * k, 0.05)
    f = an.flow_from_packets(pk, 1000.0, tx_count=12000)
    assert len(f["gaps"]) == 16 and all(g["seq_after"] == g["seq_before"] + 1 for g in f["gaps"])
    assert [(g["seq_before"], g["seq_after"], g["missing"]) for g in f["loss_gaps"]] \
        == [(5999, 6003, 3)]
    o = an.flow_outage(f)
    assert o.t_gap_ms == pytest.approx(3.0) and not o.t_gap_bounded
    assert o.stall_ms == pytest.approx(49.0, abs=2.0)


def test_reordered_packets_that_arrive_later_are_not_missing():
    # 300..302 overtaken by 303 but delivered later: the skip across 299 -> 303
    # is recorded with nothing missing in the end
    order = list(range(2000))
    order[300:304] = [303, 300, 301, 302]
    f = an.flow_from_packets(stream(2000, order=order), 1000.0, tx_count=2000)
    assert f["loss_gaps"] and f["loss_gaps"][0]["missing"] == 0
    assert an.flow_outage(f).t_gap_ms == 0.0


def test_reversion_ignores_a_delivery_stall_after_the_restore():
    # down 1000..1199, restore at +1.15 s; a 200 ms lossless stall at +2.0 s
    pk = delayed(stream(4000, missing=range(1000, 1200)), 2.0, 0.2)
    f = an.flow_from_packets(pk, 1000.0, tx_count=4000)
    rv = an.reversion_time(f, T0 + 1.15)
    assert rv.resume_ms == pytest.approx(50.0, abs=1e-3)
    assert rv.failback_gap_ms == 0.0
    assert an.reversion_time(f, T0 + 1.15, gaps="all").failback_gap_ms \
        == pytest.approx(199.0, abs=2.0)


def test_results_of_an_agent_without_loss_gaps_still_judge_only_skips():
    f = flow(missing=range(1000, 1020))
    old = {k: v for k, v in f.items() if k != "loss_gaps"}
    assert an.flow_outage(old).t_gap_ms == pytest.approx(20.0)


def test_a_sender_slip_inside_the_outage_is_added_to_t_gap():
    from types import SimpleNamespace

    from laghil.measure.failover import FailoverTrial
    # the fault at T0 + 1 (receiver clock; the sender's clock 0.2 s ahead); 12 packets
    # (12 ms at 1000 pkt/s) went missing; the sender was 20 ms late from T0 + 1.2 + 3 ms
    # (its clock): 15 ms past its 5 ms catch-up, inside the outage; a later stall is not
    f = flow(missing=range(1000, 1012))
    res = SimpleNamespace(sender={"late_events": [{"t": T0 + 1.203, "late_ms": 20.0},
                                                  {"t": T0 + 1.9, "late_ms": 40.0}]})
    t = FailoverTrial("eth1", "c", "virtual_pull", res, T0 + 1.0, T0 + 3.0,
                      an.lag_outage([f], 1000.0, T0 + 1.0, (0.5, 2.0)),
                      an.reversion([f], T0 + 3.0, 1000.0), to_sender_s=0.2)
    assert t.outage.t_gap_max_ms == pytest.approx(12.0)
    assert t.gap_ms == pytest.approx(27.0)
    assert t.reversion_ms == 0.0          # no outage at the restore: no slip counted
    res.sender["late_events"] = [{"t": T0 + 1.203, "late_ms": 4.0}]    # within the catch-up
    assert t.gap_ms == pytest.approx(12.0)


def test_a_link_down_pulls_admin_down_return_bounds_its_figures():
    """A team on the twin's igb (3 repetitions pulled by link_down): one switched
    only when the admin-down returned 766 ms after the fault. Judged against
    that instant (the later of it and the configuration's bound), and shown
    beside the figures; the same trials from another method are judged as before."""
    from types import SimpleNamespace

    from laghil.bounds import ADMIN_DOWN
    from laghil.cases import team
    from laghil.measure.failover import FailoverTrial
    from laghil.measure.figures import failover_figures
    from laghil.profile import load_profile

    def trial(missing, held):
        f = flow(n=4000, rate=500.0, missing=range(1000, 1000 + missing))
        res = SimpleNamespace(sender={}, achieved_known_pps=500.0, rate_pps=500.0, flows=[f])
        return FailoverTrial("ens1f1np1", "c", "link_down", res, T0 + 2.0, T0 + 5.0,
                             an.lag_outage([f], 500.0, T0 + 2.0, (0.5, 3.0)),
                             an.reversion([f], T0 + 5.0, 500.0), member_driver="igb",
                             admin_down_ms=held)
    prof = load_profile("default")
    case = team("activebackup", via="switch")
    figs = failover_figures([trial(12, 612.0), trial(383, 790.0), trial(15, 820.0)], prof,
                            case=case, what="link_down")
    assert figs.gap.value == pytest.approx(766.0)
    assert figs.gap.bound is not None and ADMIN_DOWN in figs.gap.basis
    assert figs.gap.threshold > 820 and figs.gap.verdict == "pass", figs.gap.basis
    returned = next(m for m in figs.more if m.name == "member admin-down returned")
    assert returned.value == 820.0 and returned.repetitions == [612.0, 790.0, 820.0]
    # the same outage under a pull that holds nothing: igb's 650 ms allowance only, fails
    plain = failover_figures([trial(12, None), trial(383, None), trial(15, None)], prof,
                             case=case, what="virtual_pull")
    assert plain.gap.verdict == "fail" and ADMIN_DOWN not in plain.gap.basis
    assert not any(m.name == "member admin-down returned" for m in plain.more)
