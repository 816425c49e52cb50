"""End to end against a real sshd on 127.0.0.1: a physical-kind lab whose one
host is this machine. Covers `laghil lab check` and the session's network-state
check (a namespace left behind by a test fails the run, naming it)."""

import subprocess
import textwrap
import uuid

import pytest

from laghil.cli import main as laghil_main
from sshd import LoopbackSshd

PLUGINS = []  # laghil's plugin loads through its pytest11 entry point


@pytest.fixture(scope="module")
def sshd():
    with LoopbackSshd() as s:
        yield s


def lab_text(sshd, port=None, cable=False):
    return textwrap.dedent(f"""\
        name: loopback
        kind: physical
        hosts:
          local:
            management:
              address: 127.0.0.1
              port: {port or sshd.port}
              key_file: {sshd.client_key}
              known_hosts: {sshd.known_hosts}
              connect_timeout: 3
              command_timeout: 20
            ports: {{lo: {{}}}}
        """)


def test_lab_check_reports_tools_and_passes(sshd, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LAGHIL_STATE_DIR", str(tmp_path / "state"))
    lab = tmp_path / "loopback.yaml"
    lab.write_text(lab_text(sshd))
    rc = laghil_main(["lab", "check", "--lab", str(lab)])
    out = capsys.readouterr().out
    assert "local" in out and "iperf3" in out and "ib_write_bw" in out
    assert rc == 0, f"lab check exited {rc}:\n{out}"
    assert "lab loopback: OK" in out


def test_lab_check_unreachable_node_fails_naming_it(sshd, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LAGHIL_STATE_DIR", str(tmp_path / "state"))
    from sshd import free_port
    lab = tmp_path / "loopback.yaml"
    lab.write_text(lab_text(sshd, port=free_port()))
    rc = laghil_main(["lab", "check", "--lab", str(lab)])
    out = capsys.readouterr().out
    assert rc == 1, out
    assert "FAIL" in out and "local:" in out and "refused" in out
    assert "PROBLEMS FOUND" in out


def test_session_fails_when_a_test_leaves_a_netns_behind(sshd, pytester, tmp_path, monkeypatch):
    monkeypatch.setenv("LAGHIL_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("LAGHIL_REPORTS_DIR", str(tmp_path / "reports"))
    lab = tmp_path / "loopback.yaml"
    lab.write_text(lab_text(sshd))
    ns = f"lgtest-{uuid.uuid4().hex[:8]}"
    pytester.makepyfile(test_inner=textwrap.dedent(f"""
        def test_cleans_up(node, defer):
            n = node("local")
            defer(n.run, "ip netns del {ns}-ok")
            n.run("ip netns add {ns}-ok")

        def test_forgets_its_undo(node):
            node("local").run("ip netns add {ns}")
    """))
    try:
        r = pytester.runpytest_inprocess(*PLUGINS, "--lab", str(lab), "--profile", "default")
        out = r.stdout.str()
        r.assert_outcomes(passed=2)
        assert r.ret == pytest.ExitCode.TESTS_FAILED, out
        assert "lab NOT as it was before the run" in out
        assert f"local: netns {ns}: left behind by the run" in out
        assert f"{ns}-ok" not in out.split("lab NOT as it was")[1]
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        subprocess.run(["ip", "netns", "del", f"{ns}-ok"], capture_output=True)
