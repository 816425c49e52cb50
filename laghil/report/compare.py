"""Regression against a baseline: each judged figure of a run compared with the
same test's figure in one or more earlier runs (results.json files, or a folder
of them), over the repetitions, never one sample.

    base = load_runs("reports/20261130-nightly/")        # one file, or a folder
    rows = compare(base, RunResults.from_json(text), tolerance=0.5)
    [r for r in rows if r.worse]

A figure is worse when its median over the repetitions moved in its bad
direction (up for a ``<=`` threshold, down for ``>=``) by more than
``tolerance`` times the baseline median, and by more than twice its
resolution (a change inside the measurement's own resolution is not one).
Only figures with a threshold are compared: an informational figure has no
bad direction.
"""

import json
import statistics
from dataclasses import dataclass
from pathlib import Path

from ..errors import LaghilError
from .results import RunResults


class CompareError(LaghilError):
    pass


@dataclass(frozen=True)
class Comparison:
    test_id: str
    figure: str
    unit: str
    comparison: str             # "<=" (lower is better) or ">="
    baseline: float             # median over the baseline's repetitions
    current: float              # median over this run's repetitions
    n_baseline: int
    n_current: int
    worse: bool

    @property
    def change(self):
        """Relative change current / baseline - 1 (None when the baseline is 0)."""
        return None if not self.baseline else self.current / self.baseline - 1

    def describe(self):
        ch = "n/a" if self.change is None else f"{self.change:+.0%}"
        return (f"{self.test_id} {self.figure}: {self.current:.4g} {self.unit} (median of "
                f"{self.n_current}) against baseline {self.baseline:.4g} {self.unit} (median of "
                f"{self.n_baseline}), {ch}{' WORSE' if self.worse else ''}")


def load_runs(path):
    """A results.json, a run folder holding one, or a folder of run folders ->
    [RunResults]; CompareError naming the path when there is none."""
    p = Path(path)
    files = [p] if p.is_file() else sorted(p.glob("results.json")) + sorted(p.glob("*/results.json"))
    if not files:
        raise CompareError(f"baseline {path}: no results.json there (give a run's results.json, "
                           "its folder, or a folder of run folders)")
    runs = []
    for f in files:
        try:
            runs.append(RunResults.from_json(f.read_text()))
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise CompareError(f"baseline {f}: not a laghil results.json ({type(e).__name__}: "
                               f"{e})") from None
    return runs


def _samples(m):
    vals = [v for v in (m.repetitions or [m.value]) if isinstance(v, (int, float))]
    return vals


def _figures(runs):
    """{(test_id, figure): (unit, comparison, resolution, [samples...])} over ``runs``."""
    out = {}
    for run in runs:
        for t in run.tests:
            for m in t.measurements:
                if m.threshold is None:
                    continue
                key = (t.nodeid, m.name)
                unit, cmp_, res, vals = out.get(key, (m.unit, m.comparison, m.resolution, []))
                out[key] = (unit, cmp_, res, vals + _samples(m))
    return out


def is_worse(comparison, base, cur, tolerance, resolution=None):
    """Did the median move in its bad direction past the tolerance and the resolution?"""
    delta = (cur - base) if comparison == "<=" else (base - cur)
    return delta > tolerance * abs(base) and delta > 2 * (resolution or 0.0)


def compare(baseline_runs, current, tolerance):
    """[Comparison] of every judged figure that both the baseline and ``current``
    (a RunResults) have, in the current run's order."""
    if tolerance < 0:
        raise CompareError(f"tolerance {tolerance} must be >= 0")
    base = _figures(baseline_runs)
    rows = []
    for key, (unit, cmp_, res, vals) in _figures([current]).items():
        if key not in base or not vals or not base[key][3]:
            continue
        b, c = statistics.median(base[key][3]), statistics.median(vals)
        rows.append(Comparison(key[0], key[1], unit, cmp_, b, c, len(base[key][3]), len(vals),
                               is_worse(cmp_, b, c, tolerance, res)))
    return rows


def format_rows(rows):
    """A plain-text table of comparisons, worse ones first."""
    if not rows:
        return "no figure in common with the baseline"
    lines = [r.describe() for r in sorted(rows, key=lambda r: not r.worse)]
    worse = sum(r.worse for r in rows)
    return "\n".join(lines + [f"{worse} of {len(rows)} figure(s) worse than the baseline"])


def to_json(rows):
    return json.dumps([{**r.__dict__, "change": r.change} for r in rows], indent=2)
