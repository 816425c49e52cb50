"""The virtual rack's wire drops (laghil.vlab.wire): /proc/net/udp parsed on
this machine's own captures (one taken with the rack up, one right after a
socket that never read had its small buffer overrun on loopback), each
cable end's drops found by its UDP port, and a failed test's report that says
what the wire dropped during it."""

from pathlib import Path
from types import SimpleNamespace

import pytest

from laghil.errors import LaghilError
from laghil.vlab.wire import describe_drops, dropped_since, parse_proc_net_udp, wire_drops

CAP = Path(__file__).parent / "data" / "captures"


def test_proc_net_udp_of_a_running_rack():
    socks = parse_proc_net_udp((CAP / "controller-proc-net-udp-rack.txt").read_text())
    cable = {p: d for (ip, p), d in socks.items() if ip == "127.0.0.1" and 41000 <= p < 41016}
    assert sorted(cable) == list(range(41000, 41016)) and set(cable.values()) == {0}
    assert socks[("0.0.0.0", 59288)] == 0


def test_a_socket_that_was_not_read_in_time_counts_its_drops():
    socks = parse_proc_net_udp((CAP / "controller-proc-net-udp-drops.txt").read_text())
    assert socks[("127.0.0.1", 49734)] == 1991
    ends = {49734: ("sw1", "eth3"), 41000: ("h1", "eth1"), 40999: ("h9", "gone")}
    got = wire_drops(ends, (CAP / "controller-proc-net-udp-drops.txt").read_text())
    assert got == {("sw1", "eth3"): 1991, ("h1", "eth1"): 0}, "a closed end is left out"
    with pytest.raises(LaghilError, match="no header"):
        parse_proc_net_udp("% not proc")


def test_drops_between_two_reads():
    before = {("sw1", "eth3"): 10, ("h1", "eth1"): 5}
    after = {("sw1", "eth3"): 222, ("h1", "eth1"): 5, ("h2", "eth1"): 3}
    assert dropped_since(before, after) == {("sw1", "eth3"): 212, ("h2", "eth1"): 3}
    assert dropped_since({("h1", "eth1"): 50}, {("h1", "eth1"): 4}) == {("h1", "eth1"): 4}, \
        "a reopened socket counts from 0"
    text = describe_drops({("sw1", "eth3"): 212, ("h2", "eth1"): 3})
    assert "dropped 215 frame(s)" in text and "h2:eth1 3, sw1:eth3 212" in text


def test_a_failed_tests_report_says_what_the_wire_dropped():
    from fixtures import keys
    from fixtures.lab import _say_wire_drops
    rack = SimpleNamespace(wire_drops=lambda: {("sw1", "eth3"): 300, ("h1", "eth1"): 0})
    item = SimpleNamespace(stash={keys.WIRE_DROPS: (rack, {("sw1", "eth3"): 88,
                                                            ("h1", "eth1"): 0})})
    report = SimpleNamespace(longrepr="AssertionError: steady state lost packets",
                             sections=[], user_properties=[])
    _say_wire_drops(item, report)
    assert "dropped 212 frame(s)" in report.longrepr and "sw1:eth3 212" in report.longrepr
    assert report.user_properties == [("rack_wire_drops", {"sw1:eth3": 212})]
    quiet = SimpleNamespace(wire_drops=lambda: {("sw1", "eth3"): 88})
    item.stash[keys.WIRE_DROPS] = (quiet, {("sw1", "eth3"): 88})
    report.longrepr = "AssertionError"
    _say_wire_drops(item, report)
    assert report.longrepr == "AssertionError", "nothing dropped: nothing said"


def test_every_cabled_nic_of_a_rack_has_its_wire_end():
    """Every data cable's two ends, and on a twin each management link to the
    jump guest, by the UDP port its QEMU receives on."""
    from laghil.lab import load_lab
    from laghil.vlab.rack import Rack
    twin = Rack(load_lab("twin:rack3"), log=lambda *a: None)
    ends = twin.wire_ends()
    lab = twin.lab
    assert len(ends) == 2 * len(lab.cables) + 2 * 3, ends       # srv1, srv2, sw3 behind jump3
    assert ("srv1", "ens1f0np0") in ends.values() and ("jump3", "lgm0") in ends.values()
    assert len(set(ends.values())) == len(ends), "one port per end"


def test_a_wire_read_that_fails_is_said_never_raised_from_the_report_hook():
    from fixtures import keys
    from fixtures.lab import _say_wire_drops

    def broken():
        raise LaghilError("/proc/net/udp: no header with local_address and drops: []")
    item = SimpleNamespace(stash={keys.WIRE_DROPS: (SimpleNamespace(wire_drops=broken), {})})
    report = SimpleNamespace(longrepr="AssertionError", sections=[], user_properties=[])
    _say_wire_drops(item, report)
    assert report.longrepr == "AssertionError"
    assert report.sections == [("virtual rack", "wire drops not read: /proc/net/udp: no header "
                                                "with local_address and drops: []")]

