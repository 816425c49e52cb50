"""Failover figures from probe results: pure functions (docs/measurement.md).

Input is what the probe agent's ``recv`` reports per flow (see
:mod:`laghil.measure.agent.flowstats`): ``tx_count``, ``rx_count`` (unique
sequence numbers received), ``rate_pps``, ``out_of_order``, ``duplicates``,
``loss_burst_count``, ``gaps`` (the top-N inter-arrival gaps, each with
``gap_s``, ``t_before``, ``t_after``, ``seq_before``, ``seq_after``) and
``bins``. :func:`flow_from_packets` builds the same summary from synthetic
(seq, time) sequences.

Figures (ms unless named otherwise), R = the flow's offered rate:

* T_gap (item 1): t(first packet after) - t(last packet before) - 1/R of
  the largest outage, on the sender's schedule: packet k is due at t0 + k/R,
  so an outage across which m packets never arrived lasted m/R (resolution
  1/R). The receive clock gives the same figure on a path whose delay does
  not vary; where it varies, a receive-time gap mixes the outage with
  delivery delay of any cause (a receiver, forwarder or sender that stopped):
  under software emulation a guest's vCPU descheduled for 100-700 ms at any
  time of a trial. Measured on the virtual rack (802.3ad through the switch,
  5 repetitions): every largest receive-time gap was a stall with no packet
  missing, 73-737 ms, 0.5-3.4 s after the fault, while the failover lost
  0-65 ms; one outage of 11 packets showed as a 1 ms receive gap (the packets
  before it delivered late). Optionally only the outages overlapping a
  window around the fault instant (receiver clock). An outage still running
  at the end of the trial has no "packet after" and shows only in T_loss.
* delivery stall: the largest receive-time gap across which no packet is
  missing (every packet arrived, late), minus 1/R; reported beside T_gap,
  never in it. ``gaps="all"`` takes T_gap from the receive-time gaps, all of
  them (RC QPs: a reliable transport resends what it lost, so its outage is a
  gap with nothing missing).
* T_loss (item 2): (Tx - Rx) / R. Equal to T_gap for one contiguous burst at
  a constant rate; smaller when T_gap spans reordering, larger when there
  were several bursts (item 3). For a LAG: per flow, then max and median over
  the flows, never the aggregate.
"""

import math
from dataclasses import dataclass
from typing import NamedTuple

from .agent.flowstats import reduce_packets
from .model import Series, percentile, summarize

GAP_METHOD = ("gap outage per flow on the send schedule (most consecutive packets never "
              "received x 1/R: t(first after) - t(last before) - 1/R at the sender's pace)")
GAP_METHOD_ALL = "gap outage per flow (max inter-arrival gap - 1/R)"
STALL_METHOD = ("delivery stall per flow (largest inter-arrival gap across which no packet is "
                "missing - 1/R: delivered late, not lost)")
LOSS_METHOD = "loss-derived outage per flow ((Tx - Rx)/R)"
DEFAULT_FAULT_WINDOW = (1.0, math.inf)   # s before / after the fault instant


def flow_from_packets(packets, rate_pps, tx_count=None, bin_ms=1.0, top_gaps=16, flow=0,
                      dst_port=0, origin=None):
    """The agent's per-flow summary of ``packets`` [(seq, arrival epoch s)] in
    arrival order (the very reduction code the agent runs)."""
    return reduce_packets(packets, rate_pps, tx_count, bin_ms, top_gaps, flow, dst_port, origin)


def _rate(flow, rate_pps):
    r = float(rate_pps if rate_pps is not None else flow.get("rate_pps") or 0)
    if r <= 0:
        raise ValueError(f"flow {flow.get('flow')}: no positive rate (declared "
                         f"{flow.get('rate_pps')!r}, given {rate_pps!r})")
    return r


def _window(fault_t, window):
    """(lo, hi) epoch bounds for gaps, or None for the whole trial."""
    if fault_t is None:
        return None
    if window is None:
        window = DEFAULT_FAULT_WINDOW
    before, after = (window, window) if isinstance(window, (int, float)) else window
    return fault_t - before, fault_t + after


def _largest_gap(gaps, bounds, top_n_full, key="gap_s"):
    """(gap dict or None, bounded) among ``gaps`` overlapping ``bounds``.

    When no recorded gap overlaps the window but the top-N list was full, the
    window's largest gap is at most the smallest recorded one: that one is
    returned with bounded=True (a conservative upper bound). ``key``: what
    "largest" means ("missing": the most packets missing across it)."""
    inside = [g for g in gaps if bounds is None
              or (g["t_after"] >= bounds[0] and g["t_before"] <= bounds[1])]
    if inside:
        return max(inside, key=lambda g: g[key]), False
    if gaps and top_n_full:
        return min(gaps, key=lambda g: g[key]), True
    return None, False


@dataclass(frozen=True)
class FlowOutage:
    """T_gap and T_loss of one flow (ms), with resolution and the item-3 counts."""
    flow: int | None
    dst_port: int | None
    rate_pps: float
    resolution_ms: float
    t_gap_ms: float | None          # None: undefined (no arrival, or not bounded)
    t_gap_bounded: bool
    gap: dict | None                # the agent's gap record the figure comes from
    t_loss_ms: float
    tx: int
    rx: int
    lost: int
    loss_bursts: int
    largest_burst: int
    out_of_order: int
    duplicates: int
    no_arrivals: bool
    method: dict
    stall_ms: float | None = None   # the largest lossless gap in the window - 1/R (0: none)
    stall: dict | None = None       # its gap record


def _loss_gaps(flow_result):
    """(the flow's gaps across which sequence numbers were skipped, whether the
    agent's list of them was kept apart: a full list then bounds an absent one).
    Results of an agent before ``loss_gaps``: the skipping ones among its top
    gaps, ``missing`` being what they skipped."""
    if "loss_gaps" in flow_result:
        return flow_result.get("loss_gaps") or [], True
    return [{**g, "missing": g["seq_after"] - g["seq_before"] - 1}
            for g in flow_result.get("gaps") or [] if g["seq_after"] > g["seq_before"] + 1], False


def _lossless(g):
    return g["seq_after"] == g["seq_before"] + 1


def flow_outage(flow_result, rate_pps=None, fault_t=None, window=None, top_gaps=16,
                gaps="loss"):
    """:class:`FlowOutage` of one flow.

    ``rate_pps`` defaults to the sender's declared rate in the result.
    ``fault_t`` (epoch s, receiver clock) with ``window`` (s, or (before,
    after); default 1 s before to the end) restricts T_gap to the gaps
    overlapping that window. ``top_gaps`` is the number of gaps the agent
    kept (to tell a full list, where an absent gap is bounded). ``gaps``:
    "loss" (T_gap of the gaps across which packets are missing; the largest
    lossless one is ``stall_ms``) or "all" (every gap: a reliable transport).
    """
    if gaps not in ("loss", "all"):
        raise ValueError(f"gaps must be 'loss' or 'all', not {gaps!r}")
    r = _rate(flow_result, rate_pps)
    res_ms = 1e3 / r
    tx, rx = int(flow_result.get("tx_count") or 0), int(flow_result.get("rx_count") or 0)
    every = flow_result.get("gaps") or []
    if gaps == "loss":
        judged, apart = _loss_gaps(flow_result)
        full = len(judged) >= top_gaps if apart else len(every) >= top_gaps
    else:
        judged, full = every, len(every) >= top_gaps
    bounds = _window(fault_t, window)
    gap, bounded = (None, False)
    key = "missing" if gaps == "loss" else "gap_s"
    if rx > 0:
        gap, bounded = _largest_gap(judged, bounds, full, key)
    t_gap = None
    if gap is not None:
        t_gap = (gap["missing"] * res_ms if gaps == "loss"
                 else max(0.0, gap["gap_s"] * 1e3 - res_ms))
    elif rx > 0:
        t_gap = 0.0 if not full else None
    stall, stall_ms = None, None
    if gaps == "loss" and rx > 0:
        stall, _ = _largest_gap([g for g in every if _lossless(g)], bounds, False)
        stall_ms = max(0.0, stall["gap_s"] * 1e3 - res_ms) if stall else 0.0
    t_loss = max(0, tx - rx) * 1e3 / r
    bursts = flow_result.get("loss_bursts") or []
    return FlowOutage(
        flow=flow_result.get("flow"), dst_port=flow_result.get("dst_port"),
        rate_pps=r, resolution_ms=res_ms,
        t_gap_ms=t_gap, t_gap_bounded=bounded, gap=gap,
        t_loss_ms=t_loss, tx=tx, rx=rx, lost=max(0, tx - rx),
        loss_bursts=int(flow_result.get("loss_burst_count") or 0),
        largest_burst=max((n for _, n in bursts), default=0),
        out_of_order=int(flow_result.get("out_of_order") or 0),
        duplicates=int(flow_result.get("duplicates") or 0),
        no_arrivals=rx == 0,
        method={"t_gap": GAP_METHOD if gaps == "loss" else GAP_METHOD_ALL,
                "t_loss": LOSS_METHOD, "stall": STALL_METHOD},
        stall_ms=stall_ms, stall=stall)


def _med_max(values):
    vs = [v for v in values if v is not None]
    return (percentile(vs, 50), max(vs)) if vs else (None, None)


@dataclass(frozen=True)
class LagOutage:
    """Per-flow outage figures of a LAG plus max and median over the flows (item 2)."""
    n_flows: int
    resolution_ms: float
    t_gap_max_ms: float | None
    t_gap_median_ms: float | None
    t_loss_max_ms: float | None
    t_loss_median_ms: float | None
    lossless_flows: list            # flows that lost nothing (the survivor's)
    lossy_flows: list
    no_arrival_flows: list          # flows that received nothing (T_gap undefined)
    out_of_order: int
    duplicates: int
    loss_bursts: int
    flows: list                     # [FlowOutage]
    method: dict
    stall_max_ms: float | None = None   # the largest delivery stall over the flows


def lag_outage(flows, rate_pps=None, fault_t=None, window=None, top_gaps=16, gaps="loss"):
    """:class:`LagOutage` of the flows.

    Never the aggregate of all flows: flows hashed to the surviving member lose
    nothing. ``lossless_flows`` names the flows that lost no packet (the
    surviving member's flows); ``no_arrival_flows`` those
    that received nothing at all (T_gap undefined, T_loss = the whole trial).
    ``gaps``: as for :func:`flow_outage`.
    """
    per = [flow_outage(f, rate_pps, fault_t, window, top_gaps, gaps) for f in flows]
    if not per:
        raise ValueError("lag_outage of no flows")
    gap_med, gap_max = _med_max(p.t_gap_ms for p in per)
    loss_med, loss_max = _med_max(p.t_loss_ms for p in per)
    lossless = [p.flow for p in per if p.lost == 0 and p.rx > 0]
    return LagOutage(
        n_flows=len(per),
        resolution_ms=max(p.resolution_ms for p in per),
        t_gap_max_ms=gap_max, t_gap_median_ms=gap_med,
        t_loss_max_ms=loss_max, t_loss_median_ms=loss_med,
        lossless_flows=lossless,
        lossy_flows=[p.flow for p in per if p.flow not in lossless],
        no_arrival_flows=[p.flow for p in per if p.no_arrivals],
        out_of_order=sum(p.out_of_order for p in per),
        duplicates=sum(p.duplicates for p in per),
        loss_bursts=sum(p.loss_bursts for p in per),
        flows=per,
        method={"t_gap": per[0].method["t_gap"] + f", max/median over {len(per)} flows",
                "t_loss": LOSS_METHOD + f", max/median over {len(per)} flows"},
        stall_max_ms=max((p.stall_ms for p in per if p.stall_ms is not None), default=None))


class ClockOffset(NamedTuple):
    """Remote clock minus controller clock, from SSH round trips."""
    offset_s: float
    uncertainty_s: float    # half the minimum round trip
    rtt_min_s: float
    n_used: int
    n: int


def estimate_clock_offset(samples, tolerance=0.1):
    """ClockOffset from (t_send_ctrl, t_remote, t_recv_ctrl) triples.

    Each sample's offset is t_remote minus the midpoint of its round trip; only
    the minimum-RTT samples are used (RTT within ``tolerance`` x min RTT of the
    minimum), and their median offset is returned. The remote reading happened
    somewhere within the round trip, so the uncertainty is half the min RTT.
    """
    rows = []
    for ts, tr, tv in samples:
        if tv < ts:
            raise ValueError(f"clock sample with negative round trip: {ts!r} -> {tv!r}")
        rows.append((tv - ts, tr - (ts + tv) / 2))
    if not rows:
        raise ValueError("estimate_clock_offset needs at least one sample")
    rtt_min = min(r for r, _ in rows)
    used = [o for r, o in rows if r <= rtt_min * (1 + tolerance) + 1e-12]
    return ClockOffset(percentile(used, 50), rtt_min / 2, rtt_min, len(used), len(rows))


class Latency(NamedTuple):
    latency_ms: float
    uncertainty_ms: float


def detection_latency(event_t_host, fault_t_controller, offset=0.0, offset_uncertainty=0.0,
                      event_uncertainty=0.0):
    """Kernel event (host clock) minus fault instant (controller clock), in ms
    (item 4). ``offset`` = host clock - controller clock (s), e.g. from
    :func:`estimate_clock_offset`, known to +-``offset_uncertainty`` (0 when
    both instants come from one clock); ``event_uncertainty`` (s) is the
    event's own, e.g. :attr:`laghil.kevents.KernelEvent.uncertainty_s` (the
    half-width of the kernel-log marker's wall-clock bracket). The stated
    uncertainty is their sum (both are worst-case bounds)."""
    return Latency((event_t_host - offset - fault_t_controller) * 1e3,
                   (offset_uncertainty + event_uncertainty) * 1e3)


@dataclass(frozen=True)
class FlowReversion:
    """Fail-back figures of one flow (ms): see :func:`reversion_time`."""
    flow: int | None
    resume_ms: float
    failback_gap_ms: float
    failback_bound_ms: float | None
    reversion_ms: float
    resolution_ms: float
    gap: dict | None
    method: str


@dataclass(frozen=True)
class Reversion:
    """Fail-back of every flow at one restore, max and median of reversion_ms."""
    flows: list                     # [FlowReversion]
    reversion_max_ms: float
    reversion_median_ms: float
    resolution_ms: float


def reversion_time(flow_result, restore_t, rate_pps=None, window_s=5.0, top_gaps=16,
                   gaps="loss"):
    """Fail-back figures of one flow when the link returns at ``restore_t``
    (epoch s, receiver clock), in ms (item 5), as a :class:`FlowReversion`:

    * ``resume_ms``: if the flow was not receiving at ``restore_t`` (a gap
      spans it: the flow never failed over, or had not yet), the first arrival
      after the restore minus ``restore_t``; else 0.
    * ``failback_gap_ms``: the largest outage that starts within ``window_s``
      after the restore (as T_gap: packets missing x 1/R): the disruption caused by moving traffic
      back (active-backup primary reselection, LACP re-aggregation: expect at
      least updelay, or the 2 s aggregate wait); 0 when there is none.
    * ``reversion_ms``: the larger of the two. Resolution 1/R.

    ``gaps``: as for :func:`flow_outage` ("loss": only gaps across which
    packets are missing; a delivery stall is not a disruption of the path).
    """
    r = _rate(flow_result, rate_pps)
    res_ms = 1e3 / r
    all_gaps = flow_result.get("gaps") or []
    loss = gaps == "loss"
    if loss:
        gaps, apart = _loss_gaps(flow_result)
        full = len(gaps) >= top_gaps if apart else len(all_gaps) >= top_gaps
    else:
        gaps = all_gaps
        full = len(gaps) >= top_gaps
    spanning = [g for g in gaps if g["t_before"] < restore_t < g["t_after"]]
    resume = max(((g["t_after"] - restore_t) * 1e3 for g in spanning), default=0.0)
    after = [g for g in gaps if restore_t <= g["t_before"] <= restore_t + window_s]

    def ms(g):
        return g["missing"] * res_ms if loss else max(0.0, g["gap_s"] * 1e3 - res_ms)
    fb = max(after, key=ms) if after else None
    failback = ms(fb) if fb else 0.0
    bound = None
    if fb is None and full and gaps:
        bound = min(ms(g) for g in gaps)
    return FlowReversion(
        flow=flow_result.get("flow"), resume_ms=resume, failback_gap_ms=failback,
        failback_bound_ms=bound, reversion_ms=max(resume, failback), resolution_ms=res_ms,
        gap=fb, method="restore: first arrival after restore_t (if down), largest "
                       + ("outage (packets missing x 1/R)" if loss else "gap - 1/R")
                       + f" starting within {window_s:g} s after it")


def reversion(flows, restore_t, rate_pps, window_s=5.0, gaps="loss"):
    """:class:`Reversion` of every flow at ``restore_t``."""
    per = [reversion_time(f, restore_t, rate_pps, window_s, gaps=gaps) for f in flows]
    vals = [p.reversion_ms for p in per]
    return Reversion(per, max(vals), percentile(vals, 50), 1e3 / rate_pps)


def jain_index(xs):
    """Jain's fairness index (sum x)^2 / (N sum x^2): 1.0 for equal shares,
    1/N when one of N gets everything. None when every share is zero."""
    xs = [float(x) for x in xs]
    if not xs:
        raise ValueError("jain_index of no values")
    sq = sum(x * x for x in xs)
    if sq == 0:
        return None
    return sum(xs) ** 2 / (len(xs) * sq)


def repetitions(values):
    """min / median / p95 / max of repeated trials (item 8)."""
    return summarize(values)


def rate_series(flow_results, per_flow=True, aggregate=True, label="flow"):
    """Receive rate (pkt/s per bin) Series for timeline charts: one per flow
    (labelled ``"<label> <id>"``) and/or their sum (``"all flows"``)."""
    flows = [f for f in flow_results if f.get("bins") and f["bins"].get("counts")]
    out = []
    if not flows:
        return out
    bin_s = flows[0]["bins"]["bin_ms"] / 1e3
    for f in flows:
        if abs(f["bins"]["bin_ms"] / 1e3 - bin_s) > 1e-12:
            raise ValueError("rate_series: flows have different bin widths")
    if per_flow:
        for f in flows:
            b = f["bins"]
            out.append(Series(f"{label} {f.get('flow')}", b["t0"], bin_s,
                              [c / bin_s for c in b["counts"]]))
    if aggregate:
        t0 = min(f["bins"]["t0"] for f in flows)
        idx = [round((f["bins"]["t0"] - t0) / bin_s) for f in flows]
        total = [0.0] * max(i + len(f["bins"]["counts"]) for i, f in zip(idx, flows))
        for i, f in zip(idx, flows):
            for k, c in enumerate(f["bins"]["counts"]):
                total[i + k] += c / bin_s
        out.append(Series("all flows", t0, bin_s, total))
    return out


def theoretical_rc_survival_s(retry_cnt, timeout):
    """Longest outage an RDMA RC QP survives (item 6): (retry_cnt + 1) x
    4.096 us x 2^timeout, in s. timeout 0 means no local ACK timeout (inf)."""
    if not 0 <= timeout <= 31 or not 0 <= retry_cnt <= 7:
        raise ValueError(f"timeout must be 0..31 and retry_cnt 0..7, not {timeout}, {retry_cnt}")
    if timeout == 0:
        return math.inf
    return (retry_cnt + 1) * 4.096e-6 * 2 ** timeout
