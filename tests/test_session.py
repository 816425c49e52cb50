"""The lab session (laghil.session.held_lab) and the library's undo stack
(laghil.undo): against a real sshd on 127.0.0.1, a physical-kind lab whose one
host is this machine."""

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from laghil.errors import LaghilError
from laghil.journal import Journal, node_undo
from laghil.lab import load_lab
from laghil.lock import LabLock
from laghil.session import SessionError, held_lab
from laghil.undo import Defer
from sshd import LoopbackSshd


@pytest.fixture(scope="module")
def sshd():
    with LoopbackSshd() as s:
        yield s


@pytest.fixture
def lab_file(sshd, tmp_path, monkeypatch):
    monkeypatch.setenv("LAGHIL_STATE_DIR", str(tmp_path / "state"))
    f = tmp_path / "loopback.yaml"
    f.write_text(textwrap.dedent(f"""\
        name: loopback-session
        kind: physical
        hosts:
          local:
            management:
              address: 127.0.0.1
              port: {sshd.port}
              key_file: {sshd.client_key}
              known_hosts: {sshd.known_hosts}
              connect_timeout: 3
              command_timeout: 20
            ports: {{lo: {{}}}}
        """))
    return f


class FakeNode:
    name = "h1"

    def __init__(self, fail=False):
        self.cmds, self.fail = [], fail

    def run(self, cmd, check=False):
        self.cmds.append(cmd)
        if self.fail:
            raise LaghilError(f"h1: {cmd}: failed")


def test_a_handle_runs_its_undo_now_or_cancels_it_and_the_journal_follows(tmp_path):
    n = FakeNode()
    j = Journal("virtual", path=tmp_path / "j.jsonl")
    stack = Defer(journal=j)
    a = stack(node_undo(n, "link_delete", name="lgbond0"))
    b = stack(node_undo(n, "link_delete", name="lgbond1"))
    c = stack(node_undo(n, "link_delete", name="lgbond2"))
    assert len(j.pending()) == 3 and len(stack) == 3
    b.run()
    assert n.cmds == [node_undo(n, "link_delete", name="lgbond1").records[0].command()]
    assert b.run() is None and len(n.cmds) == 1, "a second run does nothing"
    c.cancel()
    assert len(n.cmds) == 1 and not c.pending
    assert [e.describe() for e in j.pending()] == ["h1: link_delete {'name': 'lgbond0'}"]
    assert stack.run_all() == [] and j.pending() == [] and a.pending is False
    assert len(n.cmds) == 2 and "lgbond1" in n.cmds[0] and "lgbond0" in n.cmds[1]


def test_a_handle_that_fails_stays_in_the_journal():
    n = FakeNode(fail=True)
    stack = Defer()
    h = stack(node_undo(n, "link_delete", check=True, name="lgbond0"))
    with pytest.raises(LaghilError):
        h.run()
    assert len(stack) == 0 and len(n.cmds) == 1


def _killed_session(lab_file, folder):
    """A controller that registers, journaled, the removal of ``folder`` and is
    SIGKILLed holding the lab (its own process, killed by itself)."""
    code = textwrap.dedent(f"""
        import os, signal
        from laghil.journal import node_undo
        from laghil.lab import load_lab
        from laghil.session import held_lab
        with held_lab(load_lab({str(lab_file)!r})) as s:
            s.defer(node_undo(s.rt.node("local"), "workdir_remove", workdir={str(folder)!r}))
            os.kill(os.getpid(), signal.SIGKILL)
        """)
    return subprocess.run([sys.executable, "-c", code], env=os.environ, capture_output=True,
                          text=True, timeout=120)


def test_the_next_session_replays_what_a_killed_one_left_and_gives_everything_back(
        lab_file, tmp_path):
    lab = load_lab(str(lab_file))
    folder = tmp_path / "laghil.Zq3xY7kP0a"          # a private folder's shape
    folder.mkdir()
    p = _killed_session(lab_file, folder)
    assert p.returncode == -signal.SIGKILL, p.stderr
    assert folder.is_dir()
    left = Journal(lab.name).pending()
    assert any(str(folder) in e.describe() for e in left), [e.describe() for e in left]
    said = []
    with held_lab(lab, say=said.append) as s:
        restored = s.start["restored"]
        assert len(restored) == len(left) and all(r["ok"] for r in restored), restored
        assert not folder.exists(), "the killed session's journaled undo was not replayed"
        assert s.lease is not None and s.rt.lease_held is s.lease
        workdir = s.rt.node("local").session.workdir()
        assert os.path.isdir(workdir)
    assert not os.path.exists(workdir), "the session's private folder outlived it"
    assert Journal(lab.name).pending() == []
    assert any("journal loopback-session: restored" in m for m in said), said
    LabLock(lab.name).acquire().release()           # the lock was given back


def test_a_session_runs_its_own_undos_on_the_way_out_even_after_an_error(lab_file, tmp_path):
    lab = load_lab(str(lab_file))
    folder = tmp_path / "laghil.Ab3xY7kP0b"
    folder.mkdir()
    with pytest.raises(RuntimeError, match="boom"):
        with held_lab(lab, say=lambda m: None) as s:
            s.defer(node_undo(s.rt.node("local"), "workdir_remove", workdir=str(folder)))
            raise RuntimeError("boom")
    assert not folder.exists() and Journal(lab.name).pending() == []


def test_a_session_that_cannot_start_gives_back_what_it_took(lab_file, tmp_path):
    """An unreachable host: the lease cannot be taken; SessionError names the
    lab and the step, the lock is free again, nothing is journaled."""
    from sshd import free_port
    text = lab_file.read_text().replace("port: ", f"port: {free_port()}  # ", 1)
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("loopback-session", "loopback-down"))
    lab = load_lab(str(bad))
    with pytest.raises(SessionError, match="lab loopback-down: cannot take the lease"):
        with held_lab(lab, say=lambda m: None):
            pytest.fail("the session started")
    LabLock(lab.name).acquire().release()
    assert Journal(lab.name).pending() == []


def test_the_cli_s_baseline_and_restore_hold_the_lab_through_the_session(lab_file, capsys):
    """`laghil lab baseline` refuses while a killed run's undos are pending,
    `laghil lab restore --dry-run` says what it would replay and changes
    nothing, `laghil lab restore` replays it, then the baseline is recorded."""
    from laghil.cli import main as laghil_main
    lab = load_lab(str(lab_file))
    folder = lab_file.parent / "laghil.Cd3xY7kP0c"
    folder.mkdir()
    assert _killed_session(lab_file, folder).returncode == -signal.SIGKILL
    assert laghil_main(["lab", "baseline", "--lab", str(lab_file)]) == 1
    assert "pending in its journal" in capsys.readouterr().err
    n = len(Journal(lab.name).pending())
    assert laghil_main(["lab", "restore", "--lab", str(lab_file), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"would replay {n} journaled undo(s)" in out and folder.is_dir(), out
    assert len(Journal(lab.name).pending()) == n
    assert laghil_main(["lab", "restore", "--lab", str(lab_file)]) == 0
    assert f"replayed {n} journaled undo(s)" in capsys.readouterr().out and not folder.exists()
    assert laghil_main(["lab", "baseline", "--lab", str(lab_file)]) == 0
    assert "baseline recorded in" in capsys.readouterr().out
    LabLock(lab.name).acquire().release()


def test_the_session_masks_the_lab_s_secrets_in_the_log_it_is_given(lab_file, monkeypatch):
    """The runtime registers the lab's secrets in the redactor of the command log
    the session is given (the one the plugin masks reports with), even while that
    log is still empty (an empty CommandLog is falsy)."""
    from laghil.transport.cmdlog import CommandLog
    from laghil.transport.redact import Redactor
    text = lab_file.read_text().replace("      connect_timeout: 3\n",
                                        "      connect_timeout: 3\n      password_env: LG_TEST_PW\n")
    lab_file.write_text(text)
    monkeypatch.setenv("LG_TEST_PW", "not-a-real-password-1234")
    log = CommandLog(redactor=Redactor())
    assert not log, "an empty log is falsy: the case this test is about"
    with held_lab(load_lab(str(lab_file)), log=log, say=lambda m: None) as s:
        assert s.rt.redactor is log.redactor
    assert log.redactor.redact("x not-a-real-password-1234 y") == "x *** y"
