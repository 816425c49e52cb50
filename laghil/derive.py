"""A profile derived from a lab's own healthy runs (``laghil profile derive``).

Every allowance a failover figure is judged with (profiles/*.yaml,
``allowances``) is the platform's part of a bound: what a healthy lab needs
beyond its configuration. Derived here from the judged figures of healthy
runs' results.json, which carry each bound in parts (``bound``: case key,
allowance kind, configuration part), per allowance kind and case key:

* the median bound: ``allowance = MEDIAN_FACTOR x m - config`` where ``m`` is
  the median of every healthy repetition of the case (pooled over the runs)
  and ``config`` the rest of its bound (the configuration's part and 1/R):
  the bound is MEDIAN_FACTOR x the healthy median, so a case 3 times slower
  than healthy fails its median (where the configuration's part does not
  dominate the bound: then the bound is that part plus MIN_ALLOWANCE_MS);
* the worst repetition's bound (``stall_ms``, per figure and case:
  ``failback_ms:802.3ad.miimon_10``, added to the median bound): ``WORST_FACTOR
  x`` the WORST_QUANTILE quantile of the healthy repetitions, capped at
  WORST_CAP x the median of the case's slowest mode, at least the median plus
  the platform's jitter, never below the median bound; rounded up to ROUND_MS.
  Relative to the case, not a flat number, and never the largest healthy
  value: one outlier cannot loosen it (it is not a mode: :func:`modes` needs
  MODE_MIN_REPS repetitions and MODE_MIN_SHARE of them past a clear gap).
* a bimodal case (fail-back through 802.3ad: some repetitions wait for LACP,
  some do not) is judged per mode: its worst repetition against its slower
  mode, and so is its median (a run's median of 3 lands in the slower mode
  whenever 2 of its 3 repetitions do); the derivation lists both modes.
* the median bound is at least the median plus the platform's median jitter
  (the MEDIAN_JITTER_QUANTILE quantile of the pooled excesses below): a run's
  median of 3 passes it only when 2 of its 3 repetitions do (about 3 x 0.02^2
  of healthy runs), where a case's own median is 0 and MIN_ALLOWANCE_MS alone
  would fail a healthy run in ten;
* the platform's jitter (:func:`platform_jitter`): every healthy repetition's
  excess over its case's median, pooled over all one-mode cases (hundreds of
  repetitions), its tail above the JITTER_TAIL_QUANTILE quantile taken as
  exponential and extrapolated to JITTER_EXCEEDANCE per repetition: how far a
  healthy repetition strays on this platform (a guest descheduled, an SSH
  round trip) where a case's own median is 0 or its repetitions few;
* values judged one by one (``statistic: each``: a configuration step's
  figures, suites/switch_lag) get one allowance by the worst repetition's rule
  and no stall.

A failover or fail-back 10 times slower than healthy therefore fails its
median bound in every derived case whose configuration's part does not
dominate (10 m > MEDIAN_FACTOR m) and in one mode, and its worst bound where 9 m
exceeds the platform's jitter (10 m > WORST_CAP m >= min(WORST_FACTOR q, WORST_CAP m));
a bimodal case fails both when its slower mode is 10 times slower.

Refused below MIN_RUNS runs x MIN_REPS repetitions per case, naming each case
and what it lacks. The output is a complete profile: the base profile's
thresholds and sections, the derived allowances, ``platform`` (lab, kernels,
drivers, firmware, switch and QEMU versions where the runs recorded them) and
``derivations`` (per allowance: runs, repetitions, median, quantile, max,
configuration part, the rule and its result).
"""

import math
import statistics
from dataclasses import dataclass, field

from .errors import LaghilError
from .inventory import switches_of
from .measure.model import percentile

MEDIAN_FACTOR = 2.5
WORST_QUANTILE = 90
WORST_FACTOR = 1.5
WORST_CAP = 8.0
# a slower mode of a case: >= MODE_MIN_REPS repetitions and MODE_MIN_SHARE of them,
# starting above MODE_RATIO x the faster mode's highest + MODE_GAP_MS
MODE_MIN_REPS = 2
MODE_MIN_SHARE = 0.15
MODE_RATIO = 2.0
MODE_GAP_MS = 10.0
# the platform's hiccup (the worst repetition's floor over its case's median): the
# pooled excesses' tail above their JITTER_TAIL_QUANTILE quantile u, taken as
# exponential (scale from the tail's median, so its largest values never set it) and
# extrapolated to JITTER_EXCEEDANCE per repetition: a CI run judges ~170 worst
# repetitions, so a healthy run fails one about 1 time in 60
JITTER_TAIL_QUANTILE = 95
JITTER_EXCEEDANCE = 1e-4
JITTER_MIN = 20
# the median of a run's 3 repetitions passes m + this quantile of the pooled excesses
# only when 2 of 3 do: 3 x 0.02^2, about 1 healthy run in 1000 per case
MEDIAN_JITTER_QUANTILE = 98
MIN_ALLOWANCE_MS = 5.0
ROUND_MS = 5.0
MIN_RUNS = 3
MIN_REPS = 3


class DeriveError(LaghilError):
    pass


@dataclass
class Samples:
    """The healthy repetitions of one (allowance kind, case key); ``each``: values
    judged one by one (a configuration step's figures), not a median and its worst."""
    kind: str
    key: str
    each: bool = False
    values: list = field(default_factory=list)
    runs: set = field(default_factory=set)
    config_ms: list = field(default_factory=list)
    figures: set = field(default_factory=set)
    failed_tests: set = field(default_factory=set)


def _up(x):
    return float(max(ROUND_MS, math.ceil(x / ROUND_MS) * ROUND_MS))


def collect(runs):
    """{(kind, key): Samples} of the judged median figures of ``runs``
    (RunResults of a lab the user declares healthy): every test that ran to
    its figures (passed or failed: a healthy lab's figure that failed an older
    bound is part of its distribution; counted in ``failed_tests``), only
    figures that carry their bound in parts with one allowance."""
    out = {}
    for run in runs:
        for t in run.tests:
            if t.outcome not in ("passed", "failed"):
                continue
            for m in t.measurements:
                b = m.bound
                if not b or b.get("statistic") not in ("median", "each") or not b.get("allowance"):
                    continue
                each = b["statistic"] == "each"
                if each:    # one value (a step resuming before its commands ended: 0)
                    vals = [max(0.0, float(m.value))] if isinstance(m.value, (int, float)) else []
                else:
                    vals = [v for v in m.repetitions if isinstance(v, (int, float))]
                if not vals:
                    continue
                s = out.setdefault((b["allowance"], b["case_key"]),
                                   Samples(b["allowance"], b["case_key"], each=each))
                s.values += vals
                s.runs.add(run.run_id)
                s.config_ms.append(float(b.get("config_ms") or 0.0))
                s.figures.add(m.name.removesuffix(" median"))
                if t.verdict == "failed":
                    s.failed_tests.add(f"{run.run_id}:{t.nodeid}")
    return out


def missing(samples, min_runs=MIN_RUNS, min_reps=MIN_REPS):
    """What each case lacks to be derived: ["kind key: 2 runs of the 3 needed"]."""
    out = []
    for (kind, key), s in sorted(samples.items()):
        if len(s.runs) < min_runs:
            out.append(f"{kind} {key}: {len(s.runs)} run(s) of the {min_runs} needed")
        elif len(s.values) < min_runs * min_reps:
            out.append(f"{kind} {key}: {len(s.values)} repetition(s) of the "
                       f"{min_runs * min_reps} needed ({min_runs} runs x {min_reps})")
    return out


def modes(values):
    """(lower, upper) of the sorted ``values`` split at their widest gap when both
    parts are modes: each at least MODE_MIN_REPS repetitions and MODE_MIN_SHARE
    of them, the upper's lowest value over MODE_RATIO x the lower's highest +
    MODE_GAP_MS; else (sorted values, []). One outlier is never a mode."""
    xs = sorted(values)
    best = None
    least = max(MODE_MIN_REPS, MODE_MIN_SHARE * len(xs))
    for i in range(1, len(xs)):
        lo, hi = xs[:i], xs[i:]
        if len(hi) < least:
            break
        if len(lo) >= least and hi[0] > MODE_RATIO * lo[-1] + MODE_GAP_MS:
            gap = hi[0] - lo[-1]
            if best is None or gap > best[0]:
                best = (gap, lo, hi)
    return (best[1], best[2]) if best else (xs, [])


def residuals(samples):
    """The platform's healthy hiccups: every repetition's excess over its case's
    median (>= 0), pooled over every case of one mode (a bimodal case's upper mode
    is its own distribution, not a hiccup)."""
    out = []
    for s in samples.values():
        lo, hi = modes(s.values)
        if hi or s.each:
            continue
        m = statistics.median(s.values)
        out += [v - m for v in s.values if v >= m]
    return out


def platform_jitter(samples, quantile=None, factor=None):
    """How far above its case's median a healthy repetition goes on this platform
    (ms), from :func:`residuals` (hundreds of repetitions pooled): with ``quantile``,
    ``factor`` x that quantile of them (at most the third largest); by default the
    tail above their JITTER_TAIL_QUANTILE quantile u taken as exponential, with its
    scale from the tail's median (median / ln 2: the largest excesses never set it),
    extrapolated to JITTER_EXCEEDANCE per repetition: u + scale x ln(share above u /
    JITTER_EXCEEDANCE). The rack's hiccups (a guest descheduled) reach past any
    quantile a few runs measure, so the bound extrapolates from the tail's shape
    rather than taking its largest value. 0 below JITTER_MIN excesses."""
    r = residuals(samples)
    if len(r) < JITTER_MIN:
        return 0.0
    if quantile is not None:
        # never the two largest: at most the third largest, whatever the pool's size
        q = min(quantile, 100.0 * (len(r) - 3) / (len(r) - 1))
        return (1.0 if factor is None else factor) * percentile(r, q)
    u = percentile(r, JITTER_TAIL_QUANTILE)
    tail = [x - u for x in r if x > u]
    if len(tail) < 3:
        return u
    scale = statistics.median(tail) / math.log(2)
    return u + scale * math.log(len(tail) / len(r) / JITTER_EXCEEDANCE)


def derive_one(s, jitter=0.0, median_jitter=0.0):
    """(allowance ms, stall ms, derivation dict) of one case's Samples, given the
    platform's jitter (:func:`platform_jitter`: ``jitter`` for the worst
    repetition, ``median_jitter`` for the median of a run's repetitions)."""
    m = statistics.median(s.values)
    q = percentile(s.values, WORST_QUANTILE)
    lo, hi = modes(s.values)
    m_top = statistics.median(hi) if hi else m     # the slowest mode's median
    if hi:      # the worst repetition is judged against the slowest mode's own spread
        q = percentile(hi, WORST_QUANTILE)
    config = max(s.config_ms)
    capped = m_top > 0 and WORST_FACTOR * q > WORST_CAP * m_top
    top = min(WORST_FACTOR * q, WORST_CAP * m_top) if m_top > 0 else WORST_FACTOR * q
    worst = max(top, m + jitter)
    if s.each:
        # each value judged alone (a step): the worst repetition's rule, no median
        allowance = _up(max(worst, config + MIN_ALLOWANCE_MS) - config)
        bound, stall = config + allowance, 0.0
    else:
        median_bound = max(MEDIAN_FACTOR * m, config + MIN_ALLOWANCE_MS, m + median_jitter)
        if hi:
            # the median of a run's few repetitions lands in the slower mode whenever
            # most of them do (2 of 3 when 30% of them wait: 1 run in 5), so it is
            # judged like a repetition of that mode, without the platform's jitter
            median_bound = max(median_bound, top)
        allowance = _up(median_bound - config)
        bound = config + allowance
        stall = _up(max(worst, bound) - bound)
    return allowance, stall, {
        "figures": sorted(s.figures), "runs": len(s.runs), "repetitions": len(s.values),
        "median_ms": round(m, 3), f"p{WORST_QUANTILE}_ms": round(q, 3),
        "p90_of": "the slower mode" if hi else "all repetitions",
        "max_ms": round(max(s.values), 3), "min_ms": round(min(s.values), 3),
        "from_failed_tests": len(s.failed_tests),
        "config_ms": round(config, 3), "jitter_ms": round(jitter, 3),
        "median_jitter_ms": round(median_jitter, 3),
        "rule": ((f"each value judged alone: allowance = up{ROUND_MS:g}(max(min("
                  f"{WORST_FACTOR:g} x p{WORST_QUANTILE} (of the slowest mode), {WORST_CAP:g} x "
                  f"its median), median + jitter, config + {MIN_ALLOWANCE_MS:g}) - config)")
                 if s.each else
                 (f"allowance = up{ROUND_MS:g}(max({MEDIAN_FACTOR:g} x median, config + "
                  f"{MIN_ALLOWANCE_MS:g}, median + median jitter"
                  + (", the slower mode's worst" if hi else "") + ") - config); stall = "
                  f"up{ROUND_MS:g}(max(min("
                  f"{WORST_FACTOR:g} x p{WORST_QUANTILE} (of the slowest mode), {WORST_CAP:g} x "
                  "its median), median + jitter, bound) - bound)")),
        "allowance_ms": allowance, **({} if s.each else {"stall_ms": stall}),
        **({"bound_ms": round(bound, 3)} if s.each else
           {"median_bound_ms": round(bound, 3), "worst_bound_ms": round(bound + stall, 3)}),
        **({"modes": {"lower": [round(v, 1) for v in lo], "upper": [round(v, 1) for v in hi],
                      "note": (f"bimodal: {len(hi)} of {len(s.values)} repetitions in a "
                               f"slower mode (median {m_top:.1f} ms); the worst repetition "
                               "is judged against that mode, and so is the median of a run's "
                               "few repetitions, which lands in it when most of them do")}}
           if hi else {}),
        **({"capped": f"{WORST_FACTOR:g} x p{WORST_QUANTILE} {WORST_FACTOR * q:.1f} ms is over "
                      f"{WORST_CAP:g} x the slowest mode's median {m_top:.1f}: capped there "
                      "(a healthy repetition above it was an outlier, not a mode; judge this "
                      "case with more repetitions if it recurs)"} if capped else {}),
    }


def platform_of(runs, lab):
    """What the runs ran on: the lab, and per node the kernel and each port's
    driver/version/firmware (their inventory), each switch's platform and NOS
    version, QEMU where recorded."""
    kernels, ports, qemu = set(), {}, set()
    for run in runs:
        for node, inv in (run.inventory or {}).items():
            if inv.get("kernel"):
                kernels.add(inv["kernel"])
            for port, d in (inv.get("ports") or {}).items():
                if isinstance(d, dict):
                    ports[f"{node}:{port}"] = {k: d.get(k) for k in ("driver", "version",
                                                                      "firmware")}
        for node, inv in (run.inventory or {}).items():
            if inv.get("qemu"):
                qemu.add(str(inv["qemu"]))
    switches = {}
    for run in runs:
        for name, d in switches_of(run.inventory).items():
            if d.get("version"):
                switches[name] = {"platform": d.get("platform"), "version": d["version"]}
    out = {"lab": lab, "runs": sorted(r.run_id for r in runs), "kernels": sorted(kernels),
           "ports": dict(sorted(ports.items()))}
    if switches:
        out["switches"] = dict(sorted(switches.items()))
    if qemu:
        out["qemu"] = sorted(qemu)
    return out


def derive_profile(runs, lab, base, name, version=1, min_runs=MIN_RUNS, min_reps=MIN_REPS,
                   keep=()):
    """The profile (a dict ready for YAML) derived from ``runs`` (RunResults of
    lab ``lab``) on top of ``base`` (a Profile: thresholds and other sections
    are kept; its allowances are the fallback for what the runs did not judge).
    ``keep``: allowance kinds taken from ``base`` as they are, not derived.
    DeriveError naming every case that lacks runs or repetitions, or when the
    runs are of another lab."""
    if not runs:
        raise DeriveError("no runs given: derive needs the results.json of at least "
                          f"{min_runs} healthy runs")
    other = sorted({r.lab_name for r in runs} - {lab})
    if other:
        raise DeriveError(f"runs of lab(s) {', '.join(map(str, other))} given to derive lab "
                          f"{lab!r}: a profile is derived from its own lab's runs")
    from .measure.figures import ALLOWANCE_LABELS
    kinds = [k for _, k in ALLOWANCE_LABELS]
    unknown = sorted(set(keep) - set(kinds))
    if unknown:
        raise DeriveError(f"--keep {', '.join(unknown)}: not an allowance kind "
                          f"({', '.join(kinds)})")
    samples = {k: v for k, v in collect(runs).items() if k[0] not in keep}
    problems = []
    if len(runs) < min_runs:
        problems.append(f"{len(runs)} run(s) of the {min_runs} needed")
    if not samples:
        problems.append("no judged failover figure with its bound in parts (results.json "
                        "`bound`): run the failover tests with this laghil")
    problems += missing(samples, min_runs, min_reps)
    if problems:
        raise DeriveError("cannot derive a profile for lab " + repr(lab) + ":\n  "
                          + "\n  ".join(problems))
    allowances = {k: dict(v) for k, v in base.allowances.items()}
    derivations, stalls = {}, {}
    jitter = platform_jitter(samples)
    median_jitter = platform_jitter(samples, MEDIAN_JITTER_QUANTILE, 1.0)
    for (kind, key), s in sorted(samples.items()):
        a, st, d = derive_one(s, jitter, median_jitter)
        allowances.setdefault(kind, {})[key] = a
        derivations.setdefault(kind, {})[key] = d
        if not s.each:
            stalls[f"{kind}:{key}"] = st    # per figure: a fail-back's modes loosen no switch-over
    allowances.setdefault("stall_ms", {}).update(stalls)
    return {
        "name": name, "version": version,
        "description": (f"Derived by `laghil profile derive` from {len(runs)} healthy run(s) of "
                        f"lab {lab} (laghil/derive.py: the rule in each derivation)."),
        "platform": platform_of(runs, lab),
        "thresholds": base.thresholds,
        "allowances": allowances,
        **{k: v for k, v in base.sections.items() if k not in ("platform", "derivations")},
        "derivations": derivations,
    }
