"""Certification plans: what a certification run must run, as data (certs/NAME.yaml).

A plan names the cases that make a claim (a test, and globs over its
parameter ids: ``802.3ad*`` matches the back-to-back and the via-switch case),
the repetitions each failover case runs, and the capabilities a lab must
declare to run it (two hosts with every one of ``needs.hosts``; a switch with
every one of ``needs.switch``). ``pytest --certify=NAME --lab LAB`` runs
exactly the plan: selecting by hand (``-k``, ``-m``, ``--deselect``, node ids)
is refused, a lab the plan does not fit is refused before the first test
naming what it lacks, and a plan case that selects no test is refused naming
the case. The plan's sha256 goes into the certification bundle, which
``laghil report verify`` checks against the shipped plan.
"""

import fnmatch
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from .errors import LaghilError
from .lab.fields import CAPABILITIES
from .paths import shipped_dir

NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
TEST = re.compile(r"[A-Za-z0-9_./-]+\.py::[A-Za-z_][A-Za-z0-9_]*")
KEYS = {"name", "version", "description", "claim", "needs", "reps", "cases"}


class PlanError(LaghilError):
    pass


def default_certs_dir():
    """``$LAGHIL_CERTS_DIR``, else the checkout's ``certs/``, else the copy installed
    inside the package (laghil/certs)."""
    return shipped_dir("certs", "LAGHIL_CERTS_DIR")


@dataclass(frozen=True)
class PlanCase:
    test: str                   # "suites/x/test_y.py::test_z"
    params: tuple = ()          # globs over the parameter id; () = every parameter

    @property
    def label(self):
        return self.test + (f"[{'|'.join(self.params)}]" if self.params else "")

    def matches(self, nodeid):
        """Does the pytest node id ``path::func[param]`` belong to this case?"""
        base, _, rest = nodeid.partition("[")
        if base != self.test and not base.endswith("/" + self.test):
            return False        # (a rootdir above the checkout prefixes every node id)
        if not self.params:
            return True
        param = rest[:-1] if rest.endswith("]") else rest
        return any(fnmatch.fnmatchcase(param, g) for g in self.params)


@dataclass(frozen=True)
class Plan:
    name: str
    version: int
    description: str
    claim: str
    source: str
    sha256: str
    reps: int
    cases: tuple
    host_needs: tuple = ()
    switch_needs: tuple = ()

    @property
    def label(self):
        return f"{self.name} v{self.version}"

    def case_of(self, nodeid):
        """The first plan case ``nodeid`` belongs to, or None."""
        return next((c for c in self.cases if c.matches(nodeid)), None)

    def lab_problems(self, lab):
        """Why ``lab`` cannot run this plan ([] when it can): the capabilities it
        lacks, naming the hosts and switches and what each lacks."""
        out = []
        if self.host_needs:
            need = set(self.host_needs)
            fit = [h for h in lab.hosts if need <= set(lab.capabilities(h))]
            if len(fit) < 2:
                lacks = "; ".join(f"{h} lacks {', '.join(sorted(need - set(lab.capabilities(h))))}"
                                  for h in lab.hosts if h not in fit) or "it has no hosts"
                out.append(f"plan {self.label} needs two hosts with {', '.join(sorted(need))}: "
                           f"lab {lab.name} has {len(fit)} ({', '.join(fit) or 'none'}); {lacks}")
        if self.switch_needs:
            need = set(self.switch_needs)
            fit = [s for s in lab.switches if need <= set(lab.capabilities(s))]
            if not fit:
                lacks = "; ".join(f"{s} lacks {', '.join(sorted(need - set(lab.capabilities(s))))}"
                                  for s in lab.switches) or "it has no switch"
                out.append(f"plan {self.label} needs a switch with {', '.join(sorted(need))}: "
                           f"lab {lab.name}: {lacks}")
        return out


def available_plans(certs_dir=None):
    d = Path(certs_dir) if certs_dir else default_certs_dir()
    return sorted(p.stem for p in d.glob("*.yaml")) if d.is_dir() else []


def load_plan(name_or_path):
    """The plan ``certs/NAME.yaml`` (or a path); PlanError naming the file and
    every field that is wrong."""
    p = Path(name_or_path)
    if p.suffix not in (".yaml", ".yml") and "/" not in str(name_or_path):
        if not NAME.fullmatch(str(name_or_path)):
            raise PlanError(f"certification plan name {str(name_or_path)!r}: lower case letters, "
                            "digits and '-' only")
        p = default_certs_dir() / f"{name_or_path}.yaml"
    if not p.is_file():
        raise PlanError(f"unknown certification plan {str(name_or_path)!r}; shipped: "
                        f"{', '.join(available_plans()) or 'none'} ({default_certs_dir()})")
    raw = p.read_bytes()
    try:
        d = yaml.safe_load(raw)
    except yaml.YAMLError as e:
        raise PlanError(f"{p}: not valid YAML: {e}") from None
    problems = []
    if not isinstance(d, dict):
        raise PlanError(f"{p}: a plan is a mapping with {', '.join(sorted(KEYS))}")
    problems += [f"{p}: unknown field {k!r} (fields: {', '.join(sorted(KEYS))})"
                 for k in d if k not in KEYS]
    problems += [f"{p}: missing {k!r}" for k in ("name", "version", "reps", "cases")
                 if k not in d]
    name = d.get("name")
    if "name" in d and not (isinstance(name, str) and NAME.fullmatch(name)):
        problems.append(f"{p}: name: {name!r} is not a plan name (lower case, digits, '-')")
    elif isinstance(name, str) and name != p.stem:
        problems.append(f"{p}: name: {name!r} is not the file's name {p.stem!r}")
    for k, lo in (("version", 1), ("reps", 3)):
        v = d.get(k)
        if k in d and (not isinstance(v, int) or isinstance(v, bool) or v < lo):
            problems.append(f"{p}: {k}: {v!r} is not a whole number >= {lo}")
    needs = d.get("needs") or {}
    if not isinstance(needs, dict) or set(needs) - {"hosts", "switch"}:
        problems.append(f"{p}: needs: a mapping of 'hosts' and 'switch' to capabilities")
        needs = {}
    for k in ("hosts", "switch"):
        for c in needs.get(k) or []:
            if c not in CAPABILITIES:
                problems.append(f"{p}: needs.{k}: unknown capability {c!r}; allowed: "
                                f"{', '.join(CAPABILITIES)}")
    cases = []
    for i, c in enumerate(d.get("cases") or []):
        where = f"{p}: cases[{i}]"
        if not isinstance(c, dict) or set(c) - {"test", "params"} or "test" not in c:
            problems.append(f"{where}: a mapping with 'test' and optional 'params'")
            continue
        if not isinstance(c["test"], str) or not TEST.fullmatch(c["test"]):
            problems.append(f"{where}.test: {c['test']!r} is not path/to/test_x.py::test_name")
            continue
        params = c.get("params") or []
        if not isinstance(params, list) or not all(isinstance(g, str) and g for g in params):
            problems.append(f"{where}.params: a list of globs over the parameter id")
            continue
        cases.append(PlanCase(c["test"], tuple(params)))
    if "cases" in d and not cases and not problems:
        problems.append(f"{p}: cases: a plan names at least one case")
    if problems:
        raise PlanError("; ".join(problems))
    return Plan(name=name, version=d["version"], description=str(d.get("description") or ""),
                claim=str(d.get("claim") or ""), source=str(p),
                sha256=hashlib.sha256(raw).hexdigest(), reps=d["reps"], cases=tuple(cases),
                host_needs=tuple(needs.get("hosts") or ()),
                switch_needs=tuple(needs.get("switch") or ()))


def selection_problems(plan, nodeids):
    """The plan cases that select none of ``nodeids`` (the tests a run would
    run after collection and the lab's own deselection): one line each."""
    return [f"plan {plan.label}: case {c.label} selects no test of this run"
            for c in plan.cases if not any(c.matches(n) for n in nodeids)]
