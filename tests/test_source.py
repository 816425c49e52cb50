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
