"""SSH transport against a real throwaway sshd on 127.0.0.1 (tests/sshd.py).

(About 400 lines: the SSH transport against a real sshd, one case per failure mode.)
"""

import hashlib
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import paramiko
import pytest

from laghil.errors import (AuthError, BadName, CommandFailed, CommandTimeout, ConnectError,
                           HostKeyError, UnknownNode)
from laghil.names import qif
from laghil.transport.cmdlog import CommandLog
from laghil.transport.connect import fingerprint
from laghil.transport.redact import Redactor
from laghil.transport.pool import Sessions
from laghil.transport.ssh import Result, SshSession, remote_command
from sshd import LoopbackSshd, free_port

@pytest.fixture(scope="module")
def sshd():
    with LoopbackSshd() as server:
        yield server


@pytest.fixture(params=["exec", "shell"])
def mode(request):
    return request.param


@pytest.fixture
def session(sshd, mode):
    with SshSession(sshd.target(command_timeout=20), mode=mode) as s:
        yield s


# Prints the pid of the per-connection sshd process serving the command.
SSHD_OF_CONNECTION = (
    "p=$$; while [ \"$p\" -gt 1 ]; do read -r c < /proc/$p/comm; "
    "case $c in sshd*) echo $p; break;; esac; p=$(cut -d' ' -f4 /proc/$p/stat); done")


def _wait(predicate, limit=5.0):
    deadline = time.monotonic() + limit
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


# ------------------------------------------------------------------ running


def test_streams_and_rc_are_separate(session):
    r = session.run("echo out; echo err >&2; echo out2; exit 5", check=False)
    assert isinstance(r, Result)
    assert (r.rc, r.stdout, r.stderr, r.ok) == (5, "out\nout2\n", "err\n", False)
    assert r.node == "loopback" and r.command.startswith("echo out") and r.duration_s > 0
    assert session.run("true").ok


def test_output_without_trailing_newline(session):
    r = session.run("printf abc; printf def >&2")
    assert (r.stdout, r.stderr) == ("abc", "def")
    assert session.run("printf 'two\\n\\n'").stdout == "two\n\n"
    assert session.run(":").stdout == ""


def test_large_output(session):
    r = session.run("head -c 1048576 /dev/zero | tr '\\0' x; "
                    "head -c 70000 /dev/zero | tr '\\0' y >&2")
    assert r.stdout == "x" * 1048576
    assert r.stderr == "y" * 70000


def test_exit_and_cd_do_not_break_the_shell(sshd):
    with SshSession(sshd.target(), mode="shell") as s:
        home = s.run("pwd").stdout
        shell = s._shell
        assert s.run("exit 3", check=False).rc == 3
        assert s.run("cd /tmp && exec true").ok
        assert s.run("pwd").stdout == home
        assert s.run("if then fi", check=False).rc == 2      # syntax error stays inside
        assert s.run("cat").stdout == ""                        # stdin is /dev/null
        assert s._shell is shell and s.connect_count == 1


def test_check_raises_command_failed(session):
    with pytest.raises(CommandFailed) as info:
        session.run("echo progress; echo boom >&2; exit 4")
    assert info.value.result.rc == 4 and info.value.node == "loopback"
    assert "boom" in str(info.value) and "exited 4" in str(info.value)


def test_commands_are_serialised_across_threads(sshd):
    with SshSession(sshd.target(), mode="shell") as s:
        errors = []

        def worker(i):
            try:
                for j in range(10):
                    r = s.run(f"echo {i}-{j}; echo e{i}-{j} >&2")
                    assert (r.stdout, r.stderr) == (f"{i}-{j}\n", f"e{i}-{j}\n")
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert not errors and s.connect_count == 1


# ----------------------------------------------------------------- timeouts


def test_timeout_kills_process_tree_and_session_survives(session):
    t0 = time.monotonic()
    with pytest.raises(CommandTimeout) as info:
        session.run("sleep 37.25 & sleep 37.25", timeout=1)
    elapsed = time.monotonic() - t0
    assert 0.9 < elapsed < 1 + session.timeout_grace
    msg = str(info.value)
    assert "loopback" in msg and "sleep 37.25" in msg and "1 s" in msg
    assert session.run("echo next").stdout == "next\n"

    def gone():
        ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
        return "sleep 37.25" not in ps
    _wait(gone, 5)
    assert session.log.records[-2].status == "timeout"


def test_controller_timeout_discards_shell(sshd):
    # TERM is ignored: in shell mode the controller SIGKILLs the shell's process
    # group at T and starts a new shell for the next command.
    with SshSession(sshd.target(), mode="shell", timeout_grace=0.5) as s:
        s.run("true")
        shell = s._shell
        t0 = time.monotonic()
        with pytest.raises(CommandTimeout, match="controller"):
            s.run("trap '' TERM; sleep 30.75", timeout=1)
        assert 1.0 <= time.monotonic() - t0 < 2.5
        assert s._shell is None

        def gone():
            ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
            return "sleep 30.75" not in ps
        _wait(gone, 5)
        assert s.run("echo fresh").stdout == "fresh\n"
        assert s._shell is not shell and s.connect_count == 1


def test_timed_out_shell_command_keeps_only_its_own_output(sshd):
    # what the command printed before its timeout, without the framing's markers
    with SshSession(sshd.target(), mode="shell", timeout_grace=0.5) as s:
        with pytest.raises(CommandTimeout) as info:
            s.run("echo partial; echo err >&2; sleep 30.5", timeout=1)
        assert (info.value.result.stdout, info.value.result.stderr) == ("partial\n", "err\n")


# ---------------------------------------------------------------- reconnect


def test_reconnect_after_transport_closed(session):
    session.run("true")
    session._transport.close()
    assert session.run("echo again").stdout == "again\n"
    assert session.connect_count == 2


def test_reconnect_after_server_kills_connection(session):
    os.kill(int(session.run(SSHD_OF_CONNECTION).stdout), signal.SIGKILL)
    _wait(lambda: not session.connected)
    assert session.run("echo back").stdout == "back\n"
    assert session.connect_count == 2
    # Killed right before the next command, before the client noticed: the
    # command never started, so it is retried on a new connection.
    os.kill(int(session.run(SSHD_OF_CONNECTION).stdout), signal.SIGKILL)
    assert session.run("echo again").stdout == "again\n"
    assert session.connect_count == 3


def test_connection_killed_mid_command_names_node_and_command_then_reconnects(session):
    """The sshd serving the session dies while a command runs: ConnectError
    naming the node and the command, at once (not after the command's
    timeout); the next command runs over a new connection."""
    sshd_pid = int(session.run(SSHD_OF_CONNECTION).stdout)
    threading.Timer(0.5, os.kill, (sshd_pid, signal.SIGKILL)).start()
    t0 = time.monotonic()
    with pytest.raises(ConnectError) as e:
        session.run("sleep 20; echo never", timeout=30)
    took = time.monotonic() - t0
    assert took < 10, f"the lost command was waited for {took:.1f} s"
    msg = str(e.value)
    assert msg.startswith(f"{session.name}: ") and "[running: sleep 20; echo never]" in msg, msg
    assert session.run("echo back").stdout == "back\n"


def test_reconnect_failure_raises_connect_error():
    with LoopbackSshd() as own:
        with SshSession(own.target(name="gone"), mode="shell") as s:
            s.run("true")
            own.kill()                      # server and its connections gone, port closed
            _wait(lambda: not s.connected)
            with pytest.raises(ConnectError, match="reconnect failed.*connection refused") as info:
                s.run("true")
            assert "gone" in str(info.value)
            assert s.log.records[-1].error and s.log.records[-1].rc is None


# ------------------------------------------------------------ connect errors


def test_wrong_key_is_auth_error(sshd):
    target = sshd.target(name="n-wrongkey", key_file=sshd.new_key("wrong"))
    with pytest.raises(AuthError) as info, SshSession(target) as s:
        s.run("true")
    msg = str(info.value)
    assert msg.startswith("n-wrongkey:") and f"127.0.0.1:{sshd.port}" in msg


def test_missing_key_file_is_named(sshd, tmp_path):
    missing = tmp_path / "no_such_key"
    target = sshd.target(key_file=str(missing))
    with pytest.raises(AuthError, match=str(missing)), SshSession(target) as s:
        s.run("true")


def test_password_never_in_messages(sshd):
    target = sshd.target(key_file=None, password="Sup3rSecretPw")
    with pytest.raises(AuthError) as info, SshSession(target, redactor=Redactor()) as s:
        s.run("true")
    assert "Sup3rSecretPw" not in str(info.value) and "password" in str(info.value)
    assert "Sup3rSecretPw" not in s.log.format()


def test_closed_port_is_connect_error_quickly(sshd):
    port = free_port()
    t0 = time.monotonic()
    with pytest.raises(ConnectError, match="connection refused") as info, \
            SshSession(sshd.target(name="n-closed", port=port)) as s:
        s.run("true")
    assert time.monotonic() - t0 < 2
    assert f"127.0.0.1:{port}" in str(info.value) and "n-closed" in str(info.value)


def test_silent_listener_times_out_within_connect_timeout(sshd):
    with socket.socket() as listener:       # accepts (kernel backlog), never speaks
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        port = listener.getsockname()[1]
        t0 = time.monotonic()
        with pytest.raises(ConnectError, match=r"timed out after 1 s.*banner") as info, \
                SshSession(sshd.target(name="n-silent", port=port, connect_timeout=1.0)) as s:
            s.run("true")
        assert time.monotonic() - t0 < 1.8
        assert f"127.0.0.1:{port}" in str(info.value)


def test_unknown_host_key(sshd, tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    with pytest.raises(HostKeyError) as info, SshSession(sshd.target(known_hosts=str(empty))) as s:
        s.run("true")
    msg = str(info.value)
    assert str(empty) in msg and "accept_unknown_host_keys" in msg and "SHA256:" in msg
    target = sshd.target(known_hosts=str(empty), accept_unknown_host_keys=True)
    with SshSession(target) as s:
        assert s.run("echo ok").stdout == "ok\n"
    assert empty.read_text() == ""                  # accepted, never written


def test_an_accepted_unknown_key_is_pinned_and_another_refused_at_a_reconnect(tmp_path):
    """accept_unknown_host_keys takes the first key it sees, then only that one
    for the session's life: a reconnect to a server with another key (a lost
    session, then someone else on the address) is refused."""
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    with LoopbackSshd() as own:
        with SshSession(own.target(known_hosts=str(empty), accept_unknown_host_keys=True)) as s:
            s.run("true")
            first = s.pinned_host_key
            assert first is not None
            s.close()
            s.run("true")                              # the same key again: fine
            own.replace_host_key()
            s.close()
            with pytest.raises(HostKeyError, match="changed during the run") as info:
                s.run("true")
            assert fingerprint(first) in str(info.value)


def test_missing_known_hosts_file(sshd, tmp_path):
    with pytest.raises(HostKeyError, match="does not exist"), \
            SshSession(sshd.target(known_hosts=str(tmp_path / "nope"))) as s:
        s.run("true")


def test_mismatched_host_key_refused_even_when_accepting_unknown(sshd, tmp_path):
    other = sshd.new_key("other_host")
    kind, blob = Path(other + ".pub").read_text().split()[:2]
    kh = tmp_path / "known_hosts"
    kh.write_text(f"[127.0.0.1]:{sshd.port} {kind} {blob}\n")
    target = sshd.target(known_hosts=str(kh), accept_unknown_host_keys=True)
    with pytest.raises(HostKeyError, match="does NOT match"), SshSession(target) as s:
        s.run("true")


@pytest.mark.parametrize("client", ["ssh session", "NOS CLI (netmiko)"])
def test_every_transport_refuses_an_unknown_or_changed_host_key(client, tmp_path, monkeypatch):
    """laghil reaches a node two ways: its own SSH session, and a NOS's CLI
    through netmiko (which accepts any key by default). Both refuse an unknown
    key and a changed one, so a password never goes to whoever answers; the CLI
    is given the checked key and nothing else, strictly."""
    from laghil.drivers.switch.nos import NetmikoChannel
    handed = []
    logged_in = SimpleNamespace(check_enable_mode=lambda: True)     # a privileged login
    monkeypatch.setattr("netmiko.ConnectHandler", lambda **kw: handed.append(
        (kw, Path(kw["alt_key_file"]).read_text())) or logged_in)

    def use(target):
        with SshSession(target) as s:
            if client == "ssh session":
                s.run("true")
            else:
                NetmikoChannel(s, "linux")._connect()
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    with LoopbackSshd() as own:
        with pytest.raises(HostKeyError, match="is unknown"):
            use(own.target(known_hosts=str(empty)))
        use(own.target())                              # the key in known_hosts: fine
        old_key = own.host_key_line().split(None, 1)[1]
        stale = tmp_path / "stale_known_hosts"
        stale.write_text(own.known_hosts.read_text())
        own.replace_host_key()
        with pytest.raises(HostKeyError, match="does NOT match"):
            use(own.target(known_hosts=str(stale)))
    if client != "ssh session":
        (kw, text), = handed                           # only the good connection reached it
        assert kw["ssh_strict"] is True and kw["system_host_keys"] is False
        assert text.split(None, 1)[1].strip() == old_key.strip(), "the checked key, only"
        assert len(text.splitlines()) == 1
        assert not os.path.exists(kw["alt_key_file"]), "the key file is removed after use"


def test_a_nos_cli_connects_strictly_with_the_checked_key(sshd):
    """netmiko, given only the key laghil checked, connects and runs a command
    (its own host key lookup: the file's line names the host as it must)."""
    from laghil.drivers.switch.nos import NetmikoChannel
    with SshSession(sshd.target()) as s:
        ch = NetmikoChannel(s, "linux")
        try:
            assert ch.send("echo cli-ok").strip() == "cli-ok"
        finally:
            ch.close()


# ------------------------------------------------------------------ uploads


def test_upload_and_read_back(session, tmp_path):
    data = os.urandom(200_000)
    remote = f"/tmp/laghil-upload-{os.getpid()}-{session.mode}"
    try:
        session.upload(data, remote, mode=0o600)
        r = session.run(f"sha256sum {remote} | cut -d' ' -f1; stat -c %a {remote}")
        assert r.stdout.split() == [hashlib.sha256(data).hexdigest(), "600"]
        local = tmp_path / "script.sh"
        local.write_text("echo from file\n")
        session.upload(str(local), remote, mode=0o755)
        assert session.run(remote).stdout == "from file\n"
        assert "upload " + remote in session.log.format()
    finally:
        session.run(f"rm -f {remote}")


def test_upload_fallback_over_cat(sshd):
    remote = f"/tmp/laghil-upload-cat-{os.getpid()}"
    with SshSession(sshd.target(), mode="shell") as s:
        s.run("true")
        assert s._upload_stdin(b"a\x00b", remote, 0o640, False, time.monotonic() + 10) == "cat"
        assert s.run(f"od -An -c {remote}; stat -c %a {remote}; rm {remote}").stdout.split() == \
            ["a", "\\0", "b", "640"]


def test_upload_failure_is_command_failed(session):
    with pytest.raises(CommandFailed, match="/nonexistent-dir/x"):
        session.upload(b"x", "/nonexistent-dir/x")


# ----------------------------------------------------------------- jump host


def test_jump_host(sshd, mode):
    target = sshd.target(name="inner", jump=sshd.target(name="jumphost"))
    with SshSession(target, mode=mode) as s:
        assert s.run("echo via jump").stdout == "via jump\n"
        assert isinstance(s._transport.sock, paramiko.Channel)
        assert s.jump.connected and s.jump.name == "jumphost"
    assert not s.jump.connected                     # owned jump session closed too


def test_jump_host_cannot_reach_inner(sshd):
    port = free_port()
    target = sshd.target(name="inner", port=port, jump=sshd.target(name="jumphost"))
    with pytest.raises(ConnectError, match=f"127.0.0.1:{port} via jump host jumphost") as info, \
            SshSession(target) as s:
        s.run("true")
    assert str(info.value).startswith("inner:")


def test_sessions_pool_shares_jump(sshd):
    jump = sshd.target(name="j")
    targets = {"a": sshd.target(name="a", jump=jump), "b": sshd.target(name="b", jump=jump),
               "j": jump}
    with Sessions(targets, mode="shell") as pool:
        a, b = pool.get("a"), pool.get("b")
        assert pool.get("a") is a and a.jump is b.jump is pool.get("j")
        assert a.run("echo a").stdout == "a\n" and b.run("echo b").stdout == "b\n"
        assert pool.get("j").connect_count == 1
        with pytest.raises(UnknownNode, match="'zz'"):
            pool.get("zz")
        assert {r.node for r in pool.log.records} == {"a", "b"}
    assert not a.connected and not pool.get("j").connected


# ---------------------------------------------------------- logs & secrets


def test_secret_never_reaches_the_log(sshd):
    red = Redactor()
    red.add("hunter2hunter2")
    log = CommandLog(red)
    with SshSession(sshd.target(password="Pa55word!"), log=log, mode="shell") as s:
        r = s.run("echo hunter2hunter2; echo hunter2hunter2 >&2; echo Pa55word!")
        assert "hunter2hunter2" in r.stdout             # the caller gets the real output
        with pytest.raises(CommandFailed) as info:
            s.run("echo hunter2hunter2 >&2; false")
    text = log.format()
    assert "hunter2hunter2" not in text and "Pa55word!" not in text and "***" in text
    assert "hunter2hunter2" not in str(info.value)
    res = info.value.result            # what a handler, a report or `pytest -l` shows
    assert "hunter2hunter2" not in res.stderr + res.stdout + res.command and res.rc == 1


def test_redactor_rules():
    red = Redactor()
    assert not red.add("") and not red.add("ab") and not red.add(None)
    assert red.add("abc") and red.add("abcdef")
    assert red.redact("xabcdefy abc ab") == "x***y *** ab"
    assert red.redact(None) is None


def test_per_test_log_format(sshd):
    log = CommandLog(Redactor())
    with SshSession(sshd.target(name="n1"), log=log, mode="shell") as s:
        log.current_test = "test_a"
        s.run("echo one; echo warn >&2")
        log.current_test = "test_b"
        s.run("exit 7", check=False)
    recs = log.records_for("test_a")
    assert [r.command for r in recs] == ["echo one; echo warn >&2"]
    text = log.format(recs)
    assert text.startswith("[n1] $ echo one; echo warn >&2  (rc=0, ")
    assert " s)\n    one\n    ! warn\n" in text
    assert "(rc=7, " in log.format(log.records_for("test_b"))


def test_log_truncates_huge_output():
    log = CommandLog(Redactor(), keep_chars=1000)
    rec = log.add("n", "cmd", 0, 0.1, stdout="a" * 5000 + "END")
    assert len(rec.stdout) < 1100 and rec.stdout.endswith("END")
    text = log.format(show_chars=200)
    assert "characters omitted" in text and len(text) < 600


# -------------------------------------------------------------------- misc


def test_remote_command_wrapping():
    plain = remote_command("echo 'hi'", 5)
    assert "timeout -k 2 5.000 sh -c 'echo '\"'\"'hi'\"'\"''" in plain and "sudo" not in plain
    assert "exec sudo -n timeout" in remote_command("id", 5, sudo=True)


def test_sudo_default_only_for_non_root(sshd):
    assert not SshSession(sshd.target(user="root", sudo=True))._sudo(None)
    assert SshSession(sshd.target(user="bob", sudo=True))._sudo(None)
    assert not SshSession(sshd.target(user="bob"))._sudo(None)


def test_bad_interface_name():
    assert qif("bond0") == "bond0"
    with pytest.raises(BadName):
        qif("eth0; rm -rf /")


def _reboot(server, session, down_s):
    """The node "reboots": its sshd and the session's connection go, and an
    sshd listens on the same port again ``down_s`` later (None: never)."""
    conn = int(session.run(SSHD_OF_CONNECTION).stdout)
    server.proc.kill()
    server.proc.wait()
    os.kill(conn, signal.SIGKILL)
    _wait(lambda: not session.connected)
    if down_s is not None:
        threading.Timer(down_s, server._launch).start()


def test_a_rebooted_node_is_waited_for_within_its_boot_timeout():
    with LoopbackSshd() as server:
        with SshSession(server.target(boot_timeout=20.0)) as s:
            s.run("true")
            _reboot(server, s, 2.0)
            t0 = time.monotonic()
            assert s.run("echo back").stdout == "back\n"
            took = time.monotonic() - t0
            assert 1.5 < took < 15, took
            assert s.came_back and s.came_back[0] >= 1.5 and s.gone_since is None


def test_a_node_that_does_not_come_back_fails_with_the_reason_then_at_once():
    with LoopbackSshd() as server:
        with SshSession(server.target(boot_timeout=2.0, connect_timeout=1.0)) as s:
            s.run("true")
            _reboot(server, s, None)
            t0 = time.monotonic()
            with pytest.raises(ConnectError, match=r"did not come back within 2 s \(boot_timeout\)"):
                s.run("true")
            assert time.monotonic() - t0 < 8
            t1 = time.monotonic()
            with pytest.raises(ConnectError, match="not waited for again"):
                s.run("true")
            assert time.monotonic() - t1 < 2, "a node known gone is not waited for twice"


def test_a_private_folder_is_journaled_and_a_killed_run_s_folder_removed_by_the_replay(
        sshd, tmp_path):
    """The folder's removal is journaled when it is made and marked done when it
    is removed; a controller that died before (here: the session dropped without
    removing it) leaves it to the journal, whose replayed command removes it, and
    only a folder of this account's (not a link, not a folder of that name
    someone else made)."""
    from laghil.journal import Journal
    from laghil.undo_actions import build
    j = Journal("virtual", path=tmp_path / "j.jsonl")
    with SshSession(sshd.target(), mode="shell") as s:
        s.set_journal(j)
        d = s.workdir()
        (e,) = j.pending()
        assert e.steps[0].args == ("workdir_remove", {"workdir": d})
        assert s.remove_workdir() == d and not os.path.exists(d) and j.pending() == []
        d2 = s.workdir()                      # then the controller "dies": no removal
    (e,) = j.pending()
    assert os.path.isdir(d2) and e.steps[0].args[1]["workdir"] == d2
    cmd = e.steps[0].command()
    link = f"/tmp/laghil.{os.urandom(5).hex()}"
    os.symlink(d2, link)
    try:
        subprocess.run(["sh", "-c", build("workdir_remove", {"workdir": link})], check=True)
        assert os.path.islink(link) and os.path.isdir(d2), "a link is not followed"
        subprocess.run(["sh", "-c", cmd], check=True)
        assert not os.path.exists(d2)
    finally:
        os.unlink(link)
