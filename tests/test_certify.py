"""Certification plans (certs/*.yaml, laghil.certplan) and ``--certify=PLAN``:
exactly the plan runs, or the run is refused before its first test."""

import ast
import textwrap
from pathlib import Path

import pytest

from laghil.certplan import PlanCase, PlanError, available_plans, load_plan
from laghil.lab import load_lab

from test_plugin import inner  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]

TESTS = """
    import pytest

    def test_a():
        pass

    @pytest.mark.parametrize("x", ["active-backup[m=1]", "802.3ad[m=1]", "balance-rr[m=1]"])
    def test_b(x):
        pass

    def test_c():
        pass
"""


def _plan(tmp_path, monkeypatch, body, name="p"):
    d = tmp_path / "certs"
    d.mkdir(exist_ok=True)
    (d / f"{name}.yaml").write_text(textwrap.dedent(body))
    monkeypatch.setenv("LAGHIL_CERTS_DIR", str(d))
    return d / f"{name}.yaml"


PLAN = """\
    name: p
    version: 1
    needs: {hosts: [bonding]}
    reps: 3
    cases:
      - test: test_inner.py::test_a
      - test: test_inner.py::test_b
        params: ["active-backup*", "802.3ad*"]
"""


def test_a_plan_runs_exactly_its_cases(inner, tmp_path, monkeypatch):  # noqa: F811
    _plan(tmp_path, monkeypatch, PLAN)
    r = inner(TESTS, "--certify=p")
    r.assert_outcomes(passed=3, deselected=2)
    out = r.stdout.str()
    assert "laghil: certification plan p v1" in out and "3 repetitions" in out


@pytest.mark.parametrize("args,named", [
    (["-k", "foo"], "-k 'foo'"),
    (["-m", "bonding"], "-m 'bonding'"),
    (["--deselect", "test_inner.py::test_a"], "--deselect test_inner.py::test_a"),
    (["test_inner.py::test_a"], "test_inner.py::test_a"),
])
def test_a_selection_of_its_own_is_refused_before_any_test(inner, tmp_path, monkeypatch,  # noqa: F811
                                                          args, named):
    _plan(tmp_path, monkeypatch, PLAN)
    r = inner(TESTS, "--certify=p", *args)
    assert r.ret == pytest.ExitCode.USAGE_ERROR, r.stdout.str()
    err = r.stderr.str()
    assert "runs exactly its cases" in err and named in err, err
    assert "passed" not in r.stdout.str()


def test_other_repetitions_than_the_plans_are_refused(inner, tmp_path, monkeypatch):  # noqa: F811
    _plan(tmp_path, monkeypatch, PLAN)
    r = inner(TESTS, "--certify=p", "--reps", "5")
    assert r.ret == pytest.ExitCode.USAGE_ERROR
    assert "runs every failover case 3 times; --reps 5" in r.stderr.str()


def test_a_lab_without_a_needed_capability_is_refused_naming_it(inner, tmp_path,  # noqa: F811
                                                                monkeypatch):
    _plan(tmp_path, monkeypatch, PLAN.replace("[bonding]", "[bonding, mlx5]"))
    r = inner(TESTS, "--certify=p")
    assert r.ret == pytest.ExitCode.USAGE_ERROR
    err = r.stderr.str()
    assert "needs two hosts with bonding, mlx5: lab tiny has 0 (none)" in err, err
    assert "a lacks mlx5; b lacks mlx5" in err, err


def test_a_case_that_selects_nothing_is_refused(inner, tmp_path, monkeypatch):  # noqa: F811
    _plan(tmp_path, monkeypatch, PLAN + "      - test: test_inner.py::test_gone\n")
    r = inner(TESTS, "--certify=p")
    assert r.ret == pytest.ExitCode.USAGE_ERROR
    assert "case test_inner.py::test_gone selects no test of this run" in r.stderr.str()


def test_a_skip_in_a_plan_fails(inner, tmp_path, monkeypatch):  # noqa: F811
    _plan(tmp_path, monkeypatch, "name: p\nversion: 1\nreps: 3\ncases:\n"
          "  - test: test_inner.py::test_s\n")
    r = inner("""
        import pytest

        @pytest.mark.requires("sriov", count=2)
        def test_s():
            pass
    """, "--certify=p")
    r.assert_outcomes(failed=1)


def test_an_unknown_plan_names_the_shipped_ones(inner):  # noqa: F811
    r = inner(TESTS, "--certify=nope")
    assert r.ret == pytest.ExitCode.USAGE_ERROR
    assert "unknown certification plan 'nope'; shipped: " in r.stderr.str()


def test_a_broken_plan_names_the_file_and_every_field(tmp_path, monkeypatch):
    p = _plan(tmp_path, monkeypatch, """\
        name: q
        version: 0
        reps: 2
        color: red
        needs: {hosts: [bonding, warp_drive]}
        cases:
          - test: "rm -rf /"
          - {test: x.py::test_y, params: "oops"}
    """, name="p")
    with pytest.raises(PlanError) as e:
        load_plan("p")
    text = str(e.value)
    for part in (f"{p}: unknown field 'color'", "name: 'q' is not the file's name 'p'",
                 "version: 0 is not a whole number >= 1", "reps: 2 is not a whole number >= 3",
                 "needs.hosts: unknown capability 'warp_drive'",
                 "cases[0].test: 'rm -rf /' is not path/to/test_x.py::test_name",
                 "cases[1].params: a list of globs"):
        assert part in text, (part, text)
    with pytest.raises(PlanError, match="lower case letters"):
        load_plan("Bond;team")


def test_a_case_matches_its_tests_by_parameter_glob():
    c = PlanCase("suites/b.py::test_f", ("802.3ad*",))
    assert c.matches("suites/b.py::test_f[802.3ad[miimon=10]]")
    assert c.matches("suites/b.py::test_f[802.3ad-via-switch[miimon=10]]")
    assert not c.matches("suites/b.py::test_f[balance-rr[miimon=10]]")
    assert not c.matches("suites/b.py::test_fx[802.3ad]")
    assert PlanCase("suites/b.py::test_f").matches("suites/b.py::test_f[anything]")


def _test_functions(path):
    tree = ast.parse((ROOT / path).read_text())
    return {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}


def test_every_shipped_plan_loads_and_names_tests_that_exist():
    names = available_plans(ROOT / "certs")
    for want in ("roce-lag", "roce-lag-mlx5", "sriov-vf-lag", "switch-lag", "ib-bond",
                 "bond-team", "bond-team-smoke"):
        assert want in names, names
    for name in names:
        plan = load_plan(name)
        assert plan.reps >= (3 if name.endswith("smoke") else 10), (name, plan.reps)
        for c in plan.cases:
            path, func = c.test.split("::")
            assert func in _test_functions(path), f"plan {name}: {c.test} does not exist"


def test_what_the_virtual_lab_can_certify():
    lab = load_lab("virtual")
    assert load_plan("bond-team-smoke").lab_problems(lab) == []
    assert load_plan("roce-lag").lab_problems(lab) == []
    why = load_plan("roce-lag-mlx5").lab_problems(lab)
    assert why and "needs two hosts with mlx5, roce_lag" in why[0], why
    assert "h1 lacks mlx5; h2 lacks mlx5" in why[0], why


def test_a_shipped_plan_with_a_selection_is_refused_before_any_test(inner):  # noqa: F811
    """`pytest --certify=roce-lag -k foo`: refused before collection, naming -k."""
    r = inner(TESTS, "--certify=roce-lag", "-k", "foo")
    assert r.ret == pytest.ExitCode.USAGE_ERROR
    err = r.stderr.str()
    assert "plan roce-lag v1 runs exactly its cases" in err and "-k 'foo'" in err, err
    assert "passed" not in r.stdout.str() and "collected" not in r.stdout.str()
