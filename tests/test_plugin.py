"""The pytest plugin: capability gating, --certify, disruptive gating, the undo stack.

Each test runs an inner pytest session (pytester) with laghil's plugin loaded and
a lab file of its own; none of them needs a rack or SSH.
"""

import textwrap
from pathlib import Path

import pytest

PLUGINS = []  # laghil's plugin loads through its pytest11 entry point
RACK3 = Path(__file__).resolve().parents[1] / "labs" / "rack3.yaml"

PHYSICAL_LAB = textwrap.dedent("""\
    name: tiny
    kind: physical
    hosts:
      a:
        management: {address: 192.0.2.10, user: lab, key_file: /nonexistent}
        capabilities: [bonding]
        ports: {eth1: {speed: 10000}}
      b:
        management: {address: 192.0.2.11, user: lab, key_file: /nonexistent}
        capabilities: [bonding, sriov]
        ports: {eth1: {speed: 10000}}
    cables:
      - {name: a-b, ends: ["a:eth1", "b:eth1"], faults: [link_down]}
    """)


@pytest.fixture
def inner(pytester, monkeypatch, tmp_path):
    monkeypatch.setenv("LAGHIL_REPORTS_DIR", str(tmp_path / "reports"))
    monkeypatch.setenv("LAGHIL_STATE_DIR", str(tmp_path / "state"))
    lab = pytester.makefile(".yaml", tiny=PHYSICAL_LAB)

    def run(test_source, *args, **kwargs):
        pytester.makepyfile(test_inner=textwrap.dedent(test_source))
        return pytester.runpytest_inprocess(*PLUGINS, "--lab", str(lab), "--profile", "default",
                                            "-rA", *args, **kwargs)
    return run


GATED = """
    import pytest

    @pytest.mark.requires("sriov", count=2)
    def test_needs_two_sriov_hosts():
        pass

    @pytest.mark.requires("sriov")
    def test_needs_one_sriov_host():
        pass

    @pytest.mark.disruptive
    def test_pulls_a_cable():
        pass
"""


GATED_POWER = GATED + """
    @pytest.mark.disruptive
    @pytest.mark.power
    def test_switches_an_outlet():
        pass
"""


def test_missing_capability_skips_naming_capability_and_lab(inner):
    r = inner(GATED)
    r.assert_outcomes(passed=1, skipped=1, deselected=1)
    out = r.stdout.str()
    assert "lab 'tiny' lacks capability 'sriov': needs 2 node(s) with it, has 1" in out


def test_a_physical_lab_deselects_disruptive_tests_and_lists_them(inner):
    r = inner(GATED_POWER)
    r.assert_outcomes(passed=1, skipped=1, deselected=2)
    out = r.stdout.str()
    assert "laghil: disruptive tests deselected" in out, out
    assert ("2 test(s) that take a link, port, outlet or node down were not run on lab 'tiny' "
            "(physical); pass --allow-disruptive to run them:") in out, out
    assert "  test_inner.py::test_pulls_a_cable" in out
    assert "  test_inner.py::test_switches_an_outlet" in out
    # by node id too: a deselected test does not run
    r = inner(GATED, "test_inner.py::test_pulls_a_cable")
    r.assert_outcomes(deselected=1)


def test_allow_disruptive_runs_disruptive_tests(inner):
    inner(GATED, "--allow-disruptive").assert_outcomes(passed=2, skipped=1)
    r = inner(GATED_POWER, "--allow-disruptive")
    r.assert_outcomes(passed=2, skipped=1, deselected=1)
    assert "pass --allow-power to run them" in r.stdout.str()


def test_a_fault_in_a_test_without_the_disruptive_marker_is_refused(inner):
    r = inner("""
        import pytest
        from pytest_laghil.gating import disruption_guard
        from laghil.faults.injectors import FaultError, FaultInjector

        class Rt:
            pass

        class Pull(FaultInjector):
            done = []

            def _inject(self):
                self.done.append("pulled")

        def _pull(request):
            rt = Rt()
            rt.disruption_guard = disruption_guard(request.config)
            undo = []
            f = Pull(rt, "cable x-y (link down)")
            return f, undo

        def test_unmarked(request):
            f, undo = _pull(request)
            with pytest.raises(FaultError) as e:
                f.inject(defer=lambda *a, **k: undo.append(a))
            assert "test_inner.py::test_unmarked: takes cable x-y (link down) without the " \
                "`disruptive` marker" in str(e.value)
            assert undo == [] and Pull.done == []

        @pytest.mark.disruptive
        def test_marked(request):
            f, undo = _pull(request)
            f.inject(defer=lambda *a, **k: undo.append(a))
            assert len(undo) == 1 and Pull.done == ["pulled"]
    """, "--allow-disruptive")
    r.assert_outcomes(passed=2)


def test_switch_capabilities_count_for_requires(pytester, tmp_path, monkeypatch):
    monkeypatch.setenv("LAGHIL_REPORTS_DIR", str(tmp_path / "reports"))
    pytester.makepyfile(test_inner=textwrap.dedent("""
        import pytest

        @pytest.mark.requires("switch_lag")
        def test_needs_a_switch_lag_node():
            pass

        @pytest.mark.requires("switch_lag", count=2)
        def test_needs_two_switch_lag_nodes():
            pass
    """))
    r = pytester.runpytest_inprocess(*PLUGINS, "--lab", str(RACK3), "--profile", "default", "-rA")
    r.assert_outcomes(passed=1, skipped=1)   # sw3 declares switch_lag; no other node does
    assert "lab 'rack3' lacks capability 'switch_lag': needs 2 node(s) with it, has 1" \
        in r.stdout.str()


def test_unknown_capability_in_requires_is_a_usage_error_naming_test_and_name(inner):
    r = inner("""
        import pytest

        @pytest.mark.requires("bonding", "sriov_lagg")
        def test_misspelt():
            pass

        def test_fine():
            pass
    """)
    assert r.ret == pytest.ExitCode.USAGE_ERROR
    err = r.stderr.str()
    assert "test_inner.py::test_misspelt" in err and "unknown capability 'sriov_lagg'" in err
    r.assert_outcomes()   # nothing ran, nothing skipped


def test_certify_turns_capability_skips_into_failures(inner):
    r = inner(GATED, "--certify", "--allow-disruptive")
    r.assert_outcomes(passed=2, failed=1)
    assert "--certify: a skip is a failure in a certification run: lab 'tiny' lacks" in r.stdout.str()


def test_pytest_strict_keeps_its_own_meaning_and_skips_stay_skips(inner):
    """pytest 9's --strict is strict markers/xfail/config, not a certification run."""
    r = inner(GATED, "--strict", "--allow-disruptive")
    r.assert_outcomes(passed=2, skipped=1)
    assert "a certification run, where skips fail, is --certify" in r.stdout.str()


def test_defer_runs_lifo_even_on_failure_and_failing_undo_fails(inner):
    r = inner("""
        order = []

        def test_undo_order(defer):
            defer(order.append, "first")
            defer(order.append, "second")
            assert False, "the test fails"

        def test_order_seen():
            assert order == ["second", "first"]

        def test_failing_undo_fails_the_test(defer):
            def broken():
                raise RuntimeError("link is gone")
            defer(order.append, "still runs")
            defer(broken)

        def test_all_undos_ran():
            assert order[-1] == "still runs"
    """)
    # The failing undo is the test's own failure, not "passed" plus a teardown error.
    r.assert_outcomes(passed=2, failed=2, errors=0)
    out = r.stdout.str()
    assert "FAILED test_inner.py::test_failing_undo_fails_the_test - Failed: undo failed" in out
    assert "undo failed, the lab may not be as it was" in out
    assert "RuntimeError: link is gone" in out


def test_failing_undo_after_a_failing_test_reports_both(inner):
    r = inner("""
        def test_fails_and_its_undo_fails(defer):
            def broken():
                raise RuntimeError("link is gone")
            defer(broken)
            assert 1 == 2, "the test body fails"
    """)
    r.assert_outcomes(failed=1, errors=0)
    out = r.stdout.str()
    assert "the test body fails" in out and "RuntimeError: link is gone" in out


def test_failing_undo_after_a_skip_fails_the_test(inner):
    r = inner("""
        import pytest

        def test_skips_after_a_change(defer):
            def broken():
                raise RuntimeError("link is gone")
            defer(broken)
            pytest.skip("nothing more to see")
    """)
    r.assert_outcomes(failed=1, errors=0)
    assert "RuntimeError: link is gone" in r.stdout.str()


def test_undos_run_once_on_keyboard_interrupt(inner, tmp_path):
    done = tmp_path / "undone"
    r = inner(f"""
        def test_interrupted(defer):
            defer(open({str(done)!r}, "a").write, "undo ran;")
            raise KeyboardInterrupt

        def test_never_runs():
            pass
    """, no_reraise_ctrlc=True)
    assert r.ret == pytest.ExitCode.INTERRUPTED
    assert done.read_text() == "undo ran;"


LACKS = """
    import pytest
    from pytest_laghil import lacks

    @pytest.fixture
    def pair(request, lab):
        lacks(request, "back-to-back pair", lab, "a and b share 1 cable(s), need 2")

    def test_uses_pair(pair):
        pass

    def test_finds_out_in_its_body(pytestconfig, lab):
        lacks(pytestconfig, "sriov", lab, "no VF to bond")
"""


def test_lacks_skips_naming_lab_capability_and_detail(inner):
    r = inner(LACKS)
    r.assert_outcomes(skipped=2)
    out = r.stdout.str()
    assert "lab 'tiny' lacks capability 'back-to-back pair': a and b share 1 cable(s), need 2" in out
    assert "lab 'tiny' lacks capability 'sriov': no VF to bond" in out


def test_certify_turns_lacks_in_fixtures_and_tests_into_failures(inner):
    r = inner(LACKS, "--certify")
    r.assert_outcomes(failed=2, errors=0)
    out = r.stdout.str()
    assert ("--certify: a skip is a failure in a certification run: "
            "lab 'tiny' lacks capability 'back-to-back pair'") in out


def test_bad_lab_file_is_a_usage_error_naming_file_and_line(pytester, tmp_path, monkeypatch):
    monkeypatch.setenv("LAGHIL_REPORTS_DIR", str(tmp_path / "reports"))
    bad = pytester.makefile(".yaml", bad=PHYSICAL_LAB.replace("speed: 10000}}\ncables",
                                                             "speed: fast}}\ncables"))
    pytester.makepyfile(test_x="def test_x():\n    pass\n")
    r = pytester.runpytest_inprocess(*PLUGINS, "--lab", str(bad))
    assert r.ret == pytest.ExitCode.USAGE_ERROR
    assert "bad.yaml:11: hosts.b.ports.eth1.speed" in r.stderr.str()


def test_unknown_lab_name_lists_available_labs(pytester, tmp_path, monkeypatch):
    monkeypatch.setenv("LAGHIL_REPORTS_DIR", str(tmp_path / "reports"))
    pytester.makepyfile(test_x="def test_x():\n    pass\n")
    r = pytester.runpytest_inprocess(*PLUGINS, "--lab", "rack99")
    assert r.ret == pytest.ExitCode.USAGE_ERROR
    assert "unknown lab 'rack99'" in r.stderr.str() and "virtual" in r.stderr.str()


MATRIX = """
    import pytest

    @pytest.mark.full_matrix
    def test_variant(reps):
        print("REPS", reps)

    def test_ci_case(reps):
        print("REPS", reps)
"""


def test_full_matrix_variants_are_deselected_without_the_option(pytester, inner):
    r = inner(MATRIX, "-s")
    r.assert_outcomes(passed=1, deselected=1)
    assert "REPS 3" in r.stdout.str()
    r = inner(MATRIX, "-s", "--full-matrix")
    r.assert_outcomes(passed=2)
    assert r.stdout.str().count("REPS 10") == 2
    r = inner(MATRIX, "-s", "--full-matrix", "--reps", "4")
    assert r.stdout.str().count("REPS 4") == 2


def test_the_plugin_loads_through_its_entry_point_and_the_root_conftest_lists_none():
    from importlib.metadata import entry_points
    eps = [e for e in entry_points(group="pytest11") if e.name == "laghil"]
    assert [e.value for e in eps] == ["pytest_laghil.plugin"]
    root = Path(__file__).resolve().parents[1] / "conftest.py"
    assert "pytest_plugins" not in root.read_text()


def test_unit_tests_and_collect_only_make_no_run_folder(pytester, tmp_path, monkeypatch):
    reports = tmp_path / "reports"
    monkeypatch.setenv("LAGHIL_REPORTS_DIR", str(reports))
    # a unit test (no lab fixture; a local fixture named like one does not count)
    pytester.makepyfile(test_unit="""
        import pytest

        @pytest.fixture
        def profile():
            return "mine"

        def test_pure(profile):
            assert profile == "mine"
    """)
    pytester.runpytest_inprocess("-q").assert_outcomes(passed=1)
    assert not reports.exists()
    pytester.makepyfile(test_lab="def test_uses_the_lab(lab):\n    assert lab.name\n")
    r = pytester.runpytest_inprocess("--collect-only", "-q")
    assert "2 tests collected" in r.stdout.str()
    assert not reports.exists()
    pytester.runpytest_inprocess("-q", "test_lab.py").assert_outcomes(passed=1)
    (run,) = [d for d in reports.iterdir() if d.name != "history"]
    assert {p.name for p in run.iterdir()} >= {"junit.xml", "results.json", "report.html"}
