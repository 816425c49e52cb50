"""The controllers selftests/resilience plays: each test is run by it in a pytest
of its own (LAGHIL_INNER=1) and watched from outside."""

import os
import threading
import time

import pytest

from laghil.drivers.bond import Bond
from laghil.transport.ssh import SshSession

# each controller takes links and outlets down in the middle of its work
pytestmark = [pytest.mark.disruptive]


def test_hold_the_lab(lab_rt):
    """A controller that holds the lab (its lease renewed) until it is killed
    or LAGHIL_HOLD_S (bounded) passes."""
    deadline = time.monotonic() + min(float(os.environ.get("LAGHIL_HOLD_S", "30")), 120.0)
    while time.monotonic() < deadline:
        time.sleep(0.2)


def _killer(lab, env, node, victim_pid, after_s):
    """From a second SSH connection: SIGKILL the sshd process that serves the
    session whose shell is ``victim_pid`` (the shell's parent)."""
    def run():
        time.sleep(after_s)
        with SshSession(lab.ssh_target(node, env=env)) as s:
            s.run(f"p={int(victim_pid)}; while [ \"$p\" -gt 1 ]; do read -r c < /proc/$p/comm; "
                  "case $c in sshd*) kill -9 $p; break;; esac; "
                  "p=$(cut -d' ' -f4 /proc/$p/stat); done")
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_lost_session_mid_command(lab, lab_rt, node, defer):
    """A bond made (its undo journaled), then the session's sshd killed while a
    command runs: the command fails naming the node and the command."""
    h1 = node("h1")
    ports = list(lab.hosts["h1"].ports)[:2]
    Bond(h1, lab.device_names.bond, "active-backup", ports, miimon=100).create(defer=defer)
    h1.run("true")          # the shell is up; its pid is known
    _killer(lab, lab_rt.env, "h1", h1.session._shell_pid, 1.0)
    h1.run("sleep 20", timeout=40)


def test_a_failure_holding_a_secret(node):
    """Fails with the PDU's SNMP community in a local (``pytest -l`` prints
    locals), in the command, in its output on both streams and so in the
    exception and its ``.result``: none of it may reach the terminal or a report."""
    community = os.environ["LAGHIL_VPDU_COMMUNITY"]
    node("h1").run(f"echo {community}; echo {community} >&2; exit 3")


def test_the_next_test_runs_over_a_new_connection(node):
    h1 = node("h1")
    r = h1.run("echo ok")
    assert r.stdout.strip() == "ok"
    assert h1.session.connect_count >= 2, h1.session.connect_count


def _fed_outlet(lab, node_name):
    for pdu_name, pdu in lab.pdus.items():
        for n, outlet in pdu.outlets.items():
            if outlet.feeds == node_name and not outlet.protected:
                return pdu_name, n
    raise AssertionError(f"no unprotected outlet feeds {node_name}")


def test_power_cycle_h2_and_go_on(lab, lab_rt, defer):
    """h2 power-cycled through its PDU outlet, the test not waiting for it to boot."""
    from laghil.faults import PduOutletOff
    f = PduOutletOff(lab_rt, *_fed_outlet(lab, "h2"))
    lab_rt.node("h2").run("true")
    f.inject(defer=defer)
    f.verify(timeout=15)
    f.revert()


def test_the_next_test_needing_h2_waits_for_its_boot(node):
    h2 = node("h2")
    up = float(h2.run("cat /proc/uptime").stdout.split()[0])
    assert h2.session.came_back, "h2's session never waited: it was not power-cycled"
    assert up < h2.session.came_back[-1] + 60, f"h2 uptime {up} s: it did not reboot"
    print(f"h2 came back after {h2.session.came_back[-1]:.1f} s (uptime {up:.1f} s)")


def test_h2_that_does_not_come_back_fails_with_the_reason_and_h1_goes_on(lab, lab_rt, node,
                                                                          defer):
    """Run with a lab whose boot_timeout is short: h2 switched off and left off
    fails a command after boot_timeout with the reason, the next at once; h1
    answers all along; h2 powered on again answers again."""
    from laghil.errors import ConnectError
    from laghil.faults import PduOutletOff
    h1, h2 = node("h1"), node("h2")
    wait = lab.hosts["h2"].management.boot_timeout
    assert wait <= 10, f"run this with a short boot_timeout, not {wait}"
    f = PduOutletOff(lab_rt, *_fed_outlet(lab, "h2"))
    h2.run("true")
    f.inject(defer=defer)
    f.verify(timeout=15)
    t0 = time.monotonic()
    with pytest.raises(ConnectError, match=r"did not come back within .* \(boot_timeout\)"):
        h2.run("true")
    waited = time.monotonic() - t0
    t1 = time.monotonic()
    with pytest.raises(ConnectError, match="not waited for again"):
        h2.run("true")
    again = time.monotonic() - t1
    assert h1.run("echo up").stdout.strip() == "up"
    f.revert()
    f.verify_reverted(timeout=120)
    assert h2.run("echo back").stdout.strip() == "back"
    print(f"h2 gone: failed after {waited:.1f} s (boot_timeout {wait:g} s), then in {again:.2f} s")
