"""Kernel bond events from the kernel log, placed on the node's wall clock via a
/dev/kmsg marker; on output captured in the virtual rack (a cable pull under an
active-backup bond with miimon 10)."""

from pathlib import Path

import pytest

from laghil.errors import LaghilError
from laghil.kevents import parse_dmesg, parse_kernel_log

CAP = Path(__file__).parent / "data" / "captures" / "h1-kernel-log-bond-failover.txt"
MARKER = "laghil-mark-0badc0de"


def test_events_are_placed_relative_to_the_marker():
    evs = parse_kernel_log(CAP.read_text(), MARKER)
    assert len(evs) == 13
    down = [e for e in evs if e.kind == "link down"]
    assert [("(slave eth2)" in d.message, "(slave eth1)" in d.message) for d in down] == \
        [(True, False), (False, True)]
    # marker at stamp 89.493568, wall (1795620477.672774 + 1795620477.688265) / 2
    wall_marker = (1795620477.672774 + 1795620477.688265) / 2
    assert down[1].t == pytest.approx(wall_marker - (89.493568 - 85.686221), abs=1e-6)
    assert down[1].uncertainty_s == pytest.approx((1795620477.688265 - 1795620477.672774) / 2)
    new = [e for e in evs if e.kind == "new active"]
    assert 0 < new[-1].t - down[1].t < 0.001       # reselection 0.16 ms after detection
    up = [e for e in evs if e.kind == "link up"][-1]
    assert up.t - down[1].t == pytest.approx(88.118669 - 85.686221, abs=1e-6)


def test_missing_marker_or_bracket_is_an_error():
    with pytest.raises(LaghilError, match="marker"):
        parse_kernel_log("@@ 1.0 2.0\n[  1.000000] bond0: x\n", MARKER)
    with pytest.raises(LaghilError, match="bracket"):
        parse_kernel_log("[  1.000000] bond0: x\n", MARKER)


def test_dmesg_lines_without_a_stamp_are_skipped():
    assert parse_dmesg("garbage\n[   12.345678] bond0: y\n") == [(12.345678, "bond0: y")]


def test_the_load_balancing_arp_monitor_says_interface_is_now_down():
    """Captured on the rack (2026-12-07, a VF bond in balance-xor with arp_interval
    100 in a tenant namespace, its PF's cable pulled): bond_loadbalance_arp_mon logs
    "interface is now down" / "now up", not "link status definitely down" / "up"; both
    are a link down / up."""
    cap = CAP.parent / "h1-kernel-log-vf-bond-arp-xor.txt"
    evs = parse_kernel_log(cap.read_text(), "laghil-mark-1a4f70f6")
    down = [e for e in evs if e.kind == "link down" and e.message.startswith("lgbond0:")]
    assert [e.message for e in down] == ["lgbond0: (slave eth0): interface is now down"]
    up = [e for e in evs if e.message == "lgbond0: (slave eth0): interface is now up"]
    assert len(up) == 1 and up[0].kind == "link up" and up[0].t > down[0].t
