"""Smoke: the lab is fit to run the suites.

Every node answers SSH within the profile's command round trip; the virtual rack
(when this run booted it) came up within the profile's boot time; every host's
inventory is collected (kernel, NIC driver and firmware, RDMA devices,
bonding/team available); every cable has carrier at both ends; one cable pulled
and restored, carrier checked at both ends.
"""

import statistics
import time

import pytest

from pytest_laghil import lab_of
from pytest_laghil.reporter import inventory_properties, set_inventory
from laghil.inventory import inventory_command, parse_inventory
from laghil.measure.model import Measurement

pytestmark = pytest.mark.smoke


def _nodes(lab):
    return [*lab.hosts, *lab.switches]


def pytest_generate_tests(metafunc):
    lab = lab_of(metafunc.config)
    if "node_name" in metafunc.fixturenames:
        metafunc.parametrize("node_name", _nodes(lab))
    if "cable_name" in metafunc.fixturenames:
        metafunc.parametrize("cable_name", [c.name for c in lab.cables])


RTT_SAMPLES = 5


def test_node_answers_ssh(node, node_name, profile, measure):
    n = node(node_name)
    rtts = []
    if not n.has_shell:
        # a NOS switch: its CLI through its platform driver (`show version`), no shell
        from laghil.drivers.switch import switch_driver
        driver = switch_driver(n)
        for _ in range(RTT_SAMPLES):
            t0 = time.monotonic()
            d = driver.describe()
            rtts.append((time.monotonic() - t0) * 1000)
        assert d.get("version"), f"{node_name}: its {n.spec.platform} driver read no version: {d}"
        what = f"`{driver.version_command}` through the {n.spec.platform} driver's CLI session"
    else:
        for _ in range(RTT_SAMPLES):
            t0 = time.monotonic()
            r = n.run("hostname")
            rtts.append((time.monotonic() - t0) * 1000)
        assert r.rc == 0 and r.stdout.strip(), f"{node_name}: hostname gave rc={r.rc} {r.stdout!r}"
        what = "`hostname` over the node's persistent SSH session"
    limit = profile.threshold("transport/max_median_rtt_ms")
    m = measure.record(Measurement(
        "command round trip median", statistics.median(rtts), "ms",
        f"median of {len(rtts)} runs of {what}, controller monotonic clock", resolution=time.get_clock_info("monotonic").resolution * 1000,
        repetitions=rtts, threshold=limit, comparison="<=", profile=profile.label))
    print(f"{node_name}: command round trip median {m.value:.1f} ms over {len(rtts)}")
    assert m.verdict == "pass", (f"{node_name}: median command round trip {m.value:.0f} ms > "
                                 f"{limit:g} ms ({profile.label}); each: "
                                 f"{', '.join(f'{x:.0f}' for x in rtts)} ms")


def test_virtual_rack_boots_within_profile(lab_rt, profile, measure):
    if lab_rt.rack is None:
        pytest.skip(f"lab {lab_rt.lab.name!r} is not a virtual rack: no boot to time")
    if not lab_rt.started_rack:
        pytest.skip(f"virtual rack {lab_rt.lab.name!r} was already up and reused by this run: "
                    "its boot was not timed (stop it with `laghil vlab down` to measure)")
    limit = profile.threshold("vlab/max_boot_s")
    m = measure.record(Measurement(
        "virtual rack boot", lab_rt.boot_seconds, "s",
        f"wall time of this run's rack boot: {len(lab_rt.rack.plans)} guests started until "
        "every guest's sshd sends its banner (controller monotonic clock, polled every 0.25 s)",
        resolution=0.25, repetitions=[], threshold=limit, comparison="<=", profile=profile.label))
    assert m.verdict == "pass", (f"virtual rack {lab_rt.lab.name!r} booted in "
                                 f"{m.value:.1f} s > {limit:g} s ({profile.label})")


def test_inventory_collected(lab, hosts, pytestconfig, record_testsuite_property):
    inventory = {}
    for h in hosts:
        inv = parse_inventory(h.run(inventory_command(h.ports)).stdout)
        inventory[h.name] = inv
        assert inv["kernel"], f"{h.name}: no kernel version reported"
        missing = [p for p in h.ports if not inv["ports"].get(p, {}).get("driver")]
        assert not missing, f"{h.name}: ethtool -i gave no driver for {missing}"
        needs = {"bonding": "bonding", "team": "team"}
        for cap, key in needs.items():
            if cap in lab.capabilities(h.name):
                assert inv[key], f"{h.name}: lab declares {cap!r} but it is not available"
    for name, value in inventory_properties(inventory).items():
        record_testsuite_property(name, value)
    set_inventory(pytestconfig, inventory)


def test_cable_has_carrier_at_both_ends(cable, cable_name):
    seen = cable(cable_name).carrier()
    dark = [end for end, up in seen.items() if not up]
    assert not dark, f"cable {cable_name}: no carrier at {dark} (seen {seen})"


@pytest.mark.disruptive
def test_cable_pull_drops_and_restores_carrier_at_both_ends(lab, cable, defer):
    c = cable(lab.cables[0].name)
    f = c.pull(defer=defer)
    t_pull = f.t_inject
    t_down = c.wait_carrier(False, timeout=10)
    seen = c.carrier()
    assert not any(seen.values()), f"{c.name}: after pull, carrier still seen at {seen}"
    t_restore = f.revert()
    t_up = c.wait_carrier(True, timeout=10)
    seen = c.carrier()
    assert all(seen.values()), f"{c.name}: after restore, carrier missing at {seen}"
    print(f"{c.name} via {c.method}: carrier gone at both ends {t_down * 1000:.0f} ms after "
          f"pull, back {t_up * 1000:.0f} ms after restore (poll resolution ~ one round trip)")
    assert t_restore >= t_pull
