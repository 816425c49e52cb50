"""Nothing hidden by a retry (issue 21, item 6): a discarded failover trial or a
retried tool run is recorded with its reason and figures (results.json,
junit.xml, the report), and a test with more discards than kept trials fails.
No rack: the trial runner's probe is replaced by canned trials."""

import json
import textwrap
from types import SimpleNamespace

import pytest

import pytest_laghil.lag_checks as lc
from laghil.cases import Case

from test_plugin import inner  # noqa: F401  (the inner-session fixture)


def _trial(why):
    return SimpleNamespace(invalid=lambda: why, member="eth1", method="link_down",
                           detection=None,
                           outage=SimpleNamespace(t_gap_max_ms=12.0, t_loss_max_ms=11.0))


class _Rec:
    def __init__(self):
        self.measurements = []

    def record(self, m):
        self.measurements.append(m)
        return m


def _run(monkeypatch, verdicts, reps):
    """_trials over canned trials (None: valid; text: invalid for that reason)."""
    seq = iter(verdicts)
    monkeypatch.setattr(lc, "run_failover", lambda *a, **k: _trial(next(seq)))
    rec = _Rec()
    monkeypatch.setattr("pytest_laghil.measure.recorder_of", lambda config: rec)
    pair = SimpleNamespace(a=SimpleNamespace(), b=SimpleNamespace(node="h2"), ip_b="10.0.0.2",
                           members=["eth1", "eth2"], active=None)
    case = Case("bond", "balance-rr", {"miimon": 10})
    out = lc._trials(SimpleNamespace(), pair, case, reps, "link_down", "eth1", None,
                     SimpleNamespace(), defer=lambda f: None)
    return out, rec


def test_discarded_trials_are_recorded_with_reason_and_figures(monkeypatch):
    trials, rec = _run(monkeypatch, [None, "detection latency -30 ms is below zero", None,
                                     None], reps=3)
    assert len(trials) == 3
    (m,) = rec.measurements
    assert m.name == "not counted: failover trial 2" and m.value == 12.0 and m.unit == "ms"
    assert "below zero" in m.method and "T_loss 11.0 ms" in m.note and "eth1" in m.note


def _late():
    from laghil.measure.failover import TrialInvalid
    raise TrialInvalid("srv1: the fault would land 1.6 s after its planned instant (node too "
                       "slow to answer): not a valid trial")


def test_a_trial_whose_fault_could_not_land_in_time_is_discarded_and_run_again(monkeypatch):
    """A node too slow to answer before the planned fault instant (the twin's
    four guests on two cores): nothing was pulled; recorded, another run."""
    rec = _Rec()
    monkeypatch.setattr("pytest_laghil.measure.recorder_of", lambda config: rec)
    runs = iter([_late, lambda: "t1", _late, lambda: "t2", lambda: "t3"])
    trials = lc.repeated_trials(SimpleNamespace(), "RoCE LAG bond 802.3ad", 3,
                                lambda: next(runs)())
    assert trials == ["t1", "t2", "t3"]
    assert [m.name for m in rec.measurements] == ["not counted: failover trial 1",
                                                  "not counted: failover trial 3"]
    assert "would land 1.6 s" in rec.measurements[0].method
    assert rec.measurements[0].note == "no figures: nothing was pulled"
    runs = iter([_late, _late, _late])
    with pytest.raises(AssertionError, match=r"RoCE LAG: 3 invalid trials, more than 2"):
        lc.repeated_trials(SimpleNamespace(), "RoCE LAG", 3, lambda: next(runs)())
    runs = iter(["ok", "broken", "never run"])
    assert lc.repeated_trials(SimpleNamespace(), "x", 3, lambda: next(runs),
                              stop=lambda t: t == "broken") == ["ok", "broken"]


def test_more_discards_than_kept_trials_fails(monkeypatch):
    with pytest.raises(AssertionError, match=r"2 invalid trials, more than 1 .*the 1 kept"):
        _run(monkeypatch, ["late", "late again", None], reps=1)


def test_at_most_max_invalid_discards(monkeypatch):
    with pytest.raises(AssertionError, match=rf"more than {lc.MAX_INVALID}"):
        _run(monkeypatch, ["a", "b", "c", None, None, None], reps=10)


def test_a_recorded_discard_reaches_results_json_and_junit(inner, tmp_path):  # noqa: F811
    r = inner("""
        from pytest_laghil.measure import record_not_counted

        def test_retries(request, lab):
            record_not_counted(request.config, "ib_rc_pingpong run 1",
                               "rc 1 (the server may not have been listening yet)", 1, "rc")
    """, f"--junitxml={tmp_path / 'j.xml'}")
    r.assert_outcomes(passed=1)
    (res,) = (tmp_path / "reports").glob("*/results.json")
    (t,) = json.loads(res.read_text())["tests"]
    (m,) = [m for m in t["measurements"] if m["name"].startswith("not counted")]
    assert m["name"] == "not counted: ib_rc_pingpong run 1" and m["value"] == 1
    assert "server may not have been listening" in m["method"]
    assert 'name="not counted: ib_rc_pingpong run 1"' in (tmp_path / "j.xml").read_text()
