"""Profiles derived from a lab's own healthy runs (`laghil profile derive`), and
a physical lab that refuses another platform's profile. No rack, no network."""

import json
import statistics
from pathlib import Path

import pytest
import yaml

from laghil import derive as dv
from laghil.cli import main
from laghil.lab import load_lab
from laghil.measure.model import Measurement
from laghil.profile import foreign_profile, load_profile
from laghil.report import RunResults, TestResult

from test_plugin import PHYSICAL_LAB, RACK3, inner  # noqa: F401

KEY = "802.3ad.miimon_10@switch"


def _fig(name, reps, key=KEY, kind="switchover_ms", config=11.0, allowance=85.0):
    return Measurement(f"{name} median", statistics.median(reps), "ms", "m", repetitions=reps,
                       threshold=config + allowance,
                       bound={"case_key": key, "allowance": kind, "allowance_ms": allowance,
                              "config_ms": config, "statistic": "median"})


def _run(i, figs, lab="rack3", outcome="passed"):
    t = TestResult(f"suites/x.py::test_fo[{i}]", "test_fo", outcome, measurements=figs)
    return RunResults(f"2026120{i}-000000-{lab}", lab, "physical", "default", 0.0, 1.0,
                      inventory={"srv1": {"kernel": "6.8.0-41", "ports": {
                          "ens1f0": {"driver": "mlx5_core", "version": "6.8", "firmware":
                                     "22.39.1002"}}}},
                      tests=[t])


HEALTHY = [[4.0, 5.0, 6.0], [5.0, 4.5, 5.5], [6.0, 5.0, 30.0]]


def test_derived_allowance_is_relative_to_the_healthy_median():
    runs = [_run(i, [_fig("T_gap", r)]) for i, r in enumerate(HEALTHY)]
    d = dv.derive_profile(runs, "rack3", load_profile("default"), "rack3")
    der = d["derivations"]["switchover_ms"][KEY]
    m = statistics.median(sum(HEALTHY, []))
    assert der["median_ms"] == m == 5.0 and der["repetitions"] == 9 and der["runs"] == 3
    # bound = max(2.5 x 5, 11 + 5) = 16 -> allowance 5 (rounded up to 5 ms)
    assert d["allowances"]["switchover_ms"][KEY] == der["allowance_ms"] == 5.0
    assert der["median_bound_ms"] == 16.0
    # the worst bound: min(1.5 x p90, 8 x median) = min(1.5 x 10.8, 40) = 16.2 -> stall 5
    assert d["allowances"]["stall_ms"][f"switchover_ms:{KEY}"] == 5.0
    assert d["platform"]["lab"] == "rack3" and d["platform"]["kernels"] == ["6.8.0-41"]
    assert d["platform"]["ports"]["srv1:ens1f0"]["firmware"] == "22.39.1002"
    # what is not derived is kept from the base
    assert d["thresholds"] == load_profile("default").thresholds
    assert d["allowances"]["switchover_ms"]["balance-rr"] == 15


def test_the_promise_ten_times_and_three_times_slower_fail():
    runs = [_run(i, [_fig("T_gap", [30.0, 32.0, 35.0 + i])]) for i in range(3)]
    d = dv.derive_profile(runs, "rack3", load_profile("default"), "rack3")
    der = d["derivations"]["switchover_ms"][KEY]
    median_bound, worst_bound = der["median_bound_ms"], der["worst_bound_ms"]
    m = der["median_ms"]
    assert 3 * m > median_bound, der          # 3x slower fails the median bound
    assert 10 * m > worst_bound, der          # 10x slower fails the worst repetition's too


def test_one_outlier_cannot_loosen_the_worst_bound():
    reps = [[5.0, 5.0, 5.0], [5.0, 6.0, 5.0], [5.0, 5.0, 400.0]]
    runs = [_run(i, [_fig("T_gap", r)]) for i, r in enumerate(reps)]
    der = dv.derive_profile(runs, "rack3", load_profile("default"),
                            "rack3")["derivations"]["switchover_ms"][KEY]
    assert der["worst_bound_ms"] <= 8 * der["median_ms"] + 5, der
    assert "capped" in der and "modes" not in der, der      # an outlier, not a mode


def test_refused_below_three_runs_of_three_repetitions_naming_each_case():
    runs = [_run(i, [_fig("T_gap", r), _fig("reversion", [9.0, 9.0], kind="failback_ms")])
            for i, r in enumerate(HEALTHY[:2])]
    with pytest.raises(dv.DeriveError) as e:
        dv.derive_profile(runs, "rack3", load_profile("default"), "rack3")
    text = str(e.value)
    assert "2 run(s) of the 3 needed" in text
    assert f"switchover_ms {KEY}: 2 run(s) of the 3 needed" in text
    assert f"failback_ms {KEY}: 2 run(s)" in text


def test_a_kind_kept_from_the_base_is_neither_derived_nor_required():
    """--keep step_ms: the runs' few step figures neither refuse the derivation
    nor set the allowance; the base's is kept as it is (an unknown kind refused)."""
    runs = [_run(i, [_fig("T_gap", r), _fig("step", [9.0, 9.0], kind="step_ms")])
            for i, r in enumerate(HEALTHY)]
    base = load_profile("default")
    with pytest.raises(dv.DeriveError, match=f"step_ms {KEY}: 6 repetition"):
        dv.derive_profile(runs, "rack3", base, "rack3")
    d = dv.derive_profile(runs, "rack3", base, "rack3", keep=("step_ms",))
    assert d["allowances"]["step_ms"] == base.allowances["step_ms"]
    assert "step_ms" not in d["derivations"] and KEY in d["derivations"]["switchover_ms"]
    with pytest.raises(dv.DeriveError, match="--keep step: not an allowance kind"):
        dv.derive_profile(runs, "rack3", base, "rack3", keep=("step",))


def test_runs_of_another_lab_are_refused():
    runs = [_run(i, [_fig("T_gap", r)], lab="virtual") for i, r in enumerate(HEALTHY)]
    with pytest.raises(dv.DeriveError, match="runs of lab.*virtual.*given to derive lab 'rack3'"):
        dv.derive_profile(runs, "rack3", load_profile("default"), "rack3")


def test_cli_writes_a_profile_that_loads(tmp_path, capsys):
    for i, r in enumerate(HEALTHY):
        d = tmp_path / f"run{i}"
        d.mkdir()
        (d / "results.json").write_text(_run(i, [_fig("T_gap", r)]).to_json())
    out = tmp_path / "rack3.yaml"
    assert main(["profile", "derive", "--lab", "rack3", str(tmp_path), "-o", str(out)]) == 0
    p = load_profile(str(out))
    assert p.platform["lab"] == "rack3" and p.allowance("switchover_ms", KEY) == 5.0
    assert "derivations" in yaml.safe_load(out.read_text())
    assert foreign_profile(p, load_lab(str(RACK3))) is None
    assert main(["profile", "derive", "--lab", "rack3", str(tmp_path / "run0"), "-o",
                 str(tmp_path / "x.yaml")]) == 2
    assert "1 run(s) of the 3 needed" in capsys.readouterr().err


def test_default_profile_is_the_virtual_racks():
    p = load_profile("default")
    assert foreign_profile(p, load_lab("virtual")) is None
    assert foreign_profile(p, load_lab("twin:rack3")) is None
    why = foreign_profile(p, load_lab(str(RACK3)))
    assert "derived on lab virtual, not on rack3" in why
    assert "laghil profile derive --lab rack3" in why


def test_a_physical_lab_with_the_default_profile_stops_naming_the_command(pytester, tmp_path,
                                                                         monkeypatch):
    monkeypatch.setenv("LAGHIL_REPORTS_DIR", str(tmp_path / "reports"))
    pytester.makepyfile(test_inner="def test_never_runs():\n    assert False\n")
    r = pytester.runpytest_inprocess("--lab", str(RACK3))
    assert r.ret == pytest.ExitCode.USAGE_ERROR
    err = r.stderr.str()
    assert "laghil profile derive --lab rack3" in err and "--profile" in err
    assert "test_never_runs" not in r.stdout.str()


def test_naming_the_profile_judges_anyway_and_the_report_says_so(inner, tmp_path):  # noqa: F811
    r = inner("def test_uses_lab(lab):\n    assert lab.name\n")
    r.assert_outcomes(passed=1)
    assert "was derived on lab virtual, not on tiny" in r.stdout.str()
    (res,) = (tmp_path / "reports").glob("*/results.json")
    d = json.loads(res.read_text())
    assert "judged with it anyway" in d["profile_note"]
    html = (res.parent / "report.html").read_text()
    assert "Profile of another platform" in html


def test_modes_split_a_bimodal_case_never_an_outlier():
    lo, hi = dv.modes([0.0] * 6 + [60.0, 63.0, 110.0, 120.0, 200.0, 203.0])
    assert hi == [60.0, 63.0, 110.0, 120.0, 200.0, 203.0] and lo == [0.0] * 6
    assert dv.modes([5.0] * 8 + [400.0])[1] == []          # one slow repetition: an outlier
    assert dv.modes([0.0, 14.0, 16.0, 16.0, 19.0, 28.0])[1] == []   # one fast one neither
    assert dv.modes([0.0, 0.0, 0.0, 0.0, 8.0, 18.5])[1] == []       # no clear gap


def test_a_bimodal_case_is_judged_per_mode():
    # fail-back through 802.3ad: most repetitions quick, a third wait for LACP
    reps = [[0.0, 4.0, 69.0], [0.0, 20.0, 149.0], [2.0, 3.0, 80.0]]
    runs = [_run(i, [_fig("reversion", r, kind="failback_ms")]) for i, r in enumerate(reps)]
    d = dv.derive_profile(runs, "rack3", load_profile("default"), "rack3")
    der = d["derivations"]["failback_ms"][KEY]
    assert der["modes"]["upper"] == [69.0, 80.0, 149.0], der
    assert der["median_ms"] == 4.0, der
    # a run's median of 3 lands in the slow mode when 2 of its 3 repetitions wait
    # (a third of them here: 1 run in 4), so the median is judged like a slow
    # repetition: 149 (a healthy run [0, 149, 149]) passes it, where 2.5 x the
    # median (16 ms) would fail that healthy run
    assert 149.0 <= der["median_bound_ms"] < 10 * 80.0, der
    # every healthy repetition of the slow mode is inside the worst bound, and the
    # slow mode 10x slower is not
    assert 149.0 <= der["worst_bound_ms"] < 10 * 80.0, der
    assert d["allowances"]["stall_ms"][f"failback_ms:{KEY}"] == der["stall_ms"]


def test_a_one_mode_case_keeps_its_median_bound_relative():
    # the slow-mode rule is for bimodal cases only: one mode keeps 2.5 x its median
    runs = [_run(i, [_fig("reversion", r, kind="failback_ms")]) for i, r in enumerate(HEALTHY)]
    der = dv.derive_profile(runs, "rack3", load_profile("default"),
                            "rack3")["derivations"]["failback_ms"][KEY]
    assert "modes" not in der and der["median_bound_ms"] == 16.0, der


def _step(name, value, key=KEY, config=2.0, allowance=150.0):
    return Measurement(name, value, "ms", "m", threshold=config + allowance,
                       bound={"case_key": key, "allowance": "step_ms", "allowance_ms": allowance,
                              "config_ms": config, "statistic": "each"})


def test_steps_are_derived_as_values_judged_alone():
    # per run: two members out (a gap while the host moves off), back (none), a
    # bridge re-add resuming before its commands end (negative: 0)
    outs = [(22.0, 90.0), (30.0, 64.0), (44.0, 100.0)]
    runs = [_run(i, [_step("swp1 out: T_gap max", a), _step("swp1 back: T_gap max", 0.0),
                     _step("swp2 out: T_gap max", b), _step("swp2 back: T_gap max", 0.0),
                     _step("br back: resumed after", -80.0)])
            for i, (a, b) in enumerate(outs)]
    d = dv.derive_profile(runs, "rack3", load_profile("default"), "rack3")
    der = d["derivations"]["step_ms"][KEY]
    assert der["repetitions"] == 15 and der["min_ms"] == 0.0, der     # -80 -> 0
    assert "stall_ms" not in der and f"step_ms:{KEY}" not in d["allowances"]["stall_ms"]
    assert der["modes"]["upper"] == [22.0, 30.0, 44.0, 64.0, 90.0, 100.0], der
    # 1.5 x p90 of the out steps (95) -> 142.5: every healthy step passes, a step
    # 3x the slowest healthy one fails
    assert 100.0 <= der["bound_ms"] < 3 * 100.0, der
    assert d["allowances"]["step_ms"][KEY] == der["allowance_ms"] == der["bound_ms"] - 2.0


def _samples(n_cases, reps, top=()):
    out = {}
    for c in range(n_cases):
        s = dv.Samples("switchover_ms", f"case{c}")
        s.values = list(reps) + (list(top) if c == 0 else [])
        out[("switchover_ms", f"case{c}")] = s
    return out


def test_the_platform_jitter_is_a_high_quantile_the_two_largest_never_set():
    reps = [10.0, 11.0, 12.0, 14.0, 20.0]
    base = dv.platform_jitter(_samples(10, reps), 99, 1.5)
    assert base == pytest.approx(1.5 * 8.0), base         # 20 - the median 12, pooled
    two = dv.platform_jitter(_samples(10, reps, top=(500.0, 900.0)), 99, 1.5)
    huge = dv.platform_jitter(_samples(10, reps, top=(5000.0, 9000.0)), 99, 1.5)
    assert two == huge, (two, huge)
    assert dv.platform_jitter(_samples(1, [1.0, 2.0, 3.0])) == 0.0   # too few to say


def test_the_platform_jitter_extrapolates_the_tail_its_largest_values_never_set_it():
    import math
    import random
    rnd = random.Random(7)
    # 600 excesses of an exponential tail (scale 5 ms): the true 1e-4 quantile is
    # 5 x ln(1e4) = 46 ms, past anything 600 repetitions show
    reps = [rnd.expovariate(1 / 5.0) for _ in range(600)]
    s = {("switchover_ms", "c"): dv.Samples("switchover_ms", "c", values=[0.0] * 600 + reps)}
    j = dv.platform_jitter(s)
    truth = 5.0 * math.log(1 / dv.JITTER_EXCEEDANCE)
    assert max(reps) < j and 0.7 * truth < j < 1.4 * truth, (max(reps), j, truth)
    # two huge repetitions move the median of the tail, not its scale
    s2 = {("switchover_ms", "c"): dv.Samples("switchover_ms", "c",
                                             values=[0.0] * 600 + reps + [5000.0, 9000.0])}
    assert dv.platform_jitter(s2) < 1.2 * j, (dv.platform_jitter(s2), j)


def test_a_stall_allowance_is_looked_up_per_figure():
    from laghil.profile import Profile
    p = Profile("p", 1, "x", {}, {"stall_ms": {"default": 150, "802.3ad": 20,
                                               "failback_ms:802.3ad.miimon_10": 155}})
    assert p.allowance("stall_ms", "802.3ad.miimon_10", figure="failback_ms") == 155
    assert p.allowance("stall_ms", "802.3ad.miimon_10", figure="switchover_ms") == 20
    assert p.allowance("stall_ms", "802.3ad.miimon_10") == 20
    assert p.allowance("stall_ms", "balance-rr.miimon_10", figure="failback_ms") == 150


def test_a_derived_profile_keeps_its_bases_comments_and_loads_back(tmp_path):
    from laghil.profile_text import MARK, render
    base = load_profile("default")
    runs = [_run(i, [_fig("T_gap", r)], lab="virtual") for i, r in enumerate(HEALTHY)]
    d = dv.derive_profile(runs, "virtual", base, "default", version=9)
    text = render(d, Path(base.source).read_text(), ["header line"])
    assert yaml.safe_load(text) == d
    assert text.startswith(f"{MARK} header line\n")
    # what the derivation did not touch keeps its comments: the ACK timeout's
    # measurement, igb's link-down delay, the switch refusals' source
    for words in ("local ACK timeout exponent", "igb is bimodal", "mlxsw's texts are from"):
        assert words in text, words
    # a derived profile derived again: one header, the same text
    p = tmp_path / "default.yaml"
    p.write_text(text)
    again = render(d, p.read_text(), ["header line"])
    assert again == text
    assert again.count(f"{MARK} header line") == 1


def test_render_refuses_a_text_that_would_not_load_back():
    from laghil.profile_text import render
    base = load_profile("default")
    runs = [_run(i, [_fig("T_gap", r)], lab="virtual") for i, r in enumerate(HEALTHY)]
    d = dv.derive_profile(runs, "virtual", base, "default")
    broken = Path(base.source).read_text().replace("allowances:\n", "allowances:\n  ][\n", 1)
    with pytest.raises((ValueError, yaml.YAMLError)):
        render(d, broken, ["h"])


def test_a_lab_with_a_profile_of_its_own_is_judged_with_it(tmp_path, monkeypatch):
    """`profiles/<lab>.yaml` (written by `laghil profile derive --lab NAME`) is
    what a run on that lab is judged with when --profile names none; any other
    lab keeps the default."""
    from laghil.profile import default_profiles_dir, profile_for_lab
    src = default_profiles_dir()
    monkeypatch.setenv("LAGHIL_PROFILES_DIR", str(tmp_path))
    (tmp_path / "default.yaml").write_text((src / "default.yaml").read_text())
    assert profile_for_lab(load_lab("virtual-ovs")) == "default"
    (tmp_path / "virtual-ovs.yaml").write_text((src / "default.yaml").read_text())
    assert profile_for_lab(load_lab("virtual-ovs")) == "virtual-ovs"
    assert profile_for_lab(load_lab("virtual")) == "default"


def test_a_run_judged_with_its_labs_own_profile_records_that_profile(pytester, tmp_path,
                                                                     monkeypatch):
    """No --profile on a lab with a profile of its own: the run goes on (no
    'another platform's profile' stop) and results.json names that profile."""
    from laghil.profile import default_profiles_dir
    from test_plugin import PLUGINS
    src = (default_profiles_dir() / "default.yaml").read_text()
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "default.yaml").write_text(src)
    own = src.replace("name: default\n", "name: tiny\n", 1).replace("  lab: virtual\n",
                                                                      "  lab: tiny\n", 1)
    assert own != src and "name: tiny" in own and "lab: tiny" in own
    (profiles / "tiny.yaml").write_text(own)
    monkeypatch.setenv("LAGHIL_PROFILES_DIR", str(profiles))
    monkeypatch.setenv("LAGHIL_REPORTS_DIR", str(tmp_path / "reports"))
    monkeypatch.setenv("LAGHIL_STATE_DIR", str(tmp_path / "state"))
    lab = pytester.makefile(".yaml", tiny=PHYSICAL_LAB)
    pytester.makepyfile(test_inner="def test_uses_lab(lab, profile):\n"
                                   "    assert profile.name == 'tiny'\n")
    r = pytester.runpytest_inprocess(*PLUGINS, "--lab", str(lab), "-rA")
    r.assert_outcomes(passed=1)
    (res,) = (tmp_path / "reports").glob("*/results.json")
    assert json.loads(res.read_text())["profile"] == "tiny"

