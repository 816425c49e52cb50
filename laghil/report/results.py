"""A run's results: what each test did and measured, as data and as results.json.

``RunResults`` holds one ``TestResult`` per test; ``to_json()`` writes the stable
schema documented in docs/results-json.md (``schema_version`` 2) and
``RunResults.from_dict`` reads it (and version 1) back, so runs can be compared and
re-rendered.

A test's *verdict* is stricter than pytest's outcome: a skipped test is
"skipped" (never "passed"), an expected failure (a known defect) is "xfailed"
(neither passed nor skipped), and a test that passed while one of its thresholded
figures failed is "failed" - a report never shows PASS next to a failing figure.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Optional

from laghil.measure.model import Event, Measurement, Series, Timeline

SCHEMA_VERSION = 2
READS = (1, 2)
OUTCOMES = ("passed", "failed", "skipped", "xfailed", "error")
XFAIL_PREFIX = "expected failure"
VERDICTS = OUTCOMES


@dataclass
class TestResult:
    """One test: its pytest outcome and what it measured."""
    __test__ = False  # not a pytest test class

    nodeid: str
    name: str
    outcome: str                     # passed | failed | skipped | xfailed | error (pytest's)
    duration_s: float = 0.0
    skip_reason: str = ""
    message: str = ""                # failure / error summary
    markers: list = field(default_factory=list)
    measurements: list = field(default_factory=list)   # [Measurement]
    timelines: list = field(default_factory=list)      # [Timeline]
    commands_log: Optional[str] = None                 # path relative to the run dir

    def __post_init__(self):
        if self.outcome not in OUTCOMES:
            raise ValueError(f"outcome {self.outcome!r} is not one of {', '.join(OUTCOMES)}")

    @property
    def failed_measurements(self):
        return [m for m in self.measurements if m.verdict == "fail"]

    @property
    def verdict(self):
        """passed | failed | skipped | xfailed | error; a failing figure fails a passed test."""
        if self.outcome == "passed" and self.failed_measurements:
            return "failed"
        return self.outcome

    @property
    def reason(self):
        """Why the verdict is not "passed" (empty when it is)."""
        if self.outcome in ("skipped", "xfailed"):
            return self.skip_reason
        if self.outcome in ("failed", "error"):
            return self.message
        bad = self.failed_measurements
        if bad:
            return "; ".join(f"figure out of threshold: {m.describe()}" for m in bad)
        return ""

    def key_measurement(self):
        """The figure a summary shows: the first failing, else first judged, else first."""
        for pick in (lambda m: m.verdict == "fail", lambda m: m.threshold is not None,
                     lambda m: True):
            for m in self.measurements:
                if pick(m):
                    return m
        return None

    def to_dict(self):
        return {
            "test_id": self.nodeid,
            "name": self.name,
            "verdict": self.verdict,
            "outcome": self.outcome,
            "duration_s": _num(self.duration_s),
            "reason": self.reason,
            "markers": list(self.markers),
            "commands_log": self.commands_log,
            "measurements": [measurement_to_dict(m) for m in self.measurements],
            "timelines": [timeline_to_dict(t) for t in self.timelines],
        }

    @classmethod
    def from_dict(cls, d):
        outcome = d["outcome"]
        if outcome == "skipped" and d.get("reason", "").startswith(XFAIL_PREFIX):
            outcome = "xfailed"     # schema_version 1 counted expected failures as skips
        return cls(
            nodeid=d["test_id"], name=d.get("name") or d["test_id"].split("::")[-1],
            outcome=outcome, duration_s=d.get("duration_s") or 0.0,
            skip_reason=d.get("reason", "") if outcome in ("skipped", "xfailed") else "",
            message=d.get("reason", "") if outcome in ("failed", "error") else "",
            markers=list(d.get("markers", [])),
            measurements=[measurement_from_dict(m) for m in d.get("measurements", [])],
            timelines=[timeline_from_dict(t) for t in d.get("timelines", [])],
            commands_log=d.get("commands_log"))


@dataclass
class RunResults:
    """One pytest session on one lab."""
    run_id: str
    lab_name: str
    lab_kind: str
    profile: str
    started: float                   # epoch seconds
    finished: float                  # epoch seconds
    inventory: dict = field(default_factory=dict)   # {node: {kernel, ports: {...}, ...}}
    tests: list = field(default_factory=list)       # [TestResult]
    lab_state_diff: list = field(default_factory=list)  # lines: lab not left as found
    # the lab at the start: undos a killed run left (replayed), baseline diff and repairs
    lab_start: dict = field(default_factory=dict)
    # the lab is the virtual twin of a physical one: {"of", "source", "stand_ins", "port_map"}
    twin: dict = field(default_factory=dict)
    # why the profile is another platform's, when --profile named it anyway ("" otherwise)
    profile_note: str = ""
    seeded: str = ""          # a defect seeded in the whole run (--seed-slow-carrier)
    # where the profile's allowances were derived (its `platform`: lab, kernels, ports,
    # QEMU, runs) and how this run's inventory differs from it (one line each)
    platform: dict = field(default_factory=dict)
    platform_diff: list = field(default_factory=list)
    # --certify=PLAN: {"plan", "version", "sha256", "reps", "claim", "cases", "tests"}
    certification: dict = field(default_factory=dict)

    def summary(self):
        """{"total", "passed", "failed", "skipped", "xfailed", "error"} counted by verdict."""
        counts = {"total": len(self.tests), **{v: 0 for v in VERDICTS}}
        for t in self.tests:
            counts[t.verdict] += 1
        return counts

    @property
    def verdict(self):
        """"failed" when any test failed or errored or the lab was left changed."""
        s = self.summary()
        return "failed" if (s["failed"] or s["error"] or self.lab_state_diff) else "passed"

    def to_dict(self):
        return {
            "schema_version": SCHEMA_VERSION,
            "run_id": self.run_id,
            "lab": {"name": self.lab_name, "kind": self.lab_kind,
                    **({"twin": _clean(self.twin)} if self.twin else {})},
            "profile": self.profile,
            **({"profile_note": self.profile_note} if self.profile_note else {}),
            **({"seeded": self.seeded} if self.seeded else {}),
            **({"certification": _clean(self.certification)} if self.certification else {}),
            "profile_platform": _clean(self.platform),
            "platform_diff": list(self.platform_diff),
            "started": iso_time(self.started),
            "finished": iso_time(self.finished),
            "duration_s": _num(round(self.finished - self.started, 3)),
            "verdict": self.verdict,
            "summary": self.summary(),
            "lab_state_diff": list(self.lab_state_diff),
            "lab_start": _clean(self.lab_start),
            "inventory": _clean(self.inventory),
            "tests": [t.to_dict() for t in self.tests],
        }

    def to_json(self, indent=2):
        """Strict JSON (NaN and infinities become null)."""
        return json.dumps(_clean(self.to_dict()), indent=indent, allow_nan=False) + "\n"

    @classmethod
    def from_dict(cls, d):
        if d.get("schema_version") not in READS:
            raise ValueError(f"results schema_version {d.get('schema_version')!r}, "
                             f"this laghil reads {' and '.join(map(str, READS))}")
        return cls(run_id=d["run_id"], lab_name=d["lab"]["name"], lab_kind=d["lab"]["kind"],
                   profile=d["profile"], started=parse_time(d["started"]),
                   finished=parse_time(d["finished"]), inventory=d.get("inventory", {}),
                   tests=[TestResult.from_dict(t) for t in d.get("tests", [])],
                   lab_state_diff=list(d.get("lab_state_diff", [])),
                   lab_start=dict(d.get("lab_start") or {}),
                   twin=dict(d["lab"].get("twin") or {}),
                   profile_note=str(d.get("profile_note") or ""),
                   seeded=str(d.get("seeded") or ""),
                   platform=dict(d.get("profile_platform") or {}),
                   platform_diff=list(d.get("platform_diff") or []),
                   certification=dict(d.get("certification") or {}))

    @classmethod
    def from_json(cls, text):
        return cls.from_dict(json.loads(text))


# ---- measurements and timelines as plain data --------------------------------

def measurement_to_dict(m):
    return {
        "name": m.name, "value": _num(m.value), "unit": m.unit, "method": m.method,
        "resolution": _num(m.resolution), "repetitions": [_num(v) for v in m.repetitions],
        "stats": {k: _num(v) for k, v in m.stats.items()},
        "threshold": _num(m.threshold), "comparison": m.comparison,
        "verdict": m.verdict, "profile": m.profile, "note": m.note, "basis": m.basis,
        "baseline": ({k: (_num(v) if isinstance(v, float) else v) for k, v in m.baseline.items()}
                     if m.baseline else None),
        "bound": ({k: (_num(v) if isinstance(v, float) else v) for k, v in m.bound.items()}
                  if m.bound else None),
    }


def measurement_from_dict(d):
    return Measurement(name=d["name"], value=d.get("value"), unit=d.get("unit", ""),
                       method=d.get("method", ""), resolution=d.get("resolution"),
                       repetitions=list(d.get("repetitions") or []),
                       threshold=d.get("threshold"), comparison=d.get("comparison", "<="),
                       profile=d.get("profile"), note=d.get("note", ""),
                       basis=d.get("basis", ""), baseline=d.get("baseline"),
                       bound=d.get("bound"))


def timeline_to_dict(t):
    return {
        "title": t.title,
        "series": [{"label": s.label, "unit": s.unit, "t0": _num(s.t0), "bin_s": _num(s.bin_s),
                    "values": [_num(v) for v in s.values]} for s in t.series],
        "events": [{"t": _num(e.t), "label": e.label, "kind": e.kind, "clock": e.clock}
                   for e in t.events],
    }


def timeline_from_dict(d):
    return Timeline(
        title=d.get("title", ""),
        series=[Series(label=s["label"], t0=s["t0"], bin_s=s["bin_s"], values=list(s["values"]),
                       unit=s.get("unit", "pkt/s")) for s in d.get("series", [])],
        events=[Event(t=e["t"], label=e["label"], kind=e.get("kind", "info"),
                      clock=e.get("clock", "controller")) for e in d.get("events", [])])


# ---- helpers ------------------------------------------------------------------

def iso_time(epoch):
    """Epoch seconds -> '2025-06-01T12:00:00.123+00:00' (UTC); None stays None."""
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="milliseconds")


def parse_time(text):
    return None if text is None else datetime.fromisoformat(text).timestamp()


def _num(v):
    """A finite number, or None (JSON has no NaN)."""
    if v is None or isinstance(v, bool):
        return v
    if isinstance(v, (int, float)):
        return v if math.isfinite(v) else None
    return v


def _clean(obj):
    """Recursively: non-finite floats -> None, tuples -> lists, other objects -> str."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, float):
        return _num(obj)
    if obj is None or isinstance(obj, (str, int, bool)):
        return obj
    return str(obj)
