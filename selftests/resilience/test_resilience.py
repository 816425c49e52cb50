"""A lab is never left broken (marker ``resilience``): controllers killed in the
middle of a change, two controllers on one lab, a lost SSH session, and no
secret in any output. On the virtual rack kept up between runs as a real rack
is (``laghil vlab up``); each controller is a pytest of its own, started,
watched and killed from here; the lab is compared with its clean baseline
after each.

These tests drive the lab themselves through other processes: they use no lab
fixture (a session of this pytest holding the lab would refuse the others).
``scripts/run-tests`` runs them after the CI subset, on the rack that subset
kept up.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from laghil.journal import Journal, journal_path
from laghil.lab import load_lab
from laghil.labstate import baseline_path, diff_state, lab_state, load_baseline
from laghil.lease import lease_file_sh
from laghil.runtime import LabRuntime

ROOT = Path(__file__).resolve().parents[2]
LAB = "virtual"
SECRET = "laghil-s3cret-7f9d2c41"       # the virtual PDU's SNMP community in every run here
pytestmark = [pytest.mark.resilience, pytest.mark.disruptive]


def laghil(*args, env=None, timeout=600):
    return subprocess.run([sys.executable, "-m", "laghil.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def rack(tmp_path_factory):
    """The virtual rack up (booted here when it is not, stopped at the end then),
    a clean baseline of it recorded for these tests (the lab's own baseline put
    back afterwards), and an environment for the controllers."""
    lab = load_lab(LAB)
    env = dict(os.environ, LAGHIL_VPDU_COMMUNITY=SECRET, LAGHIL_INNER="1",
               LAGHIL_REPORTS_DIR=str(tmp_path_factory.mktemp("reports")))
    probe = LabRuntime(lab, env=env)
    booted = not probe.rack.is_up()
    if booted:
        r = laghil("vlab", "up", "--lab", LAB, env=env)
        assert r.returncode == 0, f"vlab up: {r.stdout}{r.stderr}"
    base_file = baseline_path(LAB)
    saved = base_file.read_bytes() if base_file.exists() else None
    r = laghil("lab", "restore", "--lab", LAB, env=env)
    assert r.returncode == 0, f"the rack is not clean to start with: {r.stdout}{r.stderr}"
    r = laghil("lab", "baseline", "--lab", LAB, env=env)
    assert r.returncode == 0, f"lab baseline: {r.stdout}{r.stderr}"
    yield {"lab": lab, "env": env, "baseline": load_baseline(base_file)}
    if saved is None:
        base_file.unlink(missing_ok=True)
    else:
        base_file.write_bytes(saved)
    if booted:
        laghil("vlab", "down", "--lab", LAB, env=env)


RUNNING = []


def _interactive_signals():
    """In the controller before exec: SIGINT as at a terminal. A job started in
    the background of a non-interactive shell (a CI runner's, nohup) inherits
    SIGINT ignored, and Python then installs no KeyboardInterrupt for it: the
    Ctrl-C this suite sends would be lost (seen: a CI run's controller finished
    its trial and exited 0)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture(autouse=True)
def _end_controllers():
    """A controller a failed test left running is ended (SIGTERM: its undos run;
    SIGKILL after 120 s), by its pid: only the processes these tests started."""
    yield
    while RUNNING:
        c = RUNNING.pop()
        if c.proc.poll() is None:
            c.proc.terminate()
            try:
                c.proc.communicate(timeout=120)
            except subprocess.TimeoutExpired:
                c.proc.kill()
                c.proc.communicate()


class Controller:
    """One pytest controller process (``cli``: a laghil command); its output and
    run folder once it ended."""

    def __init__(self, args, env, cli=False):
        RUNNING.append(self)
        self.args = args
        cmd = ([sys.executable, "-m", "laghil.cli"] if cli else
               [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-s",
                "-p", "no:randomly", "--lab", LAB])
        self.proc = subprocess.Popen(
            [*cmd, *args],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True, preexec_fn=_interactive_signals)
        self.out = None

    @property
    def pid(self):
        return self.proc.pid

    def wait(self, timeout=600):
        try:
            self.out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()            # our own process, by its pid
            self.out, _ = self.proc.communicate()
            pytest.fail(f"controller {self.args} did not end within {timeout} s:\n{self.out}")
        return self.proc.returncode

    def signal(self, sig):
        os.kill(self.proc.pid, sig)

    def results(self):
        for line in (self.out or "").splitlines():
            if line.startswith("laghil: run outputs in "):
                f = Path(line.split(" in ", 1)[1].strip()) / "results.json"
                return json.loads(f.read_text()), f.parent
        pytest.fail(f"controller {self.args} wrote no run outputs:\n{self.out}")


def wait_for_journal(pred, timeout=300, proc=None):
    """Poll the lab's journal until ``pred(pending entries)``; the entries."""
    j = Journal(LAB)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            pending = j.pending()
        except Exception:       # noqa: BLE001 - a line being written: read again
            pending = []
        if pred(pending):
            return pending
        if proc is not None and proc.proc.poll() is not None:
            pytest.fail(f"controller ended before the awaited change:\n{proc.proc.stdout.read()}")
        time.sleep(0.05)
    pytest.fail(f"journal condition not met in {timeout} s: {[e.describe() for e in j.pending()]}")


def kinds(pending):
    return {s.kind for e in pending for s in e.steps}


def assert_no_secret(*texts_and_dirs):
    for x in texts_and_dirs:
        if isinstance(x, Path):
            for f in x.rglob("*"):
                if f.is_file():
                    assert SECRET.encode() not in f.read_bytes(), f"secret in {f}"
        else:
            assert SECRET not in (x or ""), "secret in a controller's terminal output"


def assert_lab_clean(rack, what):
    rt = LabRuntime(rack["lab"], env=rack["env"])
    try:
        rt.start(pdus=True)
        diff = diff_state(rack["baseline"], lab_state(rt))
    finally:
        rt.close(stop_rack=False)
    assert diff == [], f"after {what}, the lab differs from its baseline:\n" + "\n".join(diff)


def restore_run(rack):
    """The next run, as a nightly job would start it: the smoke subset."""
    c = Controller(["selftests/smoke", "-m", "smoke", "-k", "answers_ssh or carrier_at_both",
                    "--alluredir", str(Path(rack["env"]["LAGHIL_REPORTS_DIR"]) / "allure")],
                   rack["env"])
    rc = c.wait()
    assert rc == 0, f"the next run failed (rc {rc}):\n{c.out[-4000:]}"
    results, run_dir = c.results()
    assert_no_secret(c.out, run_dir, Path(rack["env"]["LAGHIL_REPORTS_DIR"]))
    return results, c.out


TRIAL = ("suites/bonding/test_bond_modes.py::test_bond_failover_and_failback_within_profile"
         "[active-backup[miimon=10,primary=0]]")


@pytest.mark.ci
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT],
                         ids=["SIGKILL", "SIGTERM", "SIGINT"])
def test_controller_killed_mid_failover_trial_leaves_a_lab_the_next_run_restores(rack, sig):
    """Killed while its bond is up and a cable is pulled: after SIGKILL the undos
    are left in the journal and the next smoke run replays them (the report
    lists each); after SIGTERM or SIGINT the controller undoes them itself.
    Either way the lab then equals its baseline."""
    c = Controller([TRIAL, "--reps", "3"], rack["env"])
    pending = wait_for_journal(lambda p: "cable" in kinds(p), proc=c)
    time.sleep(0.3)                  # the pull itself follows its journal entry
    c.signal(sig)
    rc = c.wait(timeout=120)
    assert "node" in kinds(pending), "the bond's undo was journaled before the pull"
    left = Journal(LAB).pending()
    if sig == signal.SIGKILL:
        assert rc == -signal.SIGKILL
        assert {"cable", "node"} <= kinds(left), [e.describe() for e in left]
        results, out = restore_run(rack)
        restored = results["lab_start"]["restored"]
        assert len(restored) == len(left) and all(r["ok"] for r in restored), restored
        assert any("cable h1-h2-a" in r["what"] or "cable" in r["what"] for r in restored)
        assert any(rack["lab"].device_names.bond in r["what"] for r in restored), restored
        assert "journal virtual: restored" in out
        print(f"SIGKILL mid-trial: {len(left)} undo(s) left in the journal, replayed by the next "
              f"run: " + "; ".join(r["what"][:70] for r in restored))
    else:
        assert rc != 0, (f"an interrupted controller exits non-zero (rc {rc}): "
                         f"{c.out[-2000:]}")
        assert left == [], f"{sig.name}: the controller ran its undos: {[e.describe() for e in left]}"
        assert_no_secret(c.out)
    assert Journal(LAB).pending() == []
    assert_lab_clean(rack, f"{sig.name} mid-trial and the next run")


@pytest.mark.ci
def test_calibrate_killed_with_a_port_down_leaves_a_lab_the_next_run_restores(rack):
    """``laghil measure calibrate --lab`` holds a lab session: the addresses and
    neighbours it sets and each outage's carrier are journaled before they are
    made. SIGKILLed in the middle of an 8 s outage (the receiver's NIC down):
    the next run replays all of them and the lab equals its baseline."""
    c = Controller(["measure", "calibrate", "--lab", LAB, "--reps", "1", "--outages", "8000"],
                   rack["env"], cli=True)
    pending = wait_for_journal(lambda p: "port" in kinds(p), proc=c)
    step = next(s for e in pending for s in e.steps if s.kind == "port")
    rt = LabRuntime(rack["lab"], env=rack["env"])
    try:
        deadline = time.monotonic() + 5
        while rt.node(step.target).carrier(step.args[0]) and time.monotonic() < deadline:
            time.sleep(0.1)
        down = not rt.node(step.target).carrier(step.args[0])
    finally:
        rt.close(stop_rack=False)
    c.signal(signal.SIGKILL)
    assert c.wait(timeout=60) == -signal.SIGKILL
    assert down, f"{step.target}:{step.args[0]} kept its carrier: calibrate never pulled it"
    left = Journal(LAB).pending()
    actions = {s.args[0] for e in left for s in e.steps if s.kind == "node"}
    assert "port" in kinds(left) and {"addr_del", "neigh_del"} <= actions, \
        [e.describe() for e in left]
    results, out = restore_run(rack)
    restored = results["lab_start"]["restored"]
    assert len(restored) == len(left) and all(r["ok"] for r in restored), restored
    assert Journal(LAB).pending() == []
    print(f"SIGKILL during calibrate ({step.target}:{step.args[0]} down): the next run "
          f"restored {len(restored)}: " + "; ".join(r["what"][:60] for r in restored))
    assert_lab_clean(rack, "SIGKILL during calibrate and the next run")


PDU_TEST = ("selftests/faults/test_injectors.py::"
            "test_pdu_outlet_off_cuts_the_node_and_on_brings_it_back")


@pytest.mark.ci
@pytest.mark.power
def test_controller_killed_with_an_outlet_off_leaves_a_lab_the_next_run_restores(rack):
    c = Controller([PDU_TEST], rack["env"])
    pending = wait_for_journal(lambda p: "pdu" in kinds(p), proc=c)
    rt = LabRuntime(rack["lab"], env=rack["env"])
    step = next(s for e in pending for s in e.steps if s.kind == "pdu")
    node = rack["lab"].pdus[step.target].outlets[step.args[0]].feeds
    deadline = time.monotonic() + 30
    while rt.rack.is_powered(node) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not rt.rack.is_powered(node), f"{node} still powered: the outlet never went off"
    c.signal(signal.SIGKILL)
    assert c.wait(timeout=60) == -signal.SIGKILL
    assert "pdu" in kinds(Journal(LAB).pending())
    results, out = restore_run(rack)
    restored = results["lab_start"]["restored"]
    assert any("outlet" in r["what"] and r["ok"] for r in restored), restored
    assert rt.rack.is_powered(node)
    print(f"SIGKILL with {node}'s outlet off: the next run restored: "
          + "; ".join(r["what"][:70] for r in restored))
    assert_lab_clean(rack, "SIGKILL with an outlet off and the next run")


@pytest.mark.ci
def test_a_second_controller_is_refused_until_the_first_one_s_lease_expires(rack, tmp_path):
    """Two controllers with state folders of their own (two CI runners) on one
    rack: the second is refused naming the first; once the first is SIGKILLed
    its lease stops being renewed, expires, and the second runs."""
    ttl = 6
    first = Controller(["selftests/resilience/inner/test_inner.py::test_hold_the_lab",
                        "--lease-ttl", str(ttl)],
                       dict(rack["env"], LAGHIL_HOLD_S="90", LAGHIL_CONTROLLER="runner-a"))
    # the second controller's own state folder; the rack's guest files are shared
    state2 = tmp_path / "state2"
    state2.mkdir()
    real_state = journal_path(LAB).parent.parent
    (state2 / "vlab").symlink_to(real_state / "vlab")
    env2 = dict(rack["env"], LAGHIL_STATE_DIR=str(state2), LAGHIL_CONTROLLER="runner-b")
    leased = Path("/nonexistent")
    deadline = time.monotonic() + 120
    rt = LabRuntime(rack["lab"], env=rack["env"])
    while time.monotonic() < deadline:
        r = rt.node("h1").run(f"{lease_file_sh(LAB)}cat \"$f\" 2>/dev/null; true")
        if f'"pid": {first.pid}' in r.stdout:
            leased = r.stdout
            break
        time.sleep(0.5)
    rt.close(stop_rack=False)
    assert leased != Path("/nonexistent"), "the first controller never took the lease"
    smoke = ["selftests/smoke", "-m", "smoke", "-k", "answers_ssh"]
    second = Controller(smoke, env2)
    rc = second.wait(timeout=300)
    assert rc != 0 and f"pid {first.pid}" in second.out and "leased on" in second.out, \
        f"the second controller was not refused naming the first (rc {rc}):\n{second.out[-3000:]}"
    first.signal(signal.SIGKILL)
    assert first.wait(timeout=60) == -signal.SIGKILL
    t_killed = time.monotonic()
    while True:
        second = Controller(smoke, env2)
        rc = second.wait(timeout=300)
        if rc == 0:
            break
        assert "leased on" in second.out, f"second controller failed otherwise:\n{second.out}"
        assert time.monotonic() - t_killed < ttl + 60, "the dead controller's lease never expired"
        time.sleep(1)
    waited = time.monotonic() - t_killed
    assert "replaced an expired lease" in second.out, second.out[-3000:]
    print(f"second controller ran {waited:.1f} s after the first was SIGKILLed (lease ttl {ttl} s)")
    assert_no_secret(first.out, second.out)


@pytest.mark.ci
def test_a_lost_ssh_session_fails_the_test_in_progress_and_the_run_goes_on(rack):
    """The sshd process serving the session killed while a command runs: that
    test fails naming the node and the command, well before its timeout; its
    undo (the bond) runs over a new connection; the next test passes; the lab
    is left as found. Run with ``-l`` beside a test that fails holding the
    PDU's community (a local, a command, its output, the exception): the secret
    reaches neither the terminal nor a report."""
    c = Controller(["selftests/resilience/inner/test_inner.py::test_lost_session_mid_command",
                    "selftests/resilience/inner/test_inner.py::test_a_failure_holding_a_secret",
                    "selftests/resilience/inner/test_inner.py::"
                    "test_the_next_test_runs_over_a_new_connection", "-l"], rack["env"])
    t0 = time.monotonic()
    rc = c.wait(timeout=300)
    results, run_dir = c.results()
    by = {t["name"]: t for t in results["tests"]}
    lost = by["test_lost_session_mid_command"]
    assert rc == 1 and lost["verdict"] == "failed", (rc, lost)
    assert "h1" in lost["reason"] and "sleep 20" in lost["reason"], lost["reason"]
    assert lost["duration_s"] < 20, f"the lost command was waited for: {lost['duration_s']} s"
    assert by["test_the_next_test_runs_over_a_new_connection"]["verdict"] == "passed"
    held = by["test_a_failure_holding_a_secret"]
    assert held["verdict"] == "failed", held
    assert results["lab_state_diff"] == [], results["lab_state_diff"]
    assert Journal(LAB).pending() == []
    print(f"lost session: failed after {lost['duration_s']:.1f} s: {lost['reason'][:300]}; "
          f"run {time.monotonic() - t0:.0f} s")
    assert_no_secret(c.out, run_dir)
    assert_lab_clean(rack, "a lost session")


@pytest.mark.ci
def test_a_dirty_lab_stops_the_run_unless_restore_is_given(rack):
    """A laghil bond left on h1 behind the journal's back (as an older laghil or
    a person would leave it): the run stops before any test with the diff;
    --restore deletes it (laghil's name) and runs."""
    lab, env = rack["lab"], rack["env"]
    name = lab.device_names.bond
    rt = LabRuntime(lab, env=env)
    try:
        rt.node("h1").run(f"ip link add {name} type bond mode active-backup")
    finally:
        rt.close(stop_rack=False)
    try:
        c = Controller(["selftests/smoke", "-m", "smoke", "-k", "answers_ssh"], env)
        rc = c.wait()
        assert rc == 3 and f"h1: links {name}: not in the baseline" in c.out, c.out[-3000:]
        assert "--restore" in c.out
        c = Controller(["selftests/smoke", "-m", "smoke", "-k", "answers_ssh", "--restore"], env)
        rc = c.wait()
        assert rc == 0, c.out[-3000:]
        results, _ = c.results()
        assert any(f"delete bond {name}" in r["what"] and r["ok"]
                   for r in results["lab_start"]["repaired"]), results["lab_start"]
    finally:
        rt = LabRuntime(lab, env=env)
        rt.node("h1").run(f"if [ -e /sys/class/net/{name} ]; then ip link del {name}; fi")
        rt.close(stop_rack=False)
    assert_lab_clean(rack, "--restore")


@pytest.mark.ci
@pytest.mark.power
def test_a_node_power_cycled_mid_suite_is_waited_for_and_the_run_goes_on(rack):
    """h2 power-cycled by one test (not waited for): the next test that needs h2
    waits for it within its boot_timeout over a new connection and passes; the
    lab is left as found."""
    inner = "selftests/resilience/inner/test_inner.py::"
    c = Controller([inner + "test_power_cycle_h2_and_go_on",
                    inner + "test_the_next_test_needing_h2_waits_for_its_boot"], rack["env"])
    rc = c.wait(timeout=600)
    results, run_dir = c.results()
    assert rc == 0, c.out[-4000:]
    assert [t["verdict"] for t in results["tests"]] == ["passed", "passed"]
    assert results["lab_state_diff"] == []
    print(next((ln for ln in c.out.splitlines() if "came back after" in ln), ""))
    assert_no_secret(c.out, run_dir)
    assert_lab_clean(rack, "a power-cycled node")


@pytest.mark.ci
@pytest.mark.power
def test_a_node_that_does_not_come_back_fails_the_tests_needing_it_and_the_run_goes_on(
        rack, tmp_path):
    """The lab file with a 5 s boot_timeout; h2 switched off and left off: the
    command needing it fails after that long with the reason, the next at once,
    h1 still answers; h2 back on answers again; the lab is left as found."""
    import yaml
    doc = yaml.safe_load((ROOT / "labs" / f"{LAB}.yaml").read_text())
    doc["defaults"]["management"]["boot_timeout"] = 5
    lab_file = tmp_path / f"{LAB}.yaml"
    lab_file.write_text(yaml.safe_dump(doc, sort_keys=False))
    inner = "selftests/resilience/inner/test_inner.py::"
    c = Controller([inner + "test_h2_that_does_not_come_back_fails_with_the_reason_and_h1_goes_on",
                    "--lab", str(lab_file)], rack["env"])
    rc = c.wait(timeout=600)
    assert rc == 0, c.out[-4000:]
    print(next((ln for ln in c.out.splitlines() if "h2 gone:" in ln), ""))
    assert_lab_clean(rack, "a node that did not come back in time")


@pytest.mark.ci
def test_a_certification_run_writes_a_bundle_verify_accepts_and_names_tampering(rack, tmp_path):
    """pytest --certify=bond-team-smoke on the rack: the bundle verifies against
    the rack's own key; one changed byte, a dropped test or another signer is
    named; the manifest says what each port reports and what it does not."""
    import shutil
    from laghil.lab import vlab_state_dir
    c = Controller(["--certify=bond-team-smoke", "suites"], rack["env"])
    rc = c.wait(timeout=900)
    assert rc == 0, f"certification run exited {rc}:\n{c.out[-3000:]}"
    line = next((ln for ln in c.out.splitlines() if "laghil: certification bundle " in ln), "")
    assert line.endswith("(signed)"), f"no signed bundle:\n{c.out[-2000:]}"
    archive = Path(line.split("bundle ", 1)[1].rsplit(" (", 1)[0])
    pub = (vlab_state_dir(LAB) / "id_ed25519.pub").read_text()
    signers = tmp_path / "allowed_signers"
    signers.write_text(f'rack namespaces="laghil-cert" {pub}')
    r = laghil("report", "verify", str(archive), "--allowed-signers", str(signers), env=rack["env"])
    assert r.returncode == 0 and "verified" in r.stdout, r.stdout + r.stderr
    d = archive.parent / "certification"
    m = json.loads((d / "manifest.json").read_text())
    ports = m["product"]["ports"]
    igb = [p for p in ports.values() if p["driver"] == "igb"]
    virtio = [p for p in ports.values() if p["driver"] == "virtio_net"]
    assert igb and all(p.get("firmware") and p.get("vendor") == "8086" for p in igb), igb
    assert virtio and all("firmware" in p["not reported"] for p in virtio), virtio
    assert len(m["tests"]) >= 3 and m["verdict"] == "passed", m
    # one byte of results.json
    bad = tmp_path / "byte"
    shutil.copytree(d, bad)
    text = (bad / "results.json").read_bytes()
    (bad / "results.json").write_bytes(text.replace(b'"passed"', b'"pass3d"', 1))
    r = laghil("report", "verify", str(bad), "--allowed-signers", str(signers), env=rack["env"])
    assert r.returncode == 1 and "PROBLEM: results.json: changed since it was summed" in r.stdout
    # a test dropped from results.json, summed and signed again with another key
    from laghil.report.bundle import write_sums
    bad = tmp_path / "dropped"
    shutil.copytree(d, bad)
    res = json.loads((bad / "results.json").read_text())
    gone = res["tests"].pop()["test_id"]
    (bad / "results.json").write_text(json.dumps(res))
    write_sums(bad)
    (bad / "SHA256SUMS.sig").unlink()
    key = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    subprocess.run(["ssh-keygen", "-Y", "sign", "-f", str(key), "-n", "laghil-cert",
                    str(bad / "SHA256SUMS")], check=True, capture_output=True)
    r = laghil("report", "verify", str(bad), "--allowed-signers", str(signers), env=rack["env"])
    assert r.returncode == 1, r.stdout
    assert f"PROBLEM: {gone}: selected by the plan but not in results.json" in r.stdout, r.stdout
    assert "PROBLEM: SHA256SUMS.sig: signed by a key that is not in" in r.stdout, r.stdout
