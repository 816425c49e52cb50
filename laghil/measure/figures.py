"""The figures of repeated failover trials, built one way for every suite (UDP
probe over a bond or team, RC QPs over a RoCE LAG, ...): the gap outage and,
where the probe has them, the loss outage, the fail-back, the item-3 counts and
the kernel's detection latency.

    figs = failover_figures(trials, profile, case=case, what="...")
    figs.gap.verdict, figs.gap_median, figs.loss, figs.reversion, figs.detection

Each judged figure comes twice, both against the bound its configuration
allows (:mod:`laghil.bounds`, shown with its formula and inputs in ``basis``):

* ``<figure> median``, the median over the repetitions, against the bound: a
  failover that is typically slower than the configuration and the platform
  explain fails (on the virtual rack: about 3 times the healthy median);
* ``<figure> max``, the worst repetition, against the bound plus the platform's
  stall allowance (``allowances.stall_ms``: the longest hiccup a healthy
  platform shows, e.g. a guest descheduled under emulation): one trial that
  is far out fails too.
"""

import statistics
from dataclasses import dataclass, field

from ..bounds import (Bound, detection_bound, failback_delay_bound, gap_bound, loss_bound,
                      rc_gap_bound, reversion_bound)
from .model import Measurement, summarize

UDP_GAP = ("gap outage per flow on the send schedule (most consecutive packets never received "
           "x 1/R, plus the probe sender's slip inside the outage), max over flows")
RDMA_GAP = "largest gap between receive completions per QP minus 1/R, max over {n} RC QPs"


@dataclass
class FailoverFigures:
    gap: Measurement                        # worst repetition
    gap_median: Measurement | None = None
    loss: Measurement | None = None
    loss_median: Measurement | None = None
    reversion: Measurement | None = None
    reversion_median: Measurement | None = None
    detection: Measurement | None = None
    detection_median: Measurement | None = None
    failback_delay: Measurement | None = None
    failback_delay_median: Measurement | None = None
    more: list = field(default_factory=list)

    @property
    def judged(self):
        """The figures with a bound, in report order (medians first)."""
        return [m for m in (self.gap_median, self.gap, self.loss_median, self.loss,
                            self.reversion_median, self.reversion, self.detection_median,
                            self.detection, self.failback_delay_median, self.failback_delay)
                if m is not None]

    @property
    def all(self):
        return self.judged + self.more


def summarize_text(values):
    st = summarize(values)
    if not st["n"]:
        return "no values"
    return (f"min {st['min']:.1f} / median {st['median']:.1f} / p95 {st['p95']:.1f} / "
            f"max {st['max']:.1f} ms")


def resolution_ms(trials):
    """1/R of the coarsest trial (the achieved rate where the sender reported it)."""
    return max(1e3 / (t.res.achieved_known_pps or t.res.rate_pps) for t in trials)


def detection_values(lats):
    """Per-repetition detection latencies (ms) and how many were below zero: a
    latency below zero but within its uncertainty is 0 ms as far as the
    measurement can tell (the event cannot precede the fault), and is reported
    so; one below by more is an invalid trial (FailoverTrial.invalid), never here."""
    vals = [max(0.0, x.latency_ms) for x in lats]
    return vals, sum(1 for x in lats if x.latency_ms < 0)


def judged_pair(name, values, method, bound, profile, case_key, resolution):
    """(median Measurement against ``bound``, worst Measurement against ``bound``
    plus the platform's stall allowance) of per-repetition ``values`` (ms)."""
    vals = [v for v in values if v is not None]
    kind, allowed = allowance_of(bound)
    stall_ms = profile.allowance("stall_ms", case_key, figure=kind)
    stall = Bound(bound.figure, bound.terms + ((f"stall allowance ({profile.label})", stall_ms),))
    common = {"resolution": resolution, "repetitions": list(values), "comparison": "<=",
              "profile": profile.label}
    parts = {"case_key": case_key, "allowance": kind, "allowance_ms": allowed,
             "config_ms": bound.ms - allowed}
    n = len(values)
    median = Measurement(f"{name} median", statistics.median(vals) if vals else None, "ms",
                         f"{method}, median over {n} repetition(s)", threshold=bound.ms,
                         basis=bound.describe(), bound={**parts, "statistic": "median"},
                         **common)
    worst = Measurement(f"{name} max", max(vals) if vals else None, "ms",
                        f"{method}, worst of {n} repetition(s)", threshold=stall.ms,
                        basis=stall.describe(),
                        bound={**parts, "statistic": "max", "stall_ms": stall_ms}, **common)
    return median, worst


ALLOWANCE_LABELS = (("link-up allowance", "linkup_ms"),
                    ("RC switch-over allowance", "rc_switchover_ms"),
                    ("switch-over allowance", "switchover_ms"),
                    ("fail-back allowance", "failback_ms"),
                    ("detection allowance", "detect_ms"),
                   ("step allowance", "step_ms"))


def allowance_of(bound):
    """(the profile allowance kind a bound's judgement rests on, its ms);
    (None, their sum) when it has none or several (T_loss: switch-over and
    fail-back), which no single allowance can be derived from."""
    found = [(kind, float(v)) for label, v in bound.terms
             for text, kind in ALLOWANCE_LABELS if label.startswith(text)]
    if len(found) == 1:
        return found[0]
    return None, sum(v for _, v in found)


def member_driver(trials):
    """The pulled member's NIC driver, as the trials read it ("" when unknown)."""
    return next((t.member_driver for t in trials if getattr(t, "member_driver", "")), "")


def failover_figures(trials, profile, *, case, what, rc_timeout=None):
    """Figures of ``trials`` (FailoverTrial of one ``case``, a laghil.cases.Case),
    judged against the bounds its configuration allows (allowances from
    ``profile``). UDP probe trials: T_gap, T_loss, reversion, detection
    latency, the item-3 counts; RC trials (give ``rc_timeout``, the QPs' local
    ACK timeout exponent): the RDMA T_gap. ``what`` says what was pulled and how."""
    res_ms = resolution_ms(trials)
    key = case.key
    driver = member_driver(trials)
    held = admin_down_ms(trials)
    gaps = [t.outage.t_gap_max_ms for t in trials]
    if rc_timeout is not None:
        n = len(trials[0].res.flows)
        med, worst = judged_pair("RDMA T_gap", gaps, f"{RDMA_GAP.format(n=n)}; {what}",
                                 rc_gap_bound(case, profile, res_ms, rc_timeout, driver, held),
                                 profile, key, res_ms)
        figs = FailoverFigures(gap=worst, gap_median=med)
        _admin_down_figure(figs, trials)
        return figs
    gaps = [getattr(t, "gap_ms", t.outage.t_gap_max_ms) for t in trials]
    where = f"{what}; {summarize_text(gaps)}"
    gap_b = gap_bound(case, profile, res_ms, driver, held)
    gap_med, gap = judged_pair("T_gap", gaps, f"{UDP_GAP}; {where}", gap_b, profile, key, res_ms)
    loss_med, loss = judged_pair("T_loss", [t.outage.t_loss_max_ms for t in trials],
                                 "loss-derived outage (Tx-Rx)/R per flow over the trial, max "
                                 "over flows (the failover's and the fail-back's losses)",
                                 loss_bound(case, profile, res_ms, driver, held), profile, key,
                                 res_ms)
    rev_med, rev = judged_pair("reversion", [getattr(t, "reversion_ms",
                                                     t.reversion.reversion_max_ms)
                                             for t in trials],
                               "fail-back: first arrival after restore if down, else the "
                               "largest gap within 3 s after it, max over flows",
                               reversion_bound(case, profile, res_ms), profile, key, res_ms)
    figs = FailoverFigures(gap=gap, gap_median=gap_med, loss=loss, loss_median=loss_med,
                           reversion=rev, reversion_median=rev_med)
    stalls = [t.outage.stall_max_ms for t in trials]
    if any(v is not None for v in stalls):
        worst = max(v for v in stalls if v is not None)
        figs.more.append(Measurement(
            "delivery stall max", worst, "ms",
            "largest gap across which no packet is missing (every packet arrived, late: a "
            "receiver, forwarder or sender that stopped) - 1/R, max over flows, worst "
            f"repetition, from 0.5 s before the fault to the restore; not an outage, never in "
            f"T_gap; {summarize_text([v for v in stalls if v is not None])}",
            resolution=res_ms, repetitions=stalls))
    for attr, name in (("out_of_order", "out-of-order"), ("duplicates", "duplicates")):
        vals = [getattr(t.outage, attr) for t in trials]
        figs.more.append(Measurement(
            name, max(vals), "packets", "sum over flows, worst repetition (docs/measurement.md "
            "item 3: expected in broadcast and during MAC moves)", resolution=1, repetitions=vals))
    lats = [t.detection for t in trials if t.detection is not None]
    if lats:
        vals, below = detection_values(lats)
        figs.detection_median, figs.detection = judged_pair(
            "detection latency", vals,
            "kernel 'link status definitely down' (node clock, /dev/kmsg marker) minus the "
            "fault instant (controller clock), offset from SSH round trips",
            detection_bound(case, profile, driver, held), profile, key,
            max(x.uncertainty_ms for x in lats))
        if below:
            note = (f"{below} of {len(lats)} repetition(s) measured below 0 ms within their "
                    "uncertainty: reported as 0 ms (an event cannot precede its cause; a trial "
                    "below zero by more than its uncertainty is invalid and retried)")
            for m in (figs.detection_median, figs.detection):
                m.note = note
    _failback_delay(figs, trials, case, profile, key)
    _admin_down_figure(figs, trials)
    return figs


def admin_down_ms(trials):
    """The latest instant, after its fault, at which a member's own admin-down
    (the ``link_down`` pull) returned, over ``trials``; None for other methods."""
    vals = [t.admin_down_ms for t in trials if getattr(t, "admin_down_ms", None) is not None]
    return max(vals) if vals else None


def _admin_down_figure(figs, trials):
    """Beside the judged figures: when each repetition's admin-down returned (a
    bound's input, laghil.bounds.later_of_admin_down); nothing for other methods."""
    vals = [getattr(t, "admin_down_ms", None) for t in trials]
    if not any(v is not None for v in vals):
        return
    figs.more.append(Measurement(
        "member admin-down returned", admin_down_ms(trials), "ms",
        "'ip link set <member> down' returned this long after the fault instant (controller "
        "clock, late by at most the reply's way back): the kernel held RTNL through the NIC "
        "driver's stop until then, and a switch-over not finished before waits for it; "
        f"worst repetition, {summarize_text([v for v in vals if v is not None])}",
        resolution=None, repetitions=vals))


def _failback_delay(figs, trials, case, profile, key):
    """The fail-back delay (issue 21 item 4): from the restore until the kernel
    has the restored member back in use (bonds; FailoverTrial.back_latency),
    judged against the configuration's take-back plus the detection allowance.
    Where a case does not take the member back (primary_reselect failure) or
    the kernel says nothing (teams), a "not judged" figure says why."""
    if (case.options or {}).get("primary_reselect") == "failure":
        return
    lats = [t.back_latency for t in trials]
    events = sorted({t.back_event for t in trials if t.back_event})
    if not any(lats):
        if case.kind != "bond":     # a gap of the method, not of the data: said, not judged
            why = (f"no kernel event of a {case.kind} port coming back (teamd's port state is "
                   "not in the kernel log)")
            name = f"fail-back delay (not measured for {case.kind})"
        else:                       # data that should be there is not: fails under --certify
            why = f"the kernel logged no {' / '.join(events) or 'link-up'} after a restore"
            name = "fail-back delay (not judged)"
        figs.more.append(Measurement(name, None, "ms", f"not judged: {why}", resolution=None,
                                     note=f"not judged: {why}"))
        return
    vals = [max(0.0, x.latency_ms) if x is not None else None for x in lats]
    driver = member_driver(trials)
    figs.failback_delay_median, figs.failback_delay = judged_pair(
        "fail-back delay", vals,
        f"the kernel's {' / '.join(events)} (node clock) minus the restore instant (controller "
        "clock), offset from SSH round trips: the restored member back in use",
        failback_delay_bound(case, profile, driver), profile, key,
        max(x.uncertainty_ms for x in lats if x is not None))
    for m in (figs.failback_delay_median, figs.failback_delay):
        m.bound["case_key"] = driver or "default"     # linkup_ms is kept per NIC driver
    missing = sum(1 for x in lats if x is None)
    if missing:
        note = (f"{missing} of {len(lats)} repetition(s) had no such event: the member did not "
                "come back in them")
        for m in (figs.failback_delay_median, figs.failback_delay):
            m.note = note
        figs.failback_delay.value = None      # the worst repetition never came back: fails
