"""The certification bundle of a --certify=PLAN run and `laghil report verify`:
a real pytest run (pytester) writes it, signed with a real ssh-keygen key; each
kind of tampering is named."""

import json
import shutil
import subprocess
import tarfile
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from laghil.cli import main
from laghil.report.verify import verify

from test_plugin import inner  # noqa: F401

TESTS = """
    import pytest

    def test_state(lab):
        assert lab.name == "tiny"

    @pytest.mark.parametrize("mode", ["active-backup[m=1]", "802.3ad[m=1]"])
    def test_failover(lab, mode):
        pass

    def test_not_in_plan(lab):
        pass
"""

PLAN = """\
    name: smoke
    version: 1
    claim: the tiny lab's tests pass
    needs: {hosts: [bonding]}
    reps: 3
    cases:
      - test: test_inner.py::test_state
      - test: test_inner.py::test_failover
"""


def _key(path, comment):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f",
                    str(path)], check=True)
    return path


def _signers(tmp_path, *keys):
    f = tmp_path / "allowed_signers"
    f.write_text("".join(f'lab-{i} namespaces="laghil-cert" {k.with_suffix(".pub").read_text()}'
                         for i, k in enumerate(keys)))
    return f


def _certify(inner, tmp_path, monkeypatch, tests=TESTS):  # noqa: F811
    """The tiny lab's tests run under the plan 'smoke', signed with a new key."""
    certs = tmp_path / "certs"
    certs.mkdir()
    (certs / "smoke.yaml").write_text(textwrap.dedent(PLAN))
    monkeypatch.setenv("LAGHIL_CERTS_DIR", str(certs))
    key = _key(tmp_path / "labkey", "lab")
    return inner(tests, "--certify=smoke", "--sign-key", str(key)), key


def _resign_with_another_key(d, tmp_path):
    """The bundle ``d`` summed again and signed by a new key, its public half as
    the bundle's signer: what someone who edited it could do."""
    from laghil.report.bundle import write_sums
    other = _key(tmp_path / "otherkey", "other")
    shutil.copy(other.with_suffix(".pub"), d / "signer.pub")
    write_sums(d)
    (d / "SHA256SUMS.sig").unlink()
    subprocess.run(["ssh-keygen", "-Y", "sign", "-f", str(other), "-n", "laghil-cert",
                    str(d / "SHA256SUMS")], check=True, capture_output=True)


def _drop_test(d, test_id):
    """Test ``test_id`` taken out of the bundle's results.json and junit.xml."""
    r = json.loads((d / "results.json").read_text())
    r["tests"] = [t for t in r["tests"] if t["test_id"] != test_id]
    (d / "results.json").write_text(json.dumps(r))
    tree = ET.parse(d / "junit.xml")
    name = test_id.split("::")[-1]
    for suite in tree.getroot().iter("testsuite"):
        for tc in list(suite):
            if tc.get("name") == name:
                suite.remove(tc)
    tree.write(d / "junit.xml")


@pytest.fixture
def bundle(inner, tmp_path, monkeypatch):  # noqa: F811
    r, key = _certify(inner, tmp_path, monkeypatch)
    r.assert_outcomes(passed=3, deselected=1)
    out = r.stdout.str()
    assert "laghil: certification bundle " in out and "(signed)" in out, out
    runs = list((tmp_path / "reports").iterdir())
    run = next(d for d in runs if d.is_dir() and (d / "certification").is_dir())
    return run, key


def test_a_certification_run_writes_a_bundle_that_verifies(bundle, tmp_path):
    run, key = bundle
    d = run / "certification"
    for f in ("manifest.json", "results.json", "junit.xml", "report.html", "lab.yaml",
              "plan.yaml", "profile.yaml", "README.md", "SHA256SUMS", "SHA256SUMS.sig",
              "signer.pub", "certificate.html"):
        assert (d / f).is_file(), f
    m = json.loads((d / "manifest.json").read_text())
    assert m["plan"]["name"] == "smoke" and m["verdict"] == "passed"
    # (the --sign-key path puts pytester's rootdir one folder up: node ids carry it)
    assert [t.split("/")[-1] for t in m["tests"]] == [
        "test_inner.py::test_state", "test_inner.py::test_failover[active-backup[m=1]]",
        "test_inner.py::test_failover[802.3ad[m=1]]"]
    assert "pytest --certify=smoke --lab" in (d / "README.md").read_text()
    signers = _signers(tmp_path, key)
    for target in (d, run / "certification.tar.gz"):
        problems, notes = verify(target, allowed_signers=signers)
        assert problems == [], problems
        assert any("signed by lab-0" in n for n in notes), notes
    # sha256sum itself agrees
    subprocess.run(["sha256sum", "--quiet", "-c", "SHA256SUMS"], cwd=d, check=True)
    assert main(["report", "verify", str(run / "certification.tar.gz"), "--allowed-signers",
                 str(signers)]) == 0


def test_one_changed_byte_is_named(bundle, tmp_path):
    run, key = bundle
    d = run / "certification"
    text = (d / "results.json").read_bytes()
    i = text.index(b'"passed"')
    (d / "results.json").write_bytes(text[:i + 1] + b"P" + text[i + 2:])
    problems, _ = verify(d, allowed_signers=_signers(tmp_path, key))
    assert "results.json: changed since it was summed (sha256 differs from SHA256SUMS)" in \
        problems, problems


def test_a_dropped_test_is_named_even_when_resummed(bundle, tmp_path):
    run, key = bundle
    d = run / "certification"
    r = json.loads((d / "results.json").read_text())
    gone = next(t["test_id"] for t in r["tests"]
                if t["test_id"].endswith("test_inner.py::test_failover[802.3ad[m=1]]"))
    _drop_test(d, gone)
    problems, _ = verify(d, allowed_signers=_signers(tmp_path, key))
    assert "results.json: changed since it was summed (sha256 differs from SHA256SUMS)" in problems
    assert f"{gone}: selected by the plan but not in results.json" in problems, problems
    assert f"{gone}: selected by the plan but not in junit.xml" in problems, problems
    # summed and signed again with another key: the signer is not the lab's
    _resign_with_another_key(d, tmp_path)
    assert verify(d)[0] == [f"{gone}: selected by the plan but not in results.json",
                            f"{gone}: selected by the plan but not in junit.xml",
                            "certificate.html: not what the bundle's manifest and results say "
                            "(edited, or rendered from other files)"]
    problems, _ = verify(d, allowed_signers=_signers(tmp_path, key))
    assert any("SHA256SUMS.sig: signed by a key that is not in" in p for p in problems), problems
    assert f"{gone}: selected by the plan but not in results.json" in problems


def test_an_unsigned_or_extended_bundle_is_refused(bundle, tmp_path):
    run, key = bundle
    d = run / "certification"
    (d / "extra.txt").write_text("added later")
    (d / "SHA256SUMS.sig").unlink()
    problems, _ = verify(d, allowed_signers=_signers(tmp_path, key))
    assert "extra.txt: in the bundle but not in SHA256SUMS" in problems, problems
    assert "SHA256SUMS.sig: the bundle is not signed" in problems, problems
    assert main(["report", "verify", str(d)]) == 1


def test_an_archive_with_a_path_outside_the_bundle_is_refused(tmp_path):
    evil = tmp_path / "evil.tar.gz"
    (tmp_path / "x").write_text("x")
    with tarfile.open(evil, "w:gz") as tar:
        tar.add(tmp_path / "x", arcname="../x")
    with pytest.raises(ValueError, match="not a plain file inside the bundle"):
        verify(evil)


def test_a_failed_plan_test_fails_verification(inner, tmp_path, monkeypatch):  # noqa: F811
    r, key = _certify(inner, tmp_path, monkeypatch,
                      TESTS.replace('assert lab.name == "tiny"', 'assert lab.name == "big"'))
    r.assert_outcomes(passed=2, failed=1, deselected=1)
    run = next(d for d in (tmp_path / "reports").iterdir() if (d / "certification").is_dir())
    problems, _ = verify(run / "certification", allowed_signers=_signers(tmp_path, key))
    assert any("test_inner.py::test_state: failed" in p for p in problems), problems
    assert "plan case test_inner.py::test_state: no passed test" in problems, problems
    assert "results.json: the run's verdict is 'failed'" in problems


def test_the_certificate_page_is_the_bundles_and_an_edited_one_is_named(bundle, tmp_path):
    import hashlib
    run, key = bundle
    d = run / "certification"
    page = (d / "certificate.html").read_text()
    digest = hashlib.sha256((d / "SHA256SUMS").read_bytes()).hexdigest()
    assert digest in page and "PASSED" in page
    assert "Certificate: smoke v1" in page and "the tiny lab&#x27;s tests pass" in page, page
    assert (run / "certificate.html").read_text() == page
    (d / "certificate.html").write_text(page.replace("PASSED", "PASSED (all 12 modes)"))
    problems, _ = verify(d, allowed_signers=_signers(tmp_path, key))
    assert problems == ["certificate.html: not what the bundle's manifest and results say "
                        "(edited, or rendered from other files)"], problems


def test_the_product_is_what_every_port_shares_with_devlink_firmware_first():
    from pathlib import Path

    from laghil.inventory import parse_devlink_info
    from laghil.report.bundle import product_of
    sample = Path(__file__).parent / "data" / "samples" / "kernel-doc--mlx5_devlink_dev_info.json"
    dl = parse_devlink_info(sample.read_text())["pci/0000:00:06.0"]
    assert dl["board_id"] == "MT_0000000009" and dl["running"] == {"fw.version": "16.26.0100"}
    mlx = {"driver": "mlx5_core", "firmware": "16.26.0100 (MT_0000000009)", "bus": "0000:00:06.0",
           "vendor": "15b3", "device": "1017", "devlink": dl}
    inv = {"srv1": {"ports": {"p0": mlx, "p1": dict(mlx, bus="0000:00:06.1")}},
           "srv2": {"ports": {"p0": dict(mlx)}}}
    p = product_of(inv)
    assert (p["vendor"], p["model"], p["board"], p["drivers"], p["firmware"]) == (
        "15b3", "1017", "MT_0000000009", "mlx5_core", "16.26.0100"), p
    inv["srv2"]["ports"]["p0"] = {"driver": "virtio_net", "firmware": ""}
    p = product_of(inv)
    assert p["drivers"] == ["mlx5_core", "virtio_net"] and p["firmware"] == "16.26.0100"
    assert p["ports"]["srv2:p0"] == {"driver": "virtio_net",      # what it lacks, said
                                     "not reported": ["firmware", "devlink", "PCI ids"]}


RECORDED = Path(__file__).parent / "data" / "bundles" / "bond-team-smoke-virtual.tar.gz"


@pytest.fixture
def recorded(tmp_path, monkeypatch):
    """The bundle of a real `pytest --certify=bond-team-smoke --lab virtual` run on
    the rack (2026-12-07, commit ccf7383, signed with the rack's own key),
    unpacked; its plan as the shipped plan (a later edit of certs/ must not
    make the recording stale), its signer as the only allowed one."""
    with tarfile.open(RECORDED) as tar:
        tar.extractall(tmp_path, filter="data")
    d = tmp_path / "certification"
    certs = tmp_path / "certs"
    certs.mkdir()
    shutil.copy(d / "plan.yaml", certs / "bond-team-smoke.yaml")
    monkeypatch.setenv("LAGHIL_CERTS_DIR", str(certs))
    kind, blob = (d / "signer.pub").read_text().split()[:2]
    signers = tmp_path / "allowed_signers"
    signers.write_text(f'rack namespaces="laghil-cert" {kind} {blob}\n')
    return d, signers


def test_a_recorded_rack_bundle_verifies_and_holds_the_racks_inventory(recorded):
    d, signers = recorded
    problems, notes = verify(d, allowed_signers=signers)
    assert problems == [], problems
    assert any("signed by rack" in n for n in notes), notes
    assert verify(RECORDED, allowed_signers=signers)[0] == []       # the archive itself
    m = json.loads((d / "manifest.json").read_text())
    assert m["plan"]["name"] == "bond-team-smoke" and m["verdict"] == "passed"
    assert len(m["tests"]) == 3 and m["lab"]["name"] == "virtual"
    ports = m["product"]["ports"]
    # igb's firmware on the rack's PFs as read; what virtio cannot report, said absent
    igb = [p for p in ports.values() if p["driver"] == "igb"]
    assert igb and all(p["firmware"] == "2.1.0" and p["vendor"] == "8086" for p in igb), igb
    virtio = [p for p in ports.values() if p["driver"] == "virtio_net"]
    assert virtio and all(set(p["not reported"]) == {"firmware", "devlink"} for p in virtio)


def test_a_recorded_bundle_tampered_three_ways_is_refused_naming_it(recorded, tmp_path):
    d, signers = recorded
    # one byte of results.json
    text = (d / "results.json").read_bytes()
    i = text.index(b'"passed"')
    (d / "results.json").write_bytes(text[:i + 1] + b"P" + text[i + 2:])
    problems, _ = verify(d, allowed_signers=signers)
    assert "results.json: changed since it was summed (sha256 differs from SHA256SUMS)" in \
        problems, problems
    (d / "results.json").write_bytes(text)
    assert verify(d, allowed_signers=signers)[0] == []
    # its certificate (an older layout than this laghil's) with its verdict edited
    page = (d / "certificate.html").read_text()
    assert page.count("PASSED") == 1
    (d / "certificate.html").write_text(page.replace(">PASSED<", ">GOLD<"))
    problems, _ = verify(d, allowed_signers=signers)
    assert any(p.startswith("certificate.html: rendered with layout 1") and "PASSED" in p
               for p in problems), problems
    (d / "certificate.html").write_text(page)
    # a test dropped from results.json and junit.xml
    gone = next(t["test_id"] for t in json.loads(text)["tests"] if "team" in t["test_id"])
    _drop_test(d, gone)
    problems, _ = verify(d, allowed_signers=signers)
    assert f"{gone}: selected by the plan but not in results.json" in problems, problems
    assert f"{gone}: selected by the plan but not in junit.xml" in problems, problems
    # summed and signed again by another key: not the rack's
    _resign_with_another_key(d, tmp_path)
    problems, _ = verify(d, allowed_signers=signers)
    assert any("SHA256SUMS.sig: signed by a key that is not in" in p for p in problems), problems
