"""The sources themselves: no name used that is not defined (pyflakes), which
a test run reaches only on the code path that uses it (a rack-only branch,
an undo that runs when a test fails)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = ("laghil", "fixtures", "suites", "tests", "scripts")


def test_no_undefined_name_in_any_source():
    r = subprocess.run([sys.executable, "-m", "pyflakes", *FOLDERS], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    bad = [ln for ln in (r.stdout + r.stderr).splitlines()
           if "undefined name" in ln or "syntax error" in ln.lower()
           or "referenced before assignment" in ln]
    assert not bad, "names used and never defined:\n" + "\n".join(bad)


def test_each_vocabulary_has_one_source():
    """The names a lab file may use are read from what implements them (a
    platform is one with a driver, a fault kind one with an injector, a PDU
    model one with a module); the use-case markers and the report's titles
    from one table; every suite folder of the catalogue is a use case there."""
    from fixtures.options import MARKERS
    from laghil.drivers.switch import DRIVERS
    from laghil.faults.injectors import FAULT_KINDS as INJECTORS
    from laghil.lab import fields
    from laghil.power.pdu import MODEL_MODULES
    from laghil.report.groups import ORDER, USE_CASES, use_case
    assert fields.SWITCH_PLATFORMS == tuple(DRIVERS)
    assert all(DRIVERS[p].platform == p for p in DRIVERS)
    assert fields.LINUX_SWITCH_PLATFORMS == tuple(p for p, d in DRIVERS.items()
                                                  if d.netdev_ports)
    assert fields.FAULT_KINDS == tuple(INJECTORS) and fields.PDU_MODELS == tuple(MODEL_MODULES)
    assert all(MODEL_MODULES[m].MODEL == m for m in MODEL_MODULES if m != "virtual")
    for mark, title, help_, _ in USE_CASES:
        assert MARKERS[mark] == help_ and use_case([mark]) == title and title in ORDER
    catalogue = {"bonding", "team", "lacp", "roce_lag", "sriov_lag", "switch_lag", "ib_bond"}
    assert catalogue <= {d.name for d in (ROOT / "suites").iterdir() if d.is_dir()}
    assert catalogue <= {m for m, *_ in USE_CASES}
    assert use_case(["bonding", "roce_lag"]) == "RoCE LAG"


def test_no_provider_name_compared_outside_the_rdma_providers():
    """Providers are told apart in laghil/drivers/rdma/ only: anywhere else a
    comparison with a provider's name (==, !=, in, startswith) is a branch
    a new provider would have to find."""
    import re
    names = "rxe|mlx5|hns|bnxt_re|siw"
    cmp = re.compile(rf"""(==|!=|\bin|startswith\()\s*\(?["']({names})[_"']"""
                     rf"""|["']({names})["']\s*(==|!=|\bin\b|\bnot in\b)""")
    bad = []
    for folder in ("laghil", "fixtures", "suites"):
        for f in (ROOT / folder).rglob("*.py"):
            rel = f.relative_to(ROOT).as_posix()
            if rel.startswith("laghil/drivers/rdma/") or "/agent/" in rel:
                continue
            for i, line in enumerate(f.read_text().splitlines(), 1):
                if cmp.search(line.split("#")[0]):
                    bad.append(f"{rel}:{i}: {line.strip()}")
    assert not bad, "provider names compared outside laghil/drivers/rdma:\n" + "\n".join(bad)


def test_the_library_imports_no_pytest():
    """laghil/ is usable from scripts: no module of it imports pytest (the
    plugin is fixtures/, installed as pytest_laghil)."""
    code = ("import importlib, pkgutil, sys, laghil\n"
            "for m in pkgutil.walk_packages(laghil.__path__, 'laghil.'):\n"
            "    if '.agent.' not in m.name and not m.name.endswith('__main__'):\n"
            "        importlib.import_module(m.name)\n"
            "print('pytest' in sys.modules, '_pytest' in sys.modules)\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split() == ["False", "False"], "a laghil module imports pytest"
