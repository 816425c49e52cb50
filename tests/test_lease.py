"""The lease on the lab (laghil.lease): the node-side script run by a real
/bin/sh with flock on this machine (a lease directory of the test's own),
two controllers played by two Lease objects with their own run ids."""

import subprocess
import time
from types import SimpleNamespace

import pytest

import laghil.lease as lease_mod
from laghil.lease import (Lease, LeaseError, LeaseHeld, break_leases, parse_holder,
                          parse_lease_reply, read_leases)


class Shell:
    """A node session that is this machine's /bin/sh, the node's lease folder
    one of the test's own."""

    def __init__(self, root):
        self.root = root
        self.closed = False

    def run(self, cmd, check=True, timeout=None):
        for theirs in ("D=/var/lib/laghil;", 'D="${HOME:?}/.local/state/laghil";'):
            assert theirs in cmd, "the lease folder is not the one laghil uses"
            cmd = cmd.replace(theirs, f"D={self.root};")
        r = subprocess.run(["sh", "-c", cmd], capture_output=True, text=True, timeout=timeout)
        return SimpleNamespace(stdout=r.stdout, stderr=r.stderr, rc=r.returncode)

    def close(self):
        self.closed = True


ROOT = {}


@pytest.fixture(autouse=True)
def lease_dir(tmp_path):
    for n in ("h1", "h2"):
        (tmp_path / n).mkdir()
    ROOT["dir"] = tmp_path
    return tmp_path / "h1"


def nodes():
    return {n: Shell(ROOT["dir"] / n) for n in ("h1", "h2")}


def test_a_second_controller_is_refused_naming_the_first(lease_dir):
    first = Lease("virtual", nodes(), ttl=30, run_id="aaaa01").acquire()
    second = Lease("virtual", nodes(), ttl=30, run_id="bbbb02", say=lambda m: None)
    with pytest.raises(LeaseHeld) as e:
        second.acquire()
    msg = str(e.value)
    assert f"pid {first.pid} run aaaa01" in msg and "leased on h1" in msg and "s left" in msg
    assert "laghil lab unlock --lab virtual --force" in msg
    assert second.held == [], "nothing held after a refusal"
    first.release()
    assert not list(lease_dir.glob("*.json")), "the holder removes its lease files"
    second.acquire().release()


def test_renewal_moves_the_expiry_and_keeps_the_start(lease_dir):
    a = Lease("virtual", nodes(), ttl=5, run_id="aaaa01").acquire()
    f = lease_dir / "lease-virtual.json"
    h0 = parse_holder(f.read_text())
    assert h0.expires - h0.since == 5 and h0.run == "aaaa01"
    time.sleep(1.1)
    a.renew()
    h1 = parse_holder(f.read_text())
    assert h1.since == h0.since and h1.expires > h0.expires
    a.release()


def test_a_holder_that_stopped_renewing_expires_and_is_replaced_saying_whose(lease_dir):
    Lease("virtual", nodes(), ttl=3, run_id="dead01").acquire()     # never renewed, never released
    said = []
    b = Lease("virtual", nodes(), ttl=30, run_id="bbbb02", say=said.append)
    with pytest.raises(LeaseHeld):
        b.acquire()
    time.sleep(3.2)
    b.acquire()
    assert [n for n, _ in b.broken] == ["h1", "h2"] and "an expired lease" in said[0]
    assert "run dead01" in said[0]
    b.release()


def test_the_renewing_thread_keeps_a_short_lease_alive(lease_dir):
    a = Lease("virtual", nodes(), ttl=3, run_id="aaaa01").acquire().start_renewing()
    time.sleep(4.0)
    with pytest.raises(LeaseHeld):
        Lease("virtual", nodes(), ttl=3, run_id="bbbb02").acquire()
    a.release()
    assert a.renew_failures == []


def test_force_and_unlock_break_a_lease_and_say_whose(lease_dir):
    Lease("virtual", nodes(), ttl=60, run_id="aaaa01").acquire()
    seen = read_leases("virtual", nodes())
    assert seen["h1"][0].run == "aaaa01" and seen["h1"][1] > 0
    broken = break_leases("virtual", nodes())
    assert [(n, h.run) for n, h in broken] == [("h1", "aaaa01"), ("h2", "aaaa01")]
    assert read_leases("virtual", nodes())["h1"][0] is None
    Lease("virtual", nodes(), ttl=60, run_id="cccc03").acquire()
    c = Lease("virtual", nodes(), ttl=60, run_id="dddd04", say=lambda m: None).acquire(force=True)
    assert [h.run for _, h in c.broken] == ["cccc03", "cccc03"]


def test_release_leaves_a_lease_someone_else_took(lease_dir):
    a = Lease("virtual", nodes(), ttl=3, run_id="aaaa01").acquire()
    time.sleep(3.2)
    b = Lease("virtual", nodes(), ttl=60, run_id="bbbb02", say=lambda m: None).acquire()
    a.release()
    assert read_leases("virtual", nodes())["h1"][0].run == "bbbb02"
    b.release()


def test_bad_input():
    with pytest.raises(LeaseError, match="run id"):
        Lease("virtual", nodes(), run_id="x; reboot")
    with pytest.raises(LeaseError, match="at least 3 s"):
        Lease("virtual", nodes(), ttl=1)
    with pytest.raises(LeaseError, match="not a laghil lease"):
        parse_holder('{"controller": "c"}')
    with pytest.raises(LeaseError, match="no answer"):
        parse_lease_reply("sh: flock: not found\n")
    assert parse_lease_reply("NOLOCK\n")[0] == "nolock"


def test_a_lease_of_this_controller_whose_pid_is_gone_is_taken_over_at_once(lease_dir):
    dead = subprocess.Popen(["true"])
    dead.wait()
    a = Lease("virtual", nodes(), ttl=60, run_id="aaaa01")
    a.pid = dead.pid                         # a run of this controller, killed
    a.acquire()
    said = []
    b = Lease("virtual", nodes(), ttl=60, run_id="bbbb02", say=said.append).acquire()
    assert "no longer runs; taking it over" in said[0] and f"pid {dead.pid}" in said[0]
    other = Lease("virtual", nodes(), ttl=60, run_id="cccc03")
    other.controller = "runner-b"            # another machine: waits for the expiry
    with pytest.raises(LeaseHeld):
        other.acquire()
    b.release()


def test_the_controller_is_named_by_laghil_controller(monkeypatch):
    monkeypatch.setenv("LAGHIL_CONTROLLER", "ci-runner 7;x")
    assert Lease("virtual", nodes()).controller == "ci-runner_7_x"


def test_the_lease_folder_is_made_private_and_a_link_or_a_foreign_one_is_refused(tmp_path):
    """The lease lives in a folder only the account can write (0700, made on
    first use); a folder that is a symbolic link (someone pointing laghil's
    writes elsewhere) or another user's is refused and nothing is written."""
    import os
    fresh = tmp_path / "fresh"
    a = Lease("virtual", {"h1": Shell(fresh)}, ttl=30, run_id="aaaa01").acquire()
    assert oct(fresh.stat().st_mode & 0o777) == "0o700" and (fresh / "lease-virtual.json").exists()
    a.release()
    victim = tmp_path / "victim"
    victim.mkdir()
    link = tmp_path / "link"
    link.symlink_to(victim)
    with pytest.raises(LeaseError, match="is a symbolic link"):
        Lease("virtual", {"h1": Shell(link)}, ttl=30, run_id="aaaa02").acquire()
    assert not list(victim.iterdir()), "a write went through the link"
    if os.geteuid() == 0:               # only root can give a folder away
        other = tmp_path / "other"
        other.mkdir()
        os.chown(other, 65534, 65534)
        with pytest.raises(LeaseError, match="not this account's folder"):
            Lease("virtual", {"h1": Shell(other)}, ttl=30, run_id="aaaa03").acquire()
        assert not list(other.iterdir())
