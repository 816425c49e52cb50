"""The run history of a lab, and its figures for dashboards.

Every run appends one line to ``reports/history/<lab>.jsonl`` (or the file
``--history`` names, e.g. a folder a team's runners share): its judged figures
per test (median, repetitions, bound, verdict), its verdicts, and what it ran
on (kernel, driver and firmware per port, the profile) with a digest of that
inventory, so that a later report can say what changed since the last run and
draw a case's trend. The line is written whole, once, when the run's results
are; a run killed before leaves nothing, and a line a crash cut short is
skipped by the reader (:func:`read_history`), so the history stays readable.

Each run also writes its figures as InfluxDB line protocol (``figures.lp``)
and a Prometheus text file (``figures.prom``): one point per test and figure,
tagged with lab, suite, case, mode, fault method, kernel and firmware; the
files are what a lab pushes to its time-series store (no server is needed for
a run). The functions are pure over a results.json object."""

import fcntl
import hashlib
import json
import os
import re
from pathlib import Path

from ..names import check_name

HISTORY_VERSION = 1


# ---- what a run is made of ----------------------------------------------------------------
def inventory_facts(inventory):
    """{"kernel": {node: release}, "ports": {node: {port: {driver, version,
    firmware}}}, "digest": sha256 of both (16 hex)} of a results.json inventory."""
    hosts = {n: i for n, i in (inventory or {}).items()
             if not (isinstance(i, dict) and isinstance(i.get("switch"), dict))}
    kernel = {n: (i or {}).get("kernel") for n, i in sorted(hosts.items())}
    ports = {n: {p: {k: (v or {}).get(k) for k in ("driver", "version", "firmware")}
                 for p, v in sorted(((i or {}).get("ports") or {}).items())}
             for n, i in sorted(hosts.items())}
    body = json.dumps({"kernel": kernel, "ports": ports}, sort_keys=True)
    return {"kernel": kernel, "ports": ports,
            "digest": hashlib.sha256(body.encode()).hexdigest()[:16]}


def suite_of(test_id):
    """``suites/bonding/test_bond_modes.py::...`` -> ``bonding`` (and
    ``selftests/smoke/...`` -> ``smoke``: the rack's own checks)."""
    parts = test_id.split("::", 1)[0].split("/")
    return (parts[1] if len(parts) > 2 and parts[0] in ("suites", "selftests")
            else parts[0].rsplit(".", 1)[0])


def mode_of(name):
    """The case's mode or runner from a test name: the parameter's first word
    (``test_x[802.3ad-via-switch[miimon=10]]`` -> ``802.3ad-via-switch``), or ""."""
    m = re.search(r"\[([^\[\]]+?)(?:\[|\])", name)
    return m.group(1) if m else ""


def fault_of(test):
    """The fault method of a test's first fault event: what the injector's
    label names before its colon (``link-down: h1:eth1 link down`` ->
    ``link-down``), else the whole label; "" without a fault event."""
    for tl in test.get("timelines") or []:
        for ev in tl.get("events") or []:
            if ev.get("kind") == "fault" and ev.get("label"):
                return ev["label"].split(":", 1)[0].strip()
    return ""


def run_record(run):
    """The history line of a run (a results.json object)."""
    tests = {}
    for t in run.get("tests") or []:
        figures = {}
        for m in t.get("measurements") or []:
            stats = m.get("stats") or {}
            bound = m.get("bound") or {}
            figures[m["name"]] = {
                "unit": m.get("unit"), "value": m.get("value"), "median": stats.get("median"),
                "min": stats.get("min"), "max": stats.get("max"), "n": stats.get("n"),
                "repetitions": m.get("repetitions") or [], "threshold": m.get("threshold"),
                "comparison": m.get("comparison"), "statistic": bound.get("statistic"),
                "resolution": m.get("resolution"), "verdict": m.get("verdict")}
        tests[t["test_id"]] = {"verdict": t.get("verdict"), "name": t.get("name"),
                               "suite": suite_of(t["test_id"]), "mode": mode_of(t.get("name", "")),
                               "fault": fault_of(t), "figures": figures}
    lab = run.get("lab") or {}
    from .. import __version__
    return {"history_version": HISTORY_VERSION, "run_id": run.get("run_id"),
            "laghil": __version__,
            "started": run.get("started"), "lab": lab.get("name"), "lab_kind": lab.get("kind"),
            "profile": run.get("profile"), "verdict": run.get("verdict"),
            "inventory": inventory_facts(run.get("inventory")), "tests": tests}


# ---- the file -----------------------------------------------------------------------------
def history_path(reports_root, lab_name):
    return Path(reports_root) / "history" / f"{check_name(lab_name, 'lab name')}.jsonl"


def append_history(path, record):
    """Append ``record`` as one line: one writer at a time (an exclusive lock on
    the file), one write, fsynced. A line a crash cut short before is closed
    first, so it stays one damaged line the reader skips."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(record, separators=(",", ":"), sort_keys=True) + "\n").encode()
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = b"\n" + line
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)          # releases the lock


def read_history(path, lab=None):
    """(records oldest first, damaged line numbers) of a history file; ``lab``:
    only that lab's runs. A missing file is an empty history."""
    path = Path(path)
    if not path.exists():
        return [], []
    records, damaged = [], []
    for i, line in enumerate(path.read_text(encoding="utf-8", errors="replace").split("\n"), 1):
        if not line.strip():
            continue
        try:
            r = json.loads(line)
            if not isinstance(r, dict) or not isinstance(r.get("tests"), dict):
                raise ValueError("not a run record")
        except ValueError:
            damaged.append(i)
            continue
        if lab is None or r.get("lab") == lab:
            records.append(r)
    return records, damaged


# ---- for dashboards -------------------------------------------------------------------------
def _points(run):
    """(tags, fields, verdict) per test and judged or informational figure."""
    rec = run_record(run)
    inv = rec["inventory"]
    kernel = ",".join(sorted({k for k in inv["kernel"].values() if k}))
    firmware = ",".join(sorted({p.get("firmware") or "" for ports in inv["ports"].values()
                                for p in ports.values()} - {""}))
    for test_id, t in rec["tests"].items():
        for name, f in t["figures"].items():
            if f["value"] is None and f["median"] is None:
                continue
            tags = {"lab": rec["lab"] or "", "suite": t["suite"], "case": t["name"] or test_id,
                    "figure": name, "unit": f["unit"] or "", "mode": t["mode"],
                    "fault": t["fault"], "kernel": kernel, "firmware": firmware,
                    "profile": rec["profile"] or ""}
            fields = {k: f[k] for k in ("value", "median", "threshold", "n") if f[k] is not None}
            yield tags, fields, f["verdict"]


def _ts_ns(started):
    from datetime import datetime
    return int(datetime.fromisoformat(started).timestamp() * 1e9) if started else None


def _lp_key(s):
    return re.sub(r"([,= ])", r"\\\1", str(s).replace("\\", "\\\\").replace("\n", " "))


def _lp_field(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return f"{v}i"
    if isinstance(v, float):
        return repr(v)
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'


def influx_lines(run):
    """InfluxDB line protocol: measurement ``laghil_figure``, one line per test
    and figure (tags: lab, suite, case, figure, unit, mode, fault, kernel,
    firmware, profile; fields: value, median, threshold, n, verdict), at the
    run's start. Empty tag values are left out, as the protocol requires."""
    ts = _ts_ns(run.get("started"))
    out = []
    for tags, fields, verdict in _points(run):
        t = ",".join(f"{_lp_key(k)}={_lp_key(v)}" for k, v in sorted(tags.items()) if v != "")
        fields = {**{k: float(v) if k != "n" else int(v) for k, v in fields.items()},
                  "verdict": verdict or ""}
        f = ",".join(f"{_lp_key(k)}={_lp_field(v)}" for k, v in fields.items())
        out.append(f"laghil_figure,{t} {f}" + (f" {ts}" if ts is not None else ""))
    return "\n".join(out) + ("\n" if out else "")


def _prom_label(v):
    return str(v).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def prometheus_text(run):
    """Prometheus text exposition: gauges ``laghil_figure_value``,
    ``laghil_figure_median`` and ``laghil_figure_threshold`` per test and figure
    (same labels as :func:`influx_lines`), and ``laghil_figure_pass`` (1 pass,
    0 fail; informational figures have none)."""
    series = {"value": [], "median": [], "threshold": [], "pass": []}
    for tags, fields, verdict in _points(run):
        labels = ",".join(f'{k}="{_prom_label(v)}"' for k, v in sorted(tags.items()))
        for k in ("value", "median", "threshold"):
            if k in fields:
                series[k].append(f"laghil_figure_{k}{{{labels}}} {float(fields[k])!r}")
        if verdict in ("pass", "fail"):
            series["pass"].append(f"laghil_figure_pass{{{labels}}} {int(verdict == 'pass')}")
    helps = {"value": "the judged value of a figure (its unit in the unit label)",
             "median": "the median over a figure's repetitions",
             "threshold": "the bound a figure is judged against",
             "pass": "1 when the figure is within its bound, 0 when not"}
    out = []
    for k, lines in series.items():
        if lines:
            out += [f"# HELP laghil_figure_{k} {helps[k]}", f"# TYPE laghil_figure_{k} gauge",
                    *lines]
    return "\n".join(out) + ("\n" if out else "")


# ---- a trend in a terminal ------------------------------------------------------------------
def trend_table(records, case=None, figure=None, last=10):
    """Lines of a terminal table: per test (whose name contains ``case``, on
    a line of its own) and figure (a line each below it), the median of each of the last ``last`` runs, oldest first, with
    the bound and the run's verdict mark (``!`` failed), and where the
    inventory changed (``*`` before the run that first has a new digest)."""
    records = records[-last:]
    keys = []
    for r in records:
        for tid, t in r["tests"].items():
            if case and case not in (t.get("name") or tid):
                continue
            for name in t["figures"]:
                if (figure is None or figure == name) and (tid, name) not in keys:
                    keys.append((tid, name))
    if not records:
        return ["no runs in the history"]
    head = "  ".join(f"{r['run_id'][:15]:>15}" for r in records)
    changed = ["*" if i and r["inventory"]["digest"] != records[i - 1]["inventory"]["digest"]
               else " " for i, r in enumerate(records)]
    lines = [f"{'case / figure':<60}  {head}",
             f"{'(* inventory changed, ! figure failed)':<60}  "
             + "  ".join(f"{c:>15}" for c in changed)]
    shown = None
    for tid, name in keys:
        if tid != shown:        # the test's whole name once, its figures below it
            shown = tid
            lines.append(records[-1]["tests"].get(tid, {}).get("name") or tid)
        cells = []
        unit = bound = ""
        for r in records:
            f = (r["tests"].get(tid) or {}).get("figures", {}).get(name)
            if f is None:
                cells.append(f"{'-':>15}")
                continue
            v = f["median"] if f["median"] is not None else f["value"]
            unit, bound = f["unit"] or "", f["threshold"]
            mark = "!" if f["verdict"] == "fail" else ""
            cells.append(f"{('%.1f' % v if v is not None else 'none') + mark:>15}")
        label = f"  {name} ({unit}" + (f", bound {bound:.4g})" if bound is not None else ")")
        lines.append(f"{label[:60]:<60}  " + "  ".join(cells))
    return lines


def write_history(run, run_dir, history=None):
    """What a finished run adds (``run``: its results.json object): figures.lp
    and figures.prom in ``run_dir``, its line appended to ``history`` (default
    ``<reports>/history/<lab>.jsonl`` beside the run folders); the history's path."""
    run_dir = Path(run_dir)
    (run_dir / "figures.lp").write_text(influx_lines(run), encoding="utf-8")
    (run_dir / "figures.prom").write_text(prometheus_text(run), encoding="utf-8")
    path = Path(history) if history else history_path(run_dir.parent,
                                                      (run.get("lab") or {}).get("name"))
    append_history(path, run_record(run))
    return path
