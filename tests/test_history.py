"""The run history and the dashboards' files (laghil.report.history), on a
results.json the CI wrote on the virtual rack (three tests of it, their
timelines cut short)."""

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from line_protocol_parser import parse_line
from prometheus_client.parser import text_string_to_metric_families

from laghil.report import history as H

RUN = json.loads((Path(__file__).parent / "data" / "results-ci5-small.json").read_text())
AD = ("suites/bonding/test_bond_modes.py::test_bond_failover_and_failback_within_profile"
      "[802.3ad-via-switch[miimon=10,lacp_rate=fast,xmit_hash_policy=layer3+4]]")


def test_a_run_s_record_holds_its_judged_figures_and_what_it_ran_on():
    r = H.run_record(RUN)
    assert (r["run_id"], r["lab"], r["profile"]) == (RUN["run_id"], "virtual", "default")
    t = r["tests"][AD]
    assert (t["suite"], t["mode"], t["verdict"]) == ("bonding", "802.3ad-via-switch", "passed")
    assert t["fault"], "the fault method from the trial's fault event"
    gap = t["figures"]["T_gap median"]
    src = next(m for m in next(x for x in RUN["tests"] if x["test_id"] == AD)["measurements"]
               if m["name"] == "T_gap median")
    assert gap["median"] == src["stats"]["median"] and gap["threshold"] == src["threshold"]
    assert gap["repetitions"] == src["repetitions"] and gap["verdict"] == "pass"
    inv = r["inventory"]
    assert inv["kernel"]["h1"] == "6.1.0-57-amd64"
    assert inv["ports"]["h1"]["eth5"] == {"driver": "igb", "version": "6.1.0-57-amd64",
                                         "firmware": "2.1.0"}
    other = copy.deepcopy(RUN)
    other["inventory"]["h1"]["ports"]["eth5"]["firmware"] = "2.2.0"
    assert H.run_record(other)["inventory"]["digest"] != inv["digest"], "a firmware change"


def test_history_appends_reads_and_survives_a_write_cut_by_a_crash(tmp_path, monkeypatch):
    path = tmp_path / "history" / "virtual.jsonl"
    H.append_history(path, H.run_record(RUN))
    # the second run is killed in the middle of its write: half its line lands
    real = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real(fd, data[:len(data) // 2]))
    H.append_history(path, H.run_record(RUN))
    monkeypatch.setattr(os, "write", real)
    records, damaged = H.read_history(path)
    assert len(records) == 1 and damaged == [2], "the partial run is not in the history"
    third = copy.deepcopy(RUN)
    third["run_id"] = "20261207-999999-virtual"
    H.append_history(path, H.run_record(third))
    records, damaged = H.read_history(path)
    assert [r["run_id"] for r in records] == [RUN["run_id"], "20261207-999999-virtual"]
    assert damaged == [2], "the damaged line stays one line, the next run's is whole"
    assert H.read_history(tmp_path / "none.jsonl") == ([], [])
    assert H.read_history(path, lab="rack3") == ([], [2])


def test_a_run_killed_while_appending_leaves_the_history_readable(tmp_path):
    """A controller SIGKILLed in the middle of a big append (a process of its
    own, killed by its pid): the history reads as before plus, at most, one
    skipped line."""
    path = tmp_path / "h.jsonl"
    H.append_history(path, H.run_record(RUN))
    big = H.run_record(RUN)
    big["tests"] = {f"t{i}": big["tests"][AD] for i in range(4000)}
    code = ("import json, sys, os, signal; from laghil.report import history as H; "
            f"rec = json.loads(open({str(tmp_path / 'big.json')!r}).read()); "
            "real = os.write\n"
            "def cut(fd, data):\n"
            "    real(fd, data[:len(data) // 3]); os.kill(os.getpid(), signal.SIGKILL)\n"
            "os.write = cut\n"
            f"H.append_history({str(path)!r}, rec)\n")
    (tmp_path / "big.json").write_text(json.dumps(big))
    p = subprocess.run([sys.executable, "-c", code], timeout=60)
    assert p.returncode == -9
    records, damaged = H.read_history(path)
    assert [r["run_id"] for r in records] == [RUN["run_id"]] and damaged == [2]


def test_the_line_protocol_parses_with_a_real_parser():
    text = H.influx_lines(RUN)
    lines = text.strip().split("\n")
    assert len(lines) >= 10
    points = [parse_line(ln.encode() if isinstance(ln, str) else ln) for ln in lines]
    gap = next(p for p in points if p["tags"]["figure"] == "T_gap median"
               and p["tags"]["mode"] == "802.3ad-via-switch")
    assert gap["measurement"] == "laghil_figure"
    assert gap["tags"]["lab"] == "virtual" and gap["tags"]["suite"] == "bonding"
    assert gap["tags"]["kernel"] == "6.1.0-57-amd64" and gap["tags"]["firmware"] == "2.1.0"
    assert gap["fields"]["verdict"] == "pass" and gap["fields"]["n"] == 3
    src = H.run_record(RUN)["tests"][AD]["figures"]["T_gap median"]
    assert gap["fields"]["median"] == pytest.approx(src["median"])
    assert gap["time"] > 1.7e18, "the run's start, in ns"
    # the case name carries '[', ',' and '=': escaped, read back whole
    assert gap["tags"]["case"] == next(t["name"] for t in RUN["tests"] if t["test_id"] == AD)


def test_the_prometheus_file_parses_with_prometheus_client():
    fams = {f.name: f for f in text_string_to_metric_families(H.prometheus_text(RUN))}
    assert {"laghil_figure_value", "laghil_figure_median", "laghil_figure_threshold",
            "laghil_figure_pass"} <= set(fams)
    s = next(s for s in fams["laghil_figure_median"].samples
             if s.labels["figure"] == "T_gap median" and s.labels["mode"] == "802.3ad-via-switch")
    src = H.run_record(RUN)["tests"][AD]["figures"]["T_gap median"]
    assert s.value == pytest.approx(src["median"]) and s.labels["lab"] == "virtual"
    passes = {s.labels["case"] + s.labels["figure"]: s.value
              for s in fams["laghil_figure_pass"].samples}
    assert set(passes.values()) <= {0.0, 1.0} and passes


def test_a_trend_table_marks_failures_and_inventory_changes():
    runs = []
    for i, (med, fw) in enumerate([(20.0, "2.1.0"), (22.0, "2.1.0"), (95.0, "2.2.0")]):
        r = copy.deepcopy(RUN)
        r["run_id"] = f"2026120{i + 1}-010000-virtual"
        r["inventory"]["h1"]["ports"]["eth5"]["firmware"] = fw
        m = next(m for m in next(t for t in r["tests"] if t["test_id"] == AD)["measurements"]
                 if m["name"] == "T_gap median")
        m["stats"]["median"] = med
        m["verdict"] = "fail" if med > m["threshold"] else "pass"
        runs.append(H.run_record(r))
    lines = H.trend_table(runs, case="802.3ad-via-switch", figure="T_gap median")
    assert len(lines) == 4
    assert lines[1].split()[-1] == "*", "the third run's inventory differs"
    assert lines[2].startswith("test_") and "802.3ad-via-switch" in lines[2], lines[2]
    assert lines[3].startswith("  T_gap median (ms, bound "), lines[3]
    cells = lines[3].split()[-3:]
    assert cells[:2] == ["20.0", "22.0"] and cells[2].startswith("95.0")
    assert H.trend_table([], case="x") == ["no runs in the history"]


def test_the_grafana_dashboard_reads_what_a_run_writes():
    """The shipped dashboard queries the measurement, fields and tags the line
    protocol has (it cannot drift from the exporter unnoticed)."""
    import re
    dash = json.loads((Path(__file__).parent.parent / "docs" / "grafana"
                       / "laghil-failover.json").read_text())
    queries = [t["query"] for p in dash["panels"] for t in p["targets"]]
    points = [parse_line(ln.encode()) for ln in H.influx_lines(RUN).strip().split("\n")]
    fields = set().union(*(p["fields"] for p in points))
    tags = set().union(*(p["tags"] for p in points))
    for q in queries:
        assert 'FROM "laghil_figure"' in q
        used = set(re.findall(r'"([a-z_]+)"', q)) - {"laghil_figure"}
        assert used <= fields | tags, (q, used - fields - tags)
    figures = {p["tags"]["figure"] for p in points}
    choices = next(v for v in dash["templating"]["list"] if v["name"] == "figure")["query"]
    assert {"T_gap median", "RDMA T_gap median"} <= set(choices.split(",")) & figures


# ---- since the last run, and the trend --------------------------------------------------------
def _series(medians, firmware=None, verdicts=None):
    """History records of runs of RUN whose 802.3ad T_gap median is each of
    ``medians`` (judged against its own threshold), optionally with the
    igb ports' firmware and the test's verdict per run."""
    out = []
    for i, med in enumerate(medians):
        r = copy.deepcopy(RUN)
        r["run_id"] = f"202612{i + 1:02d}-010000-virtual"
        if firmware:
            r["inventory"]["h1"]["ports"]["eth5"]["firmware"] = firmware[i]
        t = next(t for t in r["tests"] if t["test_id"] == AD)
        m = next(m for m in t["measurements"] if m["name"] == "T_gap median")
        m["stats"]["median"] = med
        m["repetitions"] = [0.9 * med, med, 1.1 * med]
        m["verdict"] = "fail" if med > m["threshold"] else "pass"
        t["verdict"] = (verdicts[i] if verdicts else
                        "failed" if m["verdict"] == "fail" else "passed")
        out.append(H.run_record(r))
    return out


def test_since_the_last_run_names_the_figure_that_moved_and_what_changed_under_it():
    from laghil.report.since import render_since, since_last
    runs = _series([20.0, 23.0, 21.0, 250.0], firmware=["2.1.0"] * 3 + ["2.2.0"])
    s = since_last(runs[-1], runs[:-1])
    assert s["previous"] == runs[-2]["run_id"] and s["runs"] == 3
    (moved,) = [m for m in s["moved"] if m["figure"] == "T_gap median"]
    assert moved["up"] and moved["now"] == 250.0 and moved["n"] == 3
    # the repetitions of the 3 runs span 18..25.3, widened by half that and 1/R (2.08)
    assert moved["lo"] == pytest.approx(18.0 - 3.65 - 2.0769, abs=0.01)
    assert moved["hi"] == pytest.approx(25.3 + 3.65 + 2.0769, abs=0.01)
    assert any("passed" == a and "failed" == b for _, a, b in s["verdicts"])
    assert "h1:eth5: firmware 2.1.0 -> 2.2.0" in s["inventory"]
    page = render_since(s)
    assert "T_gap median 250 ms (above" in page and "firmware 2.1.0 -&gt; 2.2.0" in page
    # one run's repetitions are no run-to-run noise: with one passing run nothing is judged
    few = since_last(runs[-1], runs[2:3])
    assert few["moved"] == [] and few["unjudged"] > 0
    assert "not judged for movement yet" in render_since(few)


def test_no_change_says_so_and_a_first_run_has_nothing_to_compare():
    from laghil.report.since import render_since, since_last
    runs = _series([20.0, 23.0, 21.0, 22.0])
    s = since_last(runs[-1], runs[:-1])
    assert (s["moved"], s["verdicts"], s["inventory"], s["flaky"]) == ([], [], [], [])
    assert "<b>No change</b>" in render_since(s)
    assert "No earlier run of this lab" in render_since(since_last(runs[0], []))


def test_a_verdict_that_flips_more_than_once_is_flaky():
    from laghil.report.since import since_last
    runs = _series([20.0] * 5, verdicts=["passed", "failed", "passed", "passed", "failed"])
    s = since_last(runs[-1], runs[:-1])
    name = next(t["name"] for t in RUN["tests"] if t["test_id"] == AD)
    assert (name, 3, 5) in s["flaky"]


def test_the_trend_draws_each_run_with_its_spread_bound_and_inventory_changes():
    from laghil.report.since import trend_points, trend_svg
    runs = _series([20.0, 23.0, 250.0], firmware=["2.1.0", "2.1.0", "2.2.0"])
    pts = trend_points(runs[:-1], runs[-1], AD, "T_gap median")
    assert [p[1] for p in pts] == [20.0, 23.0, 250.0] and [p[6] for p in pts] == [False, False, True]
    svg = trend_svg(pts)
    assert svg.count("<circle") == 3 and svg.count('fill="#d93025"') == 1, "the failed run red"
    assert "inventory changed at" in svg and 'stroke-dasharray="4 3"' in svg
    assert trend_svg(pts[:1]) == "", "one run is no trend"


def test_the_report_shows_since_and_trend_from_the_history():
    from laghil.report import RunResults, render_html
    runs = _series([20.0, 23.0, 21.0])
    run = RunResults.from_json(json.dumps(RUN))
    page = render_html(run, history=runs)
    assert '<section class="since">' in page and "Since the last run" in page
    assert page.count('<svg class="trend"') >= 1
    assert '<section class="since">' not in render_html(run), "no history given: no section"


def test_the_noise_of_a_figure_never_negative_stays_above_zero():
    from laghil.report.since import noise_band
    assert noise_band([10.0, 20.0], 1.0) == (4.0, 26.0)
    assert noise_band([0.0, 40.0], 2.0) == (0.0, 62.0), "a time has no noise below zero"
    assert noise_band([-5.0, 5.0]) == (-10.0, 10.0), "a figure that can go negative keeps it"
