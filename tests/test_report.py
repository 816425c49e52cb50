"""Run reports: results.json schema, report.html in a real headless Chromium, the plugin.

(About 490 lines: results.json, report.html and the plugin's reporting, end to end.)

(a) results JSON: stable keys, verdicts (a skip is never a pass), statistics;
(b) a sample run rendered to report.html and opened from disk (file://) in
    Debian's Chromium driven by playwright: no console errors, no requests
    leaving the file, charts with real size and thousands of bins drawn;
(c) an inner pytest session whose tests record figures through the ``measure``
    fixture: report.html and results.json appear in the run dir.

Chromium is installed by scripts/setup, so a missing browser FAILS the browser
test (a CI image without it must not pass silently).

Run as a script to write the sample report and a screenshot of it:
    python tests/test_report.py /tmp/laghil-sample-report.html /tmp/laghil-sample-report.png
"""

import contextlib
import json
import math
import sys
import textwrap
from pathlib import Path

import pytest

from laghil.measure.model import Event, Measurement, Series, Timeline
from laghil.report import RunResults, TestResult, render_html, render_timeline_svg
from laghil.report.svg import downsample

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
T0 = 1_750_000_000.0
NASTY = '<script>alert("x")</script> & "quotes"'


# ---- a sample run -------------------------------------------------------------

def failover_timeline(bins=20_000, bin_s=0.001, outage=(5.0, 5.0237)):
    """Two flows at 1 ms bins; flow A loses 23.7 ms at the fault, flow B nothing."""
    rate = 100_000.0
    a = [rate] * bins
    for i in range(int(outage[0] / bin_s), int(outage[1] / bin_s) + 1):
        a[i] = 0.0
    b = [rate * 0.98 + (i % 7) * 300 for i in range(bins)]
    return Timeline(
        title="rx rate h2 <- h1, bond0 active-backup, miimon 10",
        series=[Series("flow A (eth1 -> eth2 at fault)", T0, bin_s, a),
                Series("flow B", T0, bin_s, b)],
        events=[Event(T0 + 5.0, "cable h1-sw1-a down", "fault"),
                Event(T0 + 5.011, "bond0: link status definitely down for interface eth1",
                      "kernel", clock="h1"),
                Event(T0 + 5.012, "bond0: making interface eth2 the new active one", "kernel",
                      clock="h1"),
                Event(T0 + 12.0, "cable h1-sw1-a up", "restore"),
                Event(T0 + 12.2, NASTY, "info")])


def sample_run():
    passed = TestResult(
        nodeid="suites/failover/test_bonding.py::test_active_backup_failover[miimon]",
        name="test_active_backup_failover[miimon]", outcome="passed", duration_s=31.4,
        markers=["bonding", "failover", "disruptive"],
        measurements=[
            Measurement("T_gap max", 23.7, "ms", "gap outage, per flow max", resolution=0.01,
                        repetitions=[21.2, 23.7, 19.9, 22.4, 20.5], threshold=100.0,
                        profile="default"),
            Measurement("T_loss max", 23.5, "ms", "loss-derived outage, per flow",
                        resolution=0.01, repetitions=[21.0, 23.5, 19.8, 22.1, 20.3]),
            Measurement("detection latency", 11.0, "ms", "kernel event - fault (clock offset "
                        "0.4 ms)", resolution=1.0)],
        timelines=[failover_timeline()],
        commands_log="commands/suites_failover_test_bonding.py__test_active_backup.log")
    failed = TestResult(
        nodeid="suites/failover/test_lacp.py::test_lacp_fast_rate_failover",
        name="test_lacp_fast_rate_failover", outcome="failed", duration_s=48.2,
        message="AssertionError: T_gap max 3100 ms (gap outage) <= 1000 ms\nassert 3100.0 <= 1000",
        markers=["lacp", "failover"],
        measurements=[Measurement("T_gap max", 3100.0, "ms", "gap outage, per flow max",
                                  resolution=0.01, repetitions=[2950.0, 3100.0, 3010.0],
                                  threshold=1000.0, profile="default")],
        timelines=[failover_timeline(bins=12_000, outage=(5.0, 8.1))])
    skipped = TestResult(
        nodeid="suites/failover/test_roce.py::test_roce_lag_qp_survives",
        name="test_roce_lag_qp_survives", outcome="skipped", duration_s=0.001,
        skip_reason="lab 'virtual' lacks capability 'roce_lag': needs 2 host(s) with it, has 0",
        markers=["roce_lag"])
    inventory = {
        "h1": {"kernel": "6.1.0-56-amd64", "bonding": True, "team": True, "rdma": ["rxe0"],
               "ports": {"eth1": {"driver": "virtio_net", "version": "1.0.0", "firmware": "",
                                  "bus": "0000:00:07.0"},
                         "eth2": {"driver": "virtio_net", "version": "1.0.0", "firmware": "",
                                  "bus": "0000:00:08.0"}}},
        "h2": {"kernel": "6.1.0-56-amd64", "bonding": True, "team": False, "rdma": [],
               "ports": {"eth1": {"driver": "mlx5_core", "version": "6.1.0",
                                  "firmware": "22.39.1002 (MT_0000000359)", "bus": "0000:3b:00.0"}}},
    }
    return RunResults(run_id="20250615-101500-virtual", lab_name="virtual", lab_kind="virtual",
                      profile="default", started=T0 - 60, finished=T0 + 120,
                      inventory=inventory, tests=[passed, failed, skipped])


# ---- (a) results JSON ----------------------------------------------------------------

MEASUREMENT_KEYS = {"name", "value", "unit", "method", "resolution", "repetitions", "stats",
                    "threshold", "comparison", "verdict", "profile", "note", "basis", "baseline", "bound"}
TEST_KEYS = {"test_id", "name", "verdict", "outcome", "duration_s", "reason", "markers",
             "commands_log", "measurements", "timelines"}
RUN_KEYS = {"schema_version", "run_id", "lab", "profile", "started", "finished", "duration_s",
            "verdict", "summary", "lab_state_diff", "lab_start", "inventory", "tests",
            "profile_platform", "platform_diff"}


def test_results_json_has_the_documented_keys():
    d = json.loads(sample_run().to_json())
    assert set(d) == RUN_KEYS
    assert d["schema_version"] == 2
    assert d["lab"] == {"name": "virtual", "kind": "virtual"}
    assert d["started"].endswith("+00:00") and d["duration_s"] == 180.0
    for t in d["tests"]:
        assert set(t) == TEST_KEYS
        for m in t["measurements"]:
            assert set(m) == MEASUREMENT_KEYS
            assert set(m["stats"]) == {"n", "min", "median", "p95", "max"}
        for tl in t["timelines"]:
            assert set(tl) == {"title", "series", "events"}
            assert all(set(s) == {"label", "unit", "t0", "bin_s", "values"} for s in tl["series"])
            assert all(set(e) == {"t", "label", "kind", "clock"} for e in tl["events"])
    keys_documented = (Path(__file__).parent.parent / "docs" / "results-json.md").read_text()
    for key in RUN_KEYS | TEST_KEYS | MEASUREMENT_KEYS | {"bin_s", "t0", "clock", "total"}:
        assert f"`{key}`" in keys_documented, f"{key} is not documented in docs/results-json.md"


def test_skipped_test_is_never_counted_as_passed():
    d = json.loads(sample_run().to_json())
    skipped = d["tests"][2]
    assert (skipped["verdict"], skipped["outcome"]) == ("skipped", "skipped")
    assert "lacks capability 'roce_lag'" in skipped["reason"]
    assert d["summary"] == {"total": 3, "passed": 1, "failed": 1, "skipped": 1, "xfailed": 0,
                            "error": 0}
    assert d["verdict"] == "failed"
    only_skips = RunResults("r", "virtual", "virtual", "default", T0, T0 + 1,
                            tests=[TestResult("t::a", "a", "skipped", skip_reason="no lab")])
    assert only_skips.summary() == {"total": 1, "passed": 0, "failed": 0, "skipped": 1,
                                    "xfailed": 0, "error": 0}


def test_expected_failure_is_its_own_verdict_neither_pass_nor_skip():
    known = TestResult("t::ab", "ab", "xfailed", skip_reason="expected failure: rxe defect")
    run = RunResults("r", "virtual", "virtual", "default", T0, T0 + 1, tests=[known])
    assert (known.verdict, known.reason) == ("xfailed", "expected failure: rxe defect")
    assert run.summary() == {"total": 1, "passed": 0, "failed": 0, "skipped": 0, "xfailed": 1,
                             "error": 0}
    assert run.verdict == "passed"      # a known defect does not fail the run
    html = render_html(run)
    assert "KNOWN DEFECT" in html and "not a pass" in html and "rxe defect" in html
    # a schema_version 1 file counted expected failures as skips: read back as xfailed
    d = json.loads(run.to_json())
    d["schema_version"] = 1
    d["tests"][0]["outcome"] = d["tests"][0]["verdict"] = "skipped"
    again = RunResults.from_dict(d)
    assert again.tests[0].verdict == "xfailed" and again.tests[0].reason == known.reason
    d["schema_version"] = 3
    with pytest.raises(ValueError, match="schema_version 3, this laghil reads 1 and 2"):
        RunResults.from_dict(d)


def test_a_failing_figure_fails_a_test_that_pytest_passed():
    t = TestResult("t::a", "a", "passed", measurements=[
        Measurement("throughput", 3.2, "Gbit/s", "iperf3 -J sum", threshold=9.0, comparison=">="),
        Measurement("T_gap", 10.0, "ms", "gap outage", threshold=100.0)])
    assert t.verdict == "failed" and t.to_dict()["outcome"] == "passed"
    assert t.reason == "figure out of threshold: throughput 3.2 Gbit/s (iperf3 -J sum) >= 9 Gbit/s"
    assert [m["verdict"] for m in t.to_dict()["measurements"]] == ["fail", "pass"]
    info = TestResult("t::b", "b", "passed", measurements=[Measurement("rate", 5, "pkt/s", "x")])
    assert info.verdict == "passed" and info.to_dict()["measurements"][0]["verdict"] == "info"
    with pytest.raises(ValueError):
        TestResult("t::c", "c", "xpassed")


def test_measurement_stats_over_repetitions():
    m = json.loads(sample_run().to_json())["tests"][0]["measurements"][0]
    assert m["stats"]["n"] == 5 and m["stats"]["min"] == 19.9 and m["stats"]["max"] == 23.7
    assert m["stats"]["median"] == 21.2
    assert m["stats"]["p95"] == pytest.approx(23.7 - 0.2 * (23.7 - 22.4))
    assert (m["value"], m["threshold"], m["comparison"], m["verdict"]) == (23.7, 100.0, "<=", "pass")
    assert (m["resolution"], m["profile"]) == (0.01, "default")


def test_json_is_strict_and_reads_back():
    run = sample_run()
    run.tests[0].measurements.append(Measurement("lost", math.nan, "ms", "x", threshold=1.0))
    run.tests[0].timelines[0].series[0].values[3] = math.inf
    text = run.to_json()
    d = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    assert d["tests"][0]["measurements"][-1]["value"] is None
    assert d["tests"][0]["measurements"][-1]["verdict"] == "fail"
    assert d["tests"][0]["timelines"][0]["series"][0]["values"][3] is None
    text = sample_run().to_json()
    assert RunResults.from_json(text).to_json() == text


def test_downsampling_keeps_a_one_bin_outage():
    values = [1000.0] * 50_000
    values[31_337] = 0.0
    segs = downsample(values, 500)
    points = [p for s in segs for p in s]
    assert len(points) <= 1000 and (31_337, 0.0) in points
    assert downsample([1.0, None, None, 2.0, 3.0], 500) == [[(0, 1.0)], [(3, 2.0), (4, 3.0)]]


def test_html_is_self_contained_and_escaped():
    page = render_html(sample_run())
    assert "<script" not in page and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "http://" not in page and "https://" not in page and "src=" not in page
    assert "SKIPPED" in page and "lacks capability &#x27;roce_lag&#x27;" in page
    assert 'href="commands/suites_failover_test_bonding.py__test_active_backup.log"' in page
    assert "22.39.1002 (MT_0000000359)" in page and "6.1.0-56-amd64" in page
    svg = render_timeline_svg(failover_timeline(), standalone=True)
    assert svg.startswith("<svg") and 'xmlns="http://www.w3.org/2000/svg"' in svg


# ---- (b) the report in headless Chromium ------------------------------------------

@contextlib.contextmanager
def chromium():
    """Debian's Chromium driven by playwright (never `playwright install`).

    Called inside the test, not from a fixture: a missing browser or driver is a
    test FAILURE, not a skip or a set-up error.
    """
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: scripts/setup installs Debian's chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as e:
        pytest.fail(f"playwright is missing ({e}): pip install -e '.[test]'")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=60_000)
        try:
            yield b
        finally:
            b.close()


def open_report(browser, path):
    """Open ``path`` from disk; returns (page, problems): console errors, page errors,
    and any request for something other than a local file (the report must be
    self-contained; such requests are also aborted)."""
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    problems = []
    page.on("console", lambda m: m.type in ("error", "warning") and
            problems.append(f"console {m.type}: {m.text}"))
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))

    def only_local(route):
        if route.request.url.startswith("file://"):
            return route.continue_()
        problems.append(f"request: {route.request.url}")
        return route.abort()
    page.route("**/*", only_local)
    page.goto(Path(path).resolve().as_uri(), wait_until="load")
    return page, problems


CHART_FACTS = """() => [...document.querySelectorAll('svg.timeline')].map(svg => {
  const box = svg.getBoundingClientRect();
  const plot = svg.querySelector('rect').getBBox();
  const polys = [...svg.querySelectorAll('g.series polyline')];
  const ys = polys.flatMap(p => [...p.points].map(pt => pt.y));
  const lines = [...svg.querySelectorAll('g.event line')];
  return {width: box.width, height: box.height,
          polylines: polys.length,
          maxPoints: Math.max(0, ...polys.map(p => p.points.numberOfItems)),
          polyWidth: Math.max(0, ...polys.map(p => p.getBoundingClientRect().width)),
          lowestY: Math.max(...ys), plotBottom: plot.y + plot.height,
          events: lines.length,
          eventHeights: lines.map(l => l.getBoundingClientRect().height),
          labels: [...svg.querySelectorAll('g.event text')].map(t => t.textContent)};
})"""


def test_report_renders_in_headless_chromium_from_disk(tmp_path):
    path = tmp_path / "report.html"
    path.write_text(render_html(sample_run()), encoding="utf-8")
    with chromium() as browser:
        page, problems = open_report(browser, path)
        check_rendered_report(page, problems)


def check_rendered_report(page, problems):
    """What must hold of the sample report once Chromium has rendered it."""
    assert problems == [], problems
    charts = page.evaluate(CHART_FACTS)
    assert len(charts) == 2, charts
    first = charts[0]
    assert first["width"] > 500 and first["height"] > 200, first
    assert first["polylines"] == 2 and first["maxPoints"] >= 500, first
    assert first["polyWidth"] > 400, first
    # the outage reaches the bottom of the plot (rate 0) despite 20000 bins
    assert abs(first["lowestY"] - first["plotBottom"]) < 1, first
    assert first["events"] == 5 and min(first["eventHeights"]) > 100, first
    assert "cable h1-sw1-a down" in first["labels"] and NASTY in first["labels"]
    # summary: a skipped test is SKIPPED with its reason, and looks unlike a pass
    row = page.locator("nav.summary tr", has_text="test_roce_lag_qp_survives")
    assert row.locator(".badge").inner_text() == "SKIPPED"
    assert "lacks capability 'roce_lag'" in row.inner_text()
    style = "e => getComputedStyle(e).backgroundColor + ' ' + getComputedStyle(e).color"
    skipped_look = row.locator(".badge").evaluate(style)
    passed_look = page.locator("nav.summary .badge.v-passed").first.evaluate(style)
    assert skipped_look != passed_look
    # per test: measurements table with the statistics; inventory at the end
    headers = page.locator("section.test").first.locator("th").all_inner_texts()
    for h in ("min", "median", "p95", "max", "Method", "Resolution", "Threshold", "Verdict"):
        assert h in headers
    assert page.locator("section.inventory").bounding_box()["height"] > 50
    assert page.locator("a", has_text="commands/").get_attribute("href").startswith("commands/")


# ---- (c) the plugin in an inner pytest session ----------------------------------

PLUGINS = []  # laghil's plugin loads through its pytest11 entry point

INNER = """
    import pytest
    from laghil.measure.model import Event, Measurement, Series, Timeline

    T0 = 1_750_000_000.0

    def test_failover_figures(measure):
        m = measure.record(Measurement("T_gap max", 23.7, "ms", "gap outage", resolution=0.5,
                                       repetitions=[20.1, 23.7, 21.0], threshold=100.0))
        values = [1000.0] * 3000
        values[1000:1024] = [0.0] * 24
        measure.timeline(Timeline("rx rate", series=[Series("flow A", T0, 0.001, values)],
                                  events=[Event(T0 + 1.0, "cable down", "fault"),
                                          Event(T0 + 2.0, "cable up", "restore")]))
        assert m.verdict == "pass", m.describe()

    def test_throughput(measure):
        m = measure.record(Measurement("throughput", 3.2, "Gbit/s", "iperf3 -J sum",
                                       threshold=9.0, comparison=">="))
        assert m.verdict == "pass", m.describe()

    @pytest.mark.skip(reason="no RDMA device on this lab")
    def test_roce():
        pass
"""


@pytest.fixture
def inner(pytester, monkeypatch, tmp_path):
    reports = tmp_path / "reports"
    monkeypatch.setenv("LAGHIL_REPORTS_DIR", str(reports))
    monkeypatch.setenv("LAGHIL_STATE_DIR", str(tmp_path / "state"))

    def run(*args, source=INNER, **kw):
        pytester.makepyfile(test_inner=textwrap.dedent(source))
        result = pytester.runpytest_inprocess(*PLUGINS, *args, **kw)
        dirs = sorted(d for d in reports.iterdir() if d.name != "history")
        assert len(dirs) == 1, dirs
        return result, dirs[0]
    return run


def test_plugin_writes_report_and_results_in_the_run_dir(inner):
    r, run_dir = inner()
    r.assert_outcomes(passed=1, failed=1, skipped=1)
    d = json.loads((run_dir / "results.json").read_text())
    assert d["run_id"] == run_dir.name and d["lab"]["name"] == "virtual"
    assert d["profile"] == "default"
    assert d["summary"] == {"total": 3, "passed": 1, "failed": 1, "skipped": 1, "xfailed": 0,
                            "error": 0}
    by_name = {t["name"]: t for t in d["tests"]}
    fo = by_name["test_failover_figures"]
    assert fo["verdict"] == "passed" and fo["measurements"][0]["value"] == 23.7
    assert fo["measurements"][0]["stats"]["median"] == 21.0
    assert len(fo["timelines"][0]["series"][0]["values"]) == 3000
    assert [e["kind"] for e in fo["timelines"][0]["events"]] == ["fault", "restore"]
    tp = by_name["test_throughput"]
    assert tp["verdict"] == "failed" and "throughput 3.2 Gbit/s" in tp["reason"]
    assert tp["measurements"][0]["verdict"] == "fail"
    sk = by_name["test_roce"]
    assert (sk["verdict"], sk["reason"]) == ("skipped", "no RDMA device on this lab")
    page = (run_dir / "report.html").read_text()
    assert page.count('<svg class="timeline"') == 1 and "no RDMA device on this lab" in page
    junit = (run_dir / "junit.xml").read_text()
    assert '<property name="T_gap max" value="23.7 ms"' in junit
    assert f"laghil: report {run_dir / 'report.html'}" in r.stdout.str()


def test_plugin_appends_the_run_to_the_lab_s_history_and_writes_dashboard_files(inner, tmp_path):
    from laghil.report.history import read_history
    r, run_dir = inner()
    (rec,), damaged = read_history(run_dir.parent / "history" / "virtual.jsonl")
    assert rec["run_id"] == run_dir.name and not damaged
    fo = next(t for t in rec["tests"].values() if t["name"] == "test_failover_figures")
    assert fo["figures"]["T_gap max"]["median"] == 21.0 and fo["fault"] == "cable down"
    assert "laghil_figure,case=test_failover_figures" in (run_dir / "figures.lp").read_text()
    assert "laghil_figure_value{" in (run_dir / "figures.prom").read_text()
    assert "laghil: figures appended to" in r.stdout.str()


def test_an_interrupted_run_writes_its_report_but_not_its_history_line(inner):
    """Ctrl-C in the middle (here: the second test's body): results.json and
    report.html say what ran, the history keeps whole runs only, and the run's
    terminal summary says why its line is missing."""
    from laghil.report.history import read_history
    source = INNER.replace("def test_throughput(measure):\n",
                           "def test_throughput(measure):\n        raise KeyboardInterrupt\n")
    assert source != INNER
    r, run_dir = inner(source=source, no_reraise_ctrlc=True)
    assert r.ret == pytest.ExitCode.INTERRUPTED, r.ret
    d = json.loads((run_dir / "results.json").read_text())
    assert [t["verdict"] for t in d["tests"]][:1] == ["passed"], d["tests"]
    assert (run_dir / "report.html").exists()
    assert read_history(run_dir.parent / "history" / "virtual.jsonl") == ([], [])
    assert "not appended to the history" in r.stdout.str()


def test_plugin_history_option_points_elsewhere(inner, tmp_path):
    from laghil.report.history import read_history
    shared = tmp_path / "shared" / "rack.jsonl"           # a team's runners' folder
    _, run_dir = inner("--history", str(shared))
    assert [r["run_id"] for r in read_history(shared)[0]] == [run_dir.name]
    assert not (run_dir.parent / "history").exists()


def test_plugin_attaches_figures_to_allure(inner, tmp_path):
    allure_dir = tmp_path / "allure"
    r, _ = inner("--alluredir", str(allure_dir))
    r.assert_outcomes(passed=1, failed=1, skipped=1)
    svgs = list(allure_dir.glob("*-attachment.svg"))
    csvs = list(allure_dir.glob("*-attachment.csv"))
    assert len(svgs) == 1 and svgs[0].read_text().startswith("<svg")
    assert len(csvs) == 2 and any("T_gap max,23.7,ms" in c.read_text() for c in csvs)


OUTCOMES = """
    import pytest

    @pytest.fixture
    def broken_setup():
        raise RuntimeError("iperf3 server did not start")

    def test_setup_error(broken_setup):
        pass

    def test_failing_undo(defer):
        def undo():
            raise RuntimeError("link is gone")
        defer(undo)

    def test_skips_itself():
        pytest.skip("bond0 has one member only")

    @pytest.mark.xfail(reason="known mlx5 issue")
    def test_expected_failure():
        assert False

    def test_fails_without_traceback():
        pytest.fail("T_gap 230 ms > 100 ms", pytrace=False)

    @pytest.mark.bonding
    def test_plain_pass():
        pass
"""


def test_plugin_maps_pytest_outcomes_to_verdicts(inner):
    r, run_dir = inner(source=OUTCOMES)
    # a failing undo fails the test itself (not a pass plus a teardown error)
    r.assert_outcomes(passed=1, failed=2, skipped=1, xfailed=1, errors=1)
    d = json.loads((run_dir / "results.json").read_text())
    got = {t["name"]: (t["verdict"], t["reason"]) for t in d["tests"]}
    assert got == {
        "test_setup_error": ("error", "RuntimeError: iperf3 server did not start"),
        "test_failing_undo": ("failed", "Failed: undo failed, the lab may not be as it was:\n"
                                       "  undo test_failing_undo.<locals>.undo(): "
                                       "RuntimeError: link is gone"),
        "test_skips_itself": ("skipped", "bond0 has one member only"),
        "test_expected_failure": ("xfailed", "expected failure: known mlx5 issue"),
        "test_fails_without_traceback": ("failed", "Failed: T_gap 230 ms > 100 ms"),
        "test_plain_pass": ("passed", ""),
    }, got
    assert d["summary"] == {"total": 6, "passed": 1, "failed": 2, "skipped": 1, "xfailed": 1,
                            "error": 1}
    assert d["tests"][-1]["markers"] == ["bonding"]


# ---- the sample, for a human to look at ------------------------------------------

def write_sample(html_path, png_path):
    """Write the sample report and a full-page screenshot of it."""
    Path(html_path).write_text(render_html(sample_run()), encoding="utf-8")
    with chromium() as b:
        page, problems = open_report(b, html_path)
        page.screenshot(path=str(png_path), full_page=True)
    return problems


if __name__ == "__main__":
    print(write_sample(*sys.argv[1:3]) or "no console errors")


def test_a_test_interrupted_after_setup_is_not_a_pass(tmp_path):
    from types import SimpleNamespace

    from pytest_laghil.measure import Collector

    def rep(nodeid, when, outcome="passed"):
        return SimpleNamespace(nodeid=nodeid, when=when, duration=0.1, head_line=nodeid,
                               skipped=outcome == "skipped", failed=outcome == "failed",
                               passed=outcome == "passed", user_properties=[], longrepr=None)
    c = Collector()
    for when in ("setup", "call", "teardown"):
        c.add(rep("t::done", when))
    c.add(rep("t::cut", "setup"))            # Ctrl-C in the body: no call report
    c.add(rep("t::cut", "teardown"))
    run = c.results(tmp_path, run_id="r", lab_name="virtual", lab_kind="virtual",
                    profile="default")
    got = {t.nodeid: (t.verdict, t.reason) for t in run.tests}
    assert got["t::done"] == ("passed", "")
    assert got["t::cut"][0] == "error" and "interrupted" in got["t::cut"][1]


def test_allure_results_carry_use_case_mode_and_check_labels(pytester, tmp_path, monkeypatch):
    monkeypatch.setenv("LAGHIL_REPORTS_DIR", str(tmp_path / "reports"))
    monkeypatch.setenv("BUILD_URL", "https://ci.example/job/nightly/42/")
    monkeypatch.setenv("BUILD_TAG", "nightly-42")
    pytester.makepyfile(test_inner=textwrap.dedent("""
        import pytest
        from laghil.cases import bond

        @pytest.mark.roce_lag
        @pytest.mark.bonding
        @pytest.mark.parametrize("kind,mode", [("bond", "802.3ad")])
        def test_rc_traffic_survives_member_pull(kind, mode):
            pass

        @pytest.mark.bonding
        @pytest.mark.parametrize("case", [bond("balance-xor", miimon=10)])
        def test_bond_state_matches_configuration(case):
            pass
    """))
    alluredir = tmp_path / "allure"
    pytester.runpytest_inprocess(f"--alluredir={alluredir}").assert_outcomes(passed=2)
    results = [json.loads(p.read_text()) for p in alluredir.glob("*-result.json")]
    got = {r["name"]: {(lb["name"], lb["value"]) for lb in r["labels"]} for r in results}
    roce = next(v for k, v in got.items() if k.startswith("test_rc_traffic"))
    assert {("epic", "RoCE LAG"), ("feature", "bond 802.3ad"),
            ("story", "rc traffic survives member pull")} <= roce
    state = next(v for k, v in got.items() if k.startswith("test_bond_state"))
    assert {("epic", "bonding"), ("feature", "bond balance-xor")} <= state
    cats = json.loads((alluredir / "categories.json").read_text())
    assert [c["matchedStatuses"] for c in cats][2:] == [["failed"], ["broken"]]
    assert json.loads((alluredir / "executor.json").read_text())["buildUrl"] == \
        "https://ci.example/job/nightly/42/"


def test_baseline_beside_the_figure_in_json_and_html():
    """--baseline's comparison is put on the figure (fixtures/baseline.annotate):
    results.json keeps it, report.html shows baseline, current and change, and
    the bound chart a dot at the baseline's median."""
    from laghil.report.compare import Comparison
    from pytest_laghil.baseline import annotate
    run = sample_run()
    t = run.tests[0]
    t.name = "test_bond_failover_and_failback_within_profile[active-backup[miimon=10]]"
    m = t.measurements[0]
    m.name, m.basis = "T_gap median", "miimon 10 + 1/R 1 + switch-over allowance 30 = 41 ms"
    m.threshold, m.value = 41.0, 22.4
    annotate(t.measurements, [Comparison(t.nodeid, "T_gap median", "ms", "<=", 11.2, 22.4, 3, 5,
                                         True)])
    assert m.baseline == {"median": 11.2, "n": 3, "current": 22.4, "n_current": 5,
                          "change": pytest.approx(1.0), "worse": True}
    assert t.measurements[1].baseline is None, "a figure the baseline lacks is not compared"
    again = RunResults.from_json(run.to_json())
    assert again.tests[0].measurements[0].baseline["worse"] is True
    html = render_html(run)
    assert "Baseline (median) / change" in html
    assert "11.2 (n=3)" in html and "+100% WORSE" in html
    assert 'circle class="base"' in html, "the chart marks the baseline's median"


def test_report_lists_what_the_session_restored_at_its_start():
    run = sample_run()
    run.lab_start = {"restored": [{"ok": True, "what": "cable h1-h2-a: carrier back at both ends",
                                   "detail": "", "run": "abc123"},
                                  {"ok": False, "what": "h1: run 'explode'", "detail": "rc 1",
                                   "run": "abc123"}],
                     "baseline": "/x/baselines/virtual.json", "diff": [], "repaired": [],
                     "refused": ["h1: netns x not in the baseline"], "saved_baseline": None}
    html = render_html(run)
    assert "Lab at the start of the run: found and put right" in html
    assert "restored (journal of run abc123): cable h1-h2-a" in html
    assert "FAILED to restore (journal of run abc123): h1: run &#x27;explode&#x27; - rc 1" in html
    assert "not repaired: h1: netns x not in the baseline" in html
    d = json.loads(run.to_json())
    assert d["lab_start"]["restored"][0]["run"] == "abc123"
    assert RunResults.from_json(run.to_json()).lab_start == d["lab_start"]
    run.lab_start = {"restored": [], "baseline": None, "diff": [], "repaired": [], "refused": [],
                     "saved_baseline": None}
    assert "no clean baseline recorded" in render_html(run)


def test_a_figure_out_of_its_threshold_fails_a_test_that_did_not_assert_it(inner):
    """pytest's exit status says what results.json says: a test that records a
    figure over its threshold and asserts nothing about it fails, naming it."""
    src = """
        from laghil.measure.model import Measurement

        def test_forgets_to_assert(measure):
            measure.record(Measurement("seen down", 642.4, "ms", "polled", threshold=500.0))

        def test_within(measure):
            measure.record(Measurement("seen down", 193.0, "ms", "kernel event", threshold=500.0))
    """
    r, run_dir = inner(source=src)
    r.assert_outcomes(passed=1, failed=1)
    out = r.stdout.str()
    assert "figure out of threshold (recorded by the test, not asserted by it)" in out, out
    assert "seen down 642.4 ms" in out
    d = json.loads((run_dir / "results.json").read_text())
    by_name = {t["name"]: t for t in d["tests"]}
    assert by_name["test_forgets_to_assert"]["outcome"] == "failed"
    assert by_name["test_within"]["verdict"] == "passed"
