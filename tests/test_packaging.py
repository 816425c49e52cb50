"""`pip install laghil` then `pytest --lab X`: the wheel holds the library, the
plugin (pytest_laghil, its pytest11 entry point), the embedded virtual lab, the
example physical lab and the default profile, and depends on pytest."""

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_wheel_holds_what_pytest_lab_needs(tmp_path):
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                        "-q", "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    (wheel,) = tmp_path.glob("laghil-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
        requires = [ln for ln in z.read(meta).decode().splitlines()
                    if ln.startswith("Requires-Dist:") and "extra ==" not in ln]
        entry = z.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    for f in ("laghil/labs/virtual.yaml", "laghil/labs/rack3.yaml",
              "laghil/profiles/default.yaml", "laghil/certs/bond-team-smoke.yaml",
              "pytest_laghil/plugin.py", "pytest_laghil/certify.py",
              "laghil/drivers/rdma/mlx5.py", "laghil/measure/agent/nodeops.py",
              "laghil/vlab/stage2.sh"):
        assert f in names, f"{f} not in {wheel.name}"
    assert "laghil = pytest_laghil.plugin" in entry
    for dep in ("pytest", "allure-pytest", "paramiko", "scapy"):
        assert any(ln.split()[1].startswith(dep) for ln in requires), (dep, requires)
