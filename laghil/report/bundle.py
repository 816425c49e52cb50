"""The certification bundle of a ``--certify=PLAN`` run, and its signature.

``reports/<run>/certification/`` and one archive of it
(``reports/<run>/certification.tar.gz``):

manifest.json   product (vendor, NIC model, driver and firmware as the run read
                them), lab, plan (name, version, sha256), profile (label,
                sha256), laghil (version, git commit), start, end, verdict, and
                the tests the plan selected
results.json, junit.xml, report.html, figures, commands/
                the run's own outputs, copied
lab.yaml        the lab file (it names secrets' environment variables, never a
                secret: the lab model has no field for one)
profile.yaml, plan.yaml
                what the run was judged with and what it claims
README.md       the exact command to reproduce the run, and how to verify this
SHA256SUMS      sha256 of every other file (``sha256sum -c`` reads it)
certificate.html
                the printable certificate page, with SHA256SUMS's digest (so not
                in it: verify renders it again from the bundle and compares)
SHA256SUMS.sig  a detached signature of SHA256SUMS with the lab's SSH key
                (``ssh-keygen -Y sign -n laghil-cert``): no new key
                infrastructure for a lab to run; signer.pub is its public key

``laghil report verify`` (laghil/report/verify.py) checks all of it.
"""

import hashlib
import json
import shlex
import shutil
import subprocess
import tarfile
from pathlib import Path

from .. import __version__
from ..inventory import switches_of
from .certificate import TEMPLATE, render_certificate
from .results import iso_time

DIR = "certification"
ARCHIVE = "certification.tar.gz"
NAMESPACE = "laghil-cert"
SUMS = "SHA256SUMS"
SIG = "SHA256SUMS.sig"
SIGNER = "signer.pub"
# the certificate page: rendered from manifest.json and results.json after
# SHA256SUMS (it shows that file's digest), so outside it; verify renders it again
CERTIFICATE = "certificate.html"
RUN_FILES = ("results.json", "junit.xml", "report.html", "figures.lp", "figures.prom")
SIGN_TIMEOUT_S = 30


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 16), b""):
            h.update(block)
    return h.hexdigest()


def git_commit(root=None):
    """The laghil checkout's commit ("" when not a checkout, "+dirty" when it has
    changes): what a reader needs to run the same suite."""
    root = Path(root or Path(__file__).resolve().parents[2])
    if not (root / ".git").exists():
        return ""
    try:
        rev = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain",
                                "--untracked-files=no"], capture_output=True, text=True,
                               timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    return rev + ("+dirty" if rev and dirty else "")


def product_of(inventory, hosts=None):
    """{vendor, model, board, drivers, firmware, ports} of the NICs the run read:
    per ``host:port`` its driver, firmware (devlink's running ``fw.version`` or
    ``fw`` where the driver reports one, else ethtool's), PCI ids and devlink
    versions; each product field is the value every port shares (a sorted list
    where they differ, None where none was read: a virtio port has no
    firmware, igb and virtio_net register no devlink device)."""
    ports = {}
    for host, inv in sorted((inventory or {}).items()):
        if hosts and host not in hosts:
            continue
        for port, d in sorted(((inv or {}).get("ports") or {}).items()):
            if not isinstance(d, dict) or not d.get("driver"):
                continue
            dl = d.get("devlink") or {}
            running = dl.get("running") or {}
            entry = {k: d.get(k) for k in ("driver", "version", "bus", "vendor", "device",
                                            "subsystem_vendor", "subsystem_device")
                     if d.get(k)}
            fw = running.get("fw.version") or running.get("fw") or d.get("firmware")
            if fw:
                entry["firmware"] = fw
            if dl:
                entry["devlink"] = {k: dl.get(k) for k in ("board_id", "serial", "fixed",
                                                           "running", "stored") if dl.get(k)}
            absent = [what for what, have in (("firmware", fw), ("devlink", dl),
                                              ("PCI ids", d.get("vendor"))) if not have]
            if absent:      # what the driver or the device does not report, said
                entry["not reported"] = absent
            ports[f"{host}:{port}"] = entry

    def one(get):
        vals = sorted({str(v) for v in map(get, ports.values()) if v})
        return vals[0] if len(vals) == 1 else (vals or None)
    return {"vendor": one(lambda p: p.get("vendor")), "model": one(lambda p: p.get("device")),
            "board": one(lambda p: (p.get("devlink") or {}).get("board_id")),
            "drivers": one(lambda p: p.get("driver")),
            "firmware": one(lambda p: p.get("firmware")), "ports": ports}


def reproduce_command(plan, lab_source, profile_source, allow_disruptive=True):
    parts = ["pytest", f"--certify={plan.name}", "--lab", lab_source,
             "--profile", profile_source]
    if allow_disruptive:
        parts.append("--allow-disruptive")
    return " ".join(shlex.quote(p) for p in parts)


def write_bundle(run_dir, run, plan, lab_file, profile, *, command, key_file=None,
                 commit=None):
    """Write ``run_dir/certification/`` and its archive; (archive path, problem
    or "") where the problem says why it is not signed."""
    run_dir = Path(run_dir)
    d = run_dir / DIR
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    for name in RUN_FILES:
        if (run_dir / name).is_file():
            shutil.copy2(run_dir / name, d / name)
    if (run_dir / "commands").is_dir():
        shutil.copytree(run_dir / "commands", d / "commands")
    shutil.copy2(lab_file, d / "lab.yaml")
    shutil.copy2(profile.source, d / "profile.yaml")
    shutil.copy2(plan.source, d / "plan.yaml")
    manifest = {
        "schema": 1,
        "product": product_of(run.inventory),
        # each switch's platform and NOS version as its driver read them
        "switches": switches_of(run.inventory),
        "lab": {"name": run.lab_name, "kind": run.lab_kind, "file": Path(lab_file).name,
                "sha256": sha256_file(lab_file)},
        "plan": {"name": plan.name, "version": plan.version, "sha256": plan.sha256,
                 "claim": plan.claim, "reps": plan.reps},
        "profile": {"label": profile.label, "sha256": sha256_file(profile.source)},
        "laghil": {"version": __version__, "commit": commit if commit is not None
                   else git_commit()},
        "started": iso_time(run.started), "finished": iso_time(run.finished),
        "verdict": run.verdict, "summary": run.summary(),
        "tests": list((getattr(run, "certification", None) or {}).get("tests", [])),
        "command": command,
        "certificate_template": TEMPLATE,
    }
    (d / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    (d / "README.md").write_text(_readme(manifest, plan))
    problem = ""
    pub = None
    if key_file and Path(str(key_file) + ".pub").is_file():
        pub = Path(str(key_file) + ".pub")
        shutil.copy2(pub, d / SIGNER)
    write_sums(d)
    results = json.loads((d / "results.json").read_text()) if (d / "results.json").is_file() \
        else run.to_dict()
    (d / CERTIFICATE).write_text(render_certificate(manifest, results, sha256_file(d / SUMS)))
    if (run_dir / "report.html").is_file():
        shutil.copy2(d / CERTIFICATE, run_dir / CERTIFICATE)
    if not key_file:
        problem = "no SSH key to sign with (the lab's hosts use passwords; pass --sign-key)"
    elif pub is None:
        problem = f"{key_file}.pub not found: the signer's public key goes into the bundle"
    else:
        problem = sign(d / SUMS, key_file)
    archive = run_dir / ARCHIVE
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(d, arcname=DIR)
    return archive, problem


def write_sums(d):
    d = Path(d)
    lines = [f"{sha256_file(p)}  {p.relative_to(d).as_posix()}"
             for p in sorted(d.rglob("*")) if p.is_file() and p.relative_to(d).as_posix()
             not in (SUMS, SIG, CERTIFICATE)]
    (d / SUMS).write_text("\n".join(lines) + "\n")


def sign(sums, key_file):
    """Sign ``sums`` with ssh-keygen (``sums``.sig); "" or why it could not."""
    sig = Path(str(sums) + ".sig")
    sig.unlink(missing_ok=True)
    try:
        r = subprocess.run(["ssh-keygen", "-Y", "sign", "-f", str(key_file), "-n", NAMESPACE,
                            str(sums)], capture_output=True, text=True, stdin=subprocess.DEVNULL,
                           timeout=SIGN_TIMEOUT_S)
    except (OSError, subprocess.SubprocessError) as e:
        return f"ssh-keygen -Y sign: {e}"
    if r.returncode != 0 or not sig.is_file():
        return f"ssh-keygen -Y sign with {key_file}: {(r.stderr or r.stdout).strip()[:200]}"
    return ""


def _readme(m, plan):
    return f"""# Certification bundle: {m['plan']['name']} v{m['plan']['version']} on lab {m['lab']['name']}

Verdict: **{m['verdict'].upper()}** ({m['summary']['passed']} passed, {m['summary']['failed']} failed,
{m['summary']['error']} errors, {m['summary']['skipped']} skipped of {m['summary']['total']}),
{m['started']} to {m['finished']}.

Claim: {plan.claim.strip()}

Product as read: drivers {m['product']['drivers']}, firmware {m['product']['firmware']}
(every port in manifest.json).

## Reproduce

With laghil {m['laghil']['version']} (commit {m['laghil']['commit'] or 'not recorded'}), on the
same lab:

    {m['command']}

## Verify

    laghil report verify certification.tar.gz --allowed-signers ALLOWED_SIGNERS

checks every file against SHA256SUMS, the signature (namespace `{NAMESPACE}`) against the
allowed signers, that every case of the plan ran, passed and was repeated as the plan
says, and that the manifest agrees with the results. Without laghil: `sha256sum -c SHA256SUMS`
and `ssh-keygen -Y verify -f ALLOWED_SIGNERS -I SIGNER -n {NAMESPACE} -s SHA256SUMS.sig
< SHA256SUMS`.
"""
