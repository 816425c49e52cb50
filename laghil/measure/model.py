"""What a test measured, in a form reports can show and compare across runs.

Every figure carries its method and its resolution (docs/measurement.md): a failover
time without them is not a measurement.
"""

from __future__ import annotations

import math
from dataclasses import KW_ONLY, asdict, dataclass, field
from typing import Optional


def percentile(values, p):
    """Linear-interpolated percentile (p in 0..100) of a non-empty sequence."""
    xs = sorted(values)
    if not xs:
        raise ValueError("percentile of no values")
    k = (len(xs) - 1) * p / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    return xs[lo] if lo == hi else xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def summarize(values):
    """{"n", "min", "median", "p95", "max"} of repetitions (None when empty)."""
    vs = [v for v in values if v is not None]
    if not vs:
        return {"n": 0, "min": None, "median": None, "p95": None, "max": None}
    return {"n": len(vs), "min": min(vs), "median": percentile(vs, 50),
            "p95": percentile(vs, 95), "max": max(vs)}


@dataclass
class Measurement:
    """One figure of a test.

    ``value`` is what is judged (for repeated trials, by convention the worst
    repetition unless ``method`` says otherwise); ``repetitions`` keeps each
    trial's value; ``threshold`` with ``comparison`` ("<=" or ">=") gives the
    verdict; no threshold means an informational figure.
    """
    name: str
    value: Optional[float]
    unit: str
    method: str
    _: KW_ONLY                              # everything after ``method`` by keyword
    resolution: Optional[float] = None      # in ``unit``
    repetitions: list = field(default_factory=list)
    threshold: Optional[float] = None
    comparison: str = "<="
    profile: Optional[str] = None           # the threshold profile it came from
    note: str = ""
    basis: str = ""                         # how the threshold follows from the configuration
    # against --baseline: {"median", "n", "current", "change", "worse"} (None: not compared)
    baseline: Optional[dict] = None
    # a bound's parts, for `laghil profile derive`: {"case_key", "allowance" (its kind,
    # e.g. "switchover_ms"), "allowance_ms", "config_ms" (the rest of the bound),
    # "statistic" ("median" or "max")}; None for a flat threshold or none
    bound: Optional[dict] = None

    @property
    def verdict(self):
        if self.threshold is None:
            return "info"
        if self.value is None or (isinstance(self.value, float) and math.isnan(self.value)):
            return "fail"
        ok = self.value <= self.threshold if self.comparison == "<=" else self.value >= self.threshold
        return "pass" if ok else "fail"

    @property
    def stats(self):
        return summarize(self.repetitions or ([self.value] if self.value is not None else []))

    def to_dict(self):
        d = asdict(self)
        d["verdict"] = self.verdict
        d["stats"] = self.stats
        return d

    def describe(self):
        """'T_gap max 23.7 ms (gap outage, resolution 0.5 ms) <= 100 ms'."""
        v = "n/a" if self.value is None else f"{self.value:.4g}"
        res = f", resolution {self.resolution:.3g} {self.unit}" if self.resolution else ""
        thr = f" {self.comparison} {self.threshold:g} {self.unit}" if self.threshold is not None else ""
        return f"{self.name} {v} {self.unit} ({self.method}{res}){thr}"


@dataclass
class Event:
    """A marker on a timeline: a fault, a restore, a kernel bond/team event."""
    t: float            # wall-clock epoch seconds (controller clock unless ``clock`` says)
    label: str
    kind: str = "fault"  # fault | restore | kernel | info
    clock: str = "controller"


@dataclass
class Series:
    """Receive rate against time, one bin per ``bin_s``, starting at ``t0`` (epoch s)."""
    label: str
    t0: float
    bin_s: float
    values: list         # packets (or bits) per second per bin
    unit: str = "pkt/s"


@dataclass
class Timeline:
    title: str
    series: list = field(default_factory=list)    # [Series]
    events: list = field(default_factory=list)    # [Event]

    def to_dict(self):
        return asdict(self)
