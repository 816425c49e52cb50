"""``laghil report verify BUNDLE``: is a certification bundle whole, signed,
complete and consistent? One line per problem; clean only when there is none.

* every file against SHA256SUMS, and no file it does not list;
* the signature of SHA256SUMS (``ssh-keygen -Y``, namespace laghil-cert):
  against ``--allowed-signers`` (the certifier's list of lab keys) when given,
  else only that it is a valid signature by the key the bundle carries (said);
* the plan: the shipped plan of that name, with the hash the manifest and the
  bundle's plan.yaml have;
* coverage: every test the plan selected is in results.json and junit.xml,
  passed; every case of the plan has a passed test; every judged failover
  figure has the plan's repetitions; nothing skipped, failed or errored;
* consistency: the manifest's verdict, product and firmware are what
  results.json and its inventory say; certificate.html is the page those
  files and SHA256SUMS's digest render to.
"""

import json
import shutil
import subprocess
import tarfile
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

from ..certplan import PlanError, load_plan
from .bundle import CERTIFICATE, DIR, NAMESPACE, SIG, SIGNER, SUMS, product_of, sha256_file
from .certificate import TEMPLATE, render_certificate

REQUIRED = ("manifest.json", "results.json", "junit.xml", "plan.yaml", SUMS)


class Bundle:
    """A bundle folder, or an archive unpacked into a private temporary folder."""

    def __init__(self, path):
        self.path = Path(path)
        self._tmp = None

    def __enter__(self):
        if self.path.is_dir():
            return self.path
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: no such bundle (a folder or its .tar.gz)")
        self._tmp = tempfile.mkdtemp(prefix="laghil-verify-")
        with tarfile.open(self.path) as tar:
            for m in tar.getmembers():
                name = Path(m.name)
                if name.is_absolute() or ".." in name.parts or not (m.isfile() or m.isdir()):
                    raise ValueError(f"{self.path}: member {m.name!r} is not a plain file "
                                     "inside the bundle: refused")
            tar.extractall(self._tmp, filter="data")
        d = Path(self._tmp) / DIR
        if not d.is_dir():
            raise ValueError(f"{self.path}: no {DIR}/ folder inside")
        return d

    def __exit__(self, *exc):
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
        return False


def check_sums(d):
    problems = []
    sums = d / SUMS
    listed = {}
    for n, line in enumerate(sums.read_text().splitlines(), 1):
        digest, sep, name = line.partition("  ")
        if not sep or len(digest) != 64:
            problems.append(f"{SUMS} line {n}: not '<sha256>  <file>'")
            continue
        listed[name] = digest
    for name, digest in sorted(listed.items()):
        p = d / name
        if not p.is_file():
            problems.append(f"{name}: listed in {SUMS} but missing from the bundle")
        elif sha256_file(p) != digest:
            problems.append(f"{name}: changed since it was summed (sha256 differs from {SUMS})")
    for p in sorted(d.rglob("*")):
        rel = p.relative_to(d).as_posix()
        if p.is_file() and rel not in listed and rel not in (SUMS, SIG, CERTIFICATE):
            problems.append(f"{rel}: in the bundle but not in {SUMS}")
    return problems


def _keygen(args, data):
    try:
        return subprocess.run(["ssh-keygen", "-Y", *args], input=data, capture_output=True,
                              timeout=30)
    except (OSError, subprocess.SubprocessError) as e:
        return subprocess.CompletedProcess(args, 255, b"", str(e).encode())


def check_signature(d, allowed_signers=None):
    """(problems, notes) of SHA256SUMS.sig."""
    sig = d / SIG
    if not sig.is_file():
        return [f"{SIG}: the bundle is not signed"], []
    data = (d / SUMS).read_bytes()
    if allowed_signers:
        r = _keygen(["find-principals", "-s", str(sig), "-f", str(allowed_signers)], b"")
        principals = r.stdout.decode().split()
        if r.returncode != 0 or not principals:
            return [f"{SIG}: signed by a key that is not in {allowed_signers}"], []
        r = _keygen(["verify", "-f", str(allowed_signers), "-I", principals[0], "-n", NAMESPACE,
                     "-s", str(sig)], data)
        if r.returncode != 0:
            return [f"{SIG}: does not verify {SUMS} for {principals[0]} "
                    f"({r.stderr.decode().strip()[:160]})"], []
        return [], [f"signed by {principals[0]} (in {allowed_signers})"]
    r = _keygen(["check-novalidate", "-n", NAMESPACE, "-s", str(sig)], data)
    if r.returncode != 0:
        return [f"{SIG}: not a valid signature of {SUMS} ({r.stderr.decode().strip()[:160]})"], []
    who = ""
    if (d / SIGNER).is_file():
        f = subprocess.run(["ssh-keygen", "-l", "-f", str(d / SIGNER)], capture_output=True,
                           text=True, timeout=10)
        who = f" {f.stdout.split()[1]}" if f.returncode == 0 and f.stdout.split()[1:] else ""
    return [], [f"a valid signature by key{who or ' (no signer.pub)'}, NOT checked against a "
                "list of lab keys: pass --allowed-signers to know who signed"]


def junit_ids(path):
    """{nodeid} of the junit.xml's test cases (pytest's classname and name)."""
    out = set()
    for tc in ET.parse(path).getroot().iter("testcase"):
        cls, name = tc.get("classname", ""), tc.get("name", "")
        out.add(cls.replace(".", "/") + ".py::" + name)
    return out


def _junit_id(nodeid):
    path, _, rest = nodeid.partition("::")
    return path.removesuffix(".py").replace(".", "/") + ".py::" + rest


def check_coverage(d, manifest, results, plan):
    problems = []
    tests = {t["test_id"]: t for t in results.get("tests", [])}
    junit = junit_ids(d / "junit.xml")
    wanted = manifest.get("tests") or []
    if not wanted:
        problems.append("manifest.json: no tests recorded for the plan")
    for nid in wanted:
        t = tests.get(nid)
        if t is None:
            problems.append(f"{nid}: selected by the plan but not in results.json")
        elif t.get("verdict") != "passed":
            problems.append(f"{nid}: {t.get('verdict')} ({(t.get('reason') or '')[:160]})")
        if _junit_id(nid) not in junit:
            problems.append(f"{nid}: selected by the plan but not in junit.xml")
    for nid, t in tests.items():
        if nid not in wanted:
            problems.append(f"{nid}: in results.json but not selected by the plan")
        for m in t.get("measurements", []):
            b = m.get("bound") or {}
            if b.get("statistic") == "median" and len(m.get("repetitions") or []) < plan.reps:
                problems.append(f"{nid}: {m['name']} has {len(m.get('repetitions') or [])} "
                                f"repetition(s), the plan {plan.reps}")
    for c in plan.cases:
        if not any(c.matches(n) and tests.get(n, {}).get("verdict") == "passed" for n in wanted):
            problems.append(f"plan case {c.label}: no passed test")
    return problems


def check_consistency(manifest, results):
    problems = []
    if manifest.get("verdict") != results.get("verdict"):
        problems.append(f"manifest.json: verdict {manifest.get('verdict')!r}, results.json "
                        f"{results.get('verdict')!r}")
    if results.get("verdict") != "passed":
        problems.append(f"results.json: the run's verdict is {results.get('verdict')!r}")
    read = product_of(results.get("inventory"))
    said = manifest.get("product") or {}
    for k in ("drivers", "firmware", "vendor", "model", "board"):
        if said.get(k) != read.get(k):
            problems.append(f"manifest.json: product {k} {said.get(k)!r}, but the run's "
                            f"inventory read {read.get(k)!r}")
    return problems


def verify(path, allowed_signers=None):
    """(problems, notes) of the bundle at ``path`` (a folder or its archive)."""
    with Bundle(path) as d:
        missing = [f"{n}: missing from the bundle" for n in REQUIRED if not (d / n).is_file()]
        if missing:
            return missing, []
        problems = check_sums(d)
        sig_problems, notes = check_signature(d, allowed_signers)
        problems += sig_problems
        try:
            manifest = json.loads((d / "manifest.json").read_text())
            results = json.loads((d / "results.json").read_text())
        except ValueError as e:
            return problems + [f"manifest.json or results.json: not JSON: {e}"], notes
        pm = manifest.get("plan") or {}
        try:
            plan = load_plan(str(pm.get("name")))
        except PlanError as e:
            return problems + [f"manifest.json: plan: {e}"], notes
        if pm.get("sha256") != plan.sha256:
            problems.append(f"manifest.json: plan {plan.label} sha256 {pm.get('sha256')}, the "
                            f"shipped plan's is {plan.sha256} ({plan.source})")
        if sha256_file(d / "plan.yaml") != plan.sha256:
            problems.append(f"plan.yaml: not the shipped plan {plan.label} ({plan.source})")
        problems += check_coverage(d, manifest, results, plan)
        problems += check_consistency(manifest, results)
        cert = d / CERTIFICATE
        if not cert.is_file():
            problems.append(f"{CERTIFICATE}: missing from the bundle")
        else:
            problems += check_certificate(cert.read_text(), manifest, results,
                                          sha256_file(d / SUMS))
        notes.append(f"plan {plan.label}: {len(manifest.get('tests') or [])} test(s); lab "
                     f"{(manifest.get('lab') or {}).get('name')}; verdict "
                     f"{manifest.get('verdict')}")
        return problems, notes


def check_certificate(page, manifest, results, digest):
    """certificate.html against the bundle: byte for byte with what this laghil
    renders from the manifest and results where the bundle's layout
    (``certificate_template``, 1 when absent) is this laghil's; a bundle of
    another layout (an older laghil) must still carry the bundle's digest, the
    plan, the verdict and the name of every judged figure the results hold."""
    made = manifest.get("certificate_template", 1)
    if made == TEMPLATE:
        if page != render_certificate(manifest, results, digest):
            return [f"{CERTIFICATE}: not what the bundle's manifest and results say "
                    "(edited, or rendered from other files)"]
        return []
    import html
    text = html.unescape(page)
    plan = manifest.get("plan") or {}
    must = [digest, f"Certificate: {plan.get('name')} v{plan.get('version')}",
            str(results.get("verdict", "?")).upper()]
    tests = {t["test_id"]: t for t in results.get("tests", [])}
    for nid in manifest.get("tests") or []:
        for x in (tests.get(nid) or {}).get("measurements", []):
            if x.get("threshold") is not None and isinstance(x.get("value"), (int, float)):
                must.append(x["name"])
    lost = [w for w in must if w not in text]
    if lost:
        return [f"{CERTIFICATE}: rendered with layout {made} (this laghil's is {TEMPLATE}) "
                f"and does not say what the bundle says: missing {lost[:3]}"]
    return []
