"""Smoke: the lab is fit to run the suites.

Every node answers SSH; every host's inventory is collected (kernel, NIC driver
and firmware, RDMA devices, bonding/team available); every cable has carrier at
both ends; one cable pulled and restored, carrier checked at both ends.
"""

import statistics
import time

import pytest

from fixtures.plugin import lab_of
from fixtures.reporter import set_inventory
from laghil.inventory import inventory_command, parse_inventory

pytestmark = pytest.mark.smoke


def _nodes(lab):
    return [*lab.hosts, *lab.switches]


def pytest_generate_tests(metafunc):
    lab = lab_of(metafunc.config)
    if "node_name" in metafunc.fixturenames:
        metafunc.parametrize("node_name", _nodes(lab))
    if "cable_name" in metafunc.fixturenames:
        metafunc.parametrize("cable_name", [c.name for c in lab.cables])


def test_node_answers_ssh(node, node_name):
    n = node(node_name)
    rtts = []
    for _ in range(5):
        t0 = time.monotonic()
        r = n.run("hostname")
        rtts.append(time.monotonic() - t0)
    assert r.rc == 0 and r.stdout.strip(), f"{node_name}: hostname gave rc={r.rc} {r.stdout!r}"
    med = statistics.median(rtts) * 1000
    print(f"{node_name}: command round trip median {med:.1f} ms over {len(rtts)}")
    assert med < 2000, f"{node_name}: median command round trip {med:.0f} ms (limit 2000 ms)"


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
    for node, inv in inventory.items():
        record_testsuite_property(f"{node}.kernel", inv["kernel"])
        for port, p in inv["ports"].items():
            record_testsuite_property(f"{node}.{port}.driver", p["driver"])
            record_testsuite_property(f"{node}.{port}.firmware", p["firmware"] or "-")
        record_testsuite_property(f"{node}.rdma", ",".join(inv["rdma"]) or "-")
    set_inventory(pytestconfig, inventory)


def test_cable_has_carrier_at_both_ends(cable, cable_name):
    seen = cable(cable_name).carrier()
    dark = [end for end, up in seen.items() if not up]
    assert not dark, f"cable {cable_name}: no carrier at {dark} (seen {seen})"


@pytest.mark.disruptive
def test_cable_pull_drops_and_restores_carrier_at_both_ends(lab, cable, defer):
    c = cable(lab.cables[0].name)
    defer(c.up)
    t_pull = c.down(verify=False)
    t_down = c.wait_carrier(False, timeout=10)
    seen = c.carrier()
    assert not any(seen.values()), f"{c.name}: after pull, carrier still seen at {seen}"
    t_restore = c.up(verify=False)
    t_up = c.wait_carrier(True, timeout=10)
    seen = c.carrier()
    assert all(seen.values()), f"{c.name}: after restore, carrier missing at {seen}"
    print(f"{c.name} via {c.method}: carrier gone at both ends {t_down * 1000:.0f} ms after "
          f"pull, back {t_up * 1000:.0f} ms after restore (poll resolution ~ one round trip)")
    assert t_restore >= t_pull
