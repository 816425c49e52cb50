"""The figures of repeated failover trials, built one way for every suite (UDP
probe over a bond or team, RC QPs over a RoCE LAG, ...): the gap outage judged
on the worst repetition, and, where the probe has them, the loss outage, the
fail-back, the item-3 counts and the kernel's detection latency.

    figs = failover_figures(trials, profile, key="802.3ad.miimon_10", what="...")
    figs.gap.verdict, figs.loss, figs.reversion, figs.all
"""

from dataclasses import dataclass, field

from .model import Measurement, summarize

UDP_GAP = "gap outage per flow, max over flows, worst repetition"
RDMA_GAP = "largest gap between receive completions per QP minus 1/R, max over {n} RC QPs, worst"


@dataclass
class FailoverFigures:
    gap: Measurement
    loss: Measurement | None = None
    reversion: Measurement | None = None
    more: list = field(default_factory=list)

    @property
    def all(self):
        return [m for m in (self.gap, self.loss, self.reversion) if m is not None] + self.more


def summarize_text(values):
    st = summarize(values)
    if not st["n"]:
        return "no values"
    return (f"min {st['min']:.1f} / median {st['median']:.1f} / p95 {st['p95']:.1f} / "
            f"max {st['max']:.1f} ms")


def resolution_ms(trials):
    """1/R of the coarsest trial (the achieved rate where the sender reported it)."""
    return max(1e3 / (t.res.achieved_known_pps or t.res.rate_pps) for t in trials)


def failover_figures(trials, profile, *, key, what, rdma=False):
    """Figures of ``trials`` (FailoverTrial, same case), thresholds from
    ``profile``: UDP probe trials ``failover/<key>.t_gap_ms``,
    ``failover/<key>.t_loss_ms``, ``failback/<key>.reversion_ms``; RDMA trials
    (``rdma``) ``roce/<key>.t_gap_ms``. ``what`` says what was pulled and how."""
    res_ms = resolution_ms(trials)
    gaps = [t.outage.t_gap_max_ms for t in trials]
    worst = max((g for g in gaps if g is not None), default=None)
    if rdma:
        n = len(trials[0].res.flows)
        return FailoverFigures(gap=Measurement(
            "RDMA T_gap max", worst, "ms",
            f"{RDMA_GAP.format(n=n)} of {len(trials)} repetition(s); {what}", resolution=res_ms,
            repetitions=gaps, threshold=profile.threshold(f"roce/{key}.t_gap_ms"),
            profile=profile.label))
    losses = [t.outage.t_loss_max_ms for t in trials]
    revs = [t.reversion.reversion_max_ms for t in trials]
    where = f"{what}, {len(trials)} repetition(s); {summarize_text(gaps)}"
    judged = {"resolution": res_ms, "comparison": "<=", "profile": profile.label}
    figs = FailoverFigures(
        gap=Measurement("T_gap max", worst, "ms", f"{UDP_GAP}; {where}", repetitions=gaps,
                        threshold=profile.threshold(f"failover/{key}.t_gap_ms"), **judged),
        loss=Measurement("T_loss max", max(losses), "ms",
                         "loss-derived outage (Tx-Rx)/R per flow over the trial, max over flows, "
                         "worst repetition", repetitions=losses,
                         threshold=profile.threshold(f"failover/{key}.t_loss_ms"), **judged),
        reversion=Measurement("reversion max", max(revs), "ms",
                              "fail-back: first arrival after restore if down, else the largest "
                              "gap within 3 s after it, max over flows, worst repetition",
                              repetitions=revs,
                              threshold=profile.threshold(f"failback/{key}.reversion_ms"),
                              **judged))
    for attr, name in (("out_of_order", "out-of-order"), ("duplicates", "duplicates")):
        vals = [getattr(t.outage, attr) for t in trials]
        figs.more.append(Measurement(
            name, max(vals), "packets", "sum over flows, worst repetition (measurement.md "
            "item 3: expected in broadcast and during MAC moves)", resolution=1, repetitions=vals))
    lats = [t.detection for t in trials if t.detection is not None]
    if lats:
        figs.more.append(Measurement(
            "detection latency", max(x.latency_ms for x in lats), "ms",
            "kernel 'link status definitely down' (node clock, /dev/kmsg marker) minus the "
            "fault instant (controller clock), offset from SSH round trips",
            resolution=max(x.uncertainty_ms for x in lats),
            repetitions=[x.latency_ms for x in lats]))
    return figs
