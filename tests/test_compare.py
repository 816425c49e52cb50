"""Regression against a baseline: figures compared over their repetitions;
--baseline fails a run whose T_gap doubled and passes a run against itself."""

import json
import textwrap

import pytest

from laghil.cli import main
from laghil.measure.model import Measurement
from laghil.report.compare import CompareError, compare, is_worse, load_runs
from laghil.report.results import RunResults, TestResult

ID = "suites/bonding/test_bond_modes.py::test_bond_failover_and_failback_within_profile[x]"


def run(gaps, rate=None):
    ms = [Measurement("T_gap max", max(gaps), "ms", "gap", resolution=1.0, repetitions=gaps,
                      threshold=41.0),
          Measurement("achieved rate", 1000.0, "pkt/s", "info")]
    if rate is not None:
        ms.append(Measurement("throughput", max(rate), "Mbit/s", "iperf3", repetitions=rate,
                              threshold=10.0, comparison=">="))
    return RunResults(run_id="r", lab_name="virtual", lab_kind="virtual", profile="default",
                      started=0.0, finished=1.0,
                      tests=[TestResult(nodeid=ID, name="x", outcome="passed", measurements=ms)])


def test_a_doubled_median_is_worse_and_the_same_run_is_not():
    base = run([14.0, 15.0, 16.0, 22.0])
    (same,) = compare([base], base, 0.5)
    assert not same.worse and same.change == 0
    (double,) = compare([base], run([30.0, 31.0, 29.0, 33.0]), 0.5)
    assert double.worse and double.baseline == 15.5 and double.current == 30.5
    assert "WORSE" in double.describe() and "median of 4" in double.describe()


def test_direction_resolution_and_one_sample_do_not_decide():
    assert not is_worse("<=", 2.0, 3.5, 0.5, resolution=1.0)    # inside 2 x resolution
    assert is_worse(">=", 20.0, 9.0, 0.5) and not is_worse(">=", 20.0, 30.0, 0.5)
    # one bad repetition among healthy ones does not move the median
    (r,) = compare([run([15.0, 15.0, 16.0])], run([15.0, 60.0, 16.0]), 0.5)
    assert not r.worse
    rows = compare([run([15.0], [18.0, 19.0])], run([15.0], [5.0, 6.0]), 0.5)
    assert [x.figure for x in rows if x.worse] == ["throughput"]    # info figures are never compared


def test_baseline_folders_pool_their_runs_and_bad_paths_are_named(tmp_path):
    for i, gaps in enumerate(([14.0, 16.0], [15.0, 17.0])):
        d = tmp_path / f"run{i}"
        d.mkdir()
        (d / "results.json").write_text(run(gaps).to_json())
    runs = load_runs(tmp_path)
    assert len(runs) == 2
    (r,) = compare(runs, run([15.5]), 0.5)
    assert r.n_baseline == 4 and r.baseline == 15.5
    with pytest.raises(CompareError, match="no results.json"):
        load_runs(tmp_path / "nowhere")
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(CompareError, match="bad.json: not a laghil results.json"):
        load_runs(tmp_path / "bad.json")


def test_laghil_report_compare_exits_1_on_a_regression(tmp_path, capsys):
    (tmp_path / "a.json").write_text(run([15.0, 16.0]).to_json())
    (tmp_path / "b.json").write_text(run([31.0, 33.0]).to_json())
    assert main(["report", "compare", str(tmp_path / "a.json"), str(tmp_path / "a.json")]) == 0
    assert main(["report", "compare", str(tmp_path / "a.json"), str(tmp_path / "b.json")]) == 1
    assert "T_gap max: 32 ms (median of 2) against baseline 15.5 ms" in capsys.readouterr().out


INNER = """
    import os

    from laghil.measure.model import Measurement

    def test_failover(measure):
        gap = float(os.environ["INNER_GAP_MS"])      # the module is imported once in-process
        measure.record(Measurement("T_gap max", gap, "ms", "gap", resolution=1.0,
                                   repetitions=[gap, gap], threshold=1000.0))
"""


def test_baseline_option_fails_a_doubled_t_gap_and_passes_against_itself(pytester, tmp_path,
                                                                          monkeypatch):
    monkeypatch.setenv("LAGHIL_REPORTS_DIR", str(tmp_path / "reports"))
    pytester.makepyfile(test_inner=textwrap.dedent(INNER))
    monkeypatch.setenv("INNER_GAP_MS", "20")
    pytester.runpytest_inprocess().assert_outcomes(passed=1)
    (first,) = [d for d in (tmp_path / "reports").iterdir() if d.name != "history"]
    r = pytester.runpytest_inprocess(f"--baseline={first}")
    r.assert_outcomes(passed=1)
    monkeypatch.setenv("INNER_GAP_MS", "40")
    r = pytester.runpytest_inprocess(f"--baseline={first}")
    r.assert_outcomes(failed=1)
    out = r.stdout.str()
    assert "worse than the baseline by more than 50%" in out
    assert "T_gap max: 40 ms (median of 2) against baseline 20 ms (median of 2), +100% WORSE" in out
    last = sorted(d for d in (tmp_path / "reports").iterdir() if d.name != "history")[-1]
    data = json.loads((last / "results.json").read_text())
    assert data["tests"][0]["verdict"] == "failed"
