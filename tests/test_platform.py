"""A run's inventory against the platform its profile was derived on
(laghil.profile.platform_differences) and the report header's line on it."""

import copy
import json
from pathlib import Path

from laghil.derive import platform_of
from laghil.profile import load_profile, platform_differences
from laghil.report import RunResults, render_html

# the inventory of a clean-clone CI run on the virtual rack (2026-12-07, CI12)
INV = json.loads((Path(__file__).parent / "data" / "inventory-virtual-ci12.json").read_text())


def _platform(inventory=INV, qemu=None):
    run = RunResults("r1", "virtual", "virtual", "default", 0.0, 1.0,
                     inventory=copy.deepcopy(inventory))
    p = platform_of([run], "virtual")
    if qemu:
        p["qemu"] = qemu
    return p


def test_the_inventory_a_profile_was_derived_from_matches_it():
    assert platform_differences(_platform(), INV) == []


def test_another_kernel_and_firmware_are_named_with_node_and_port():
    inv = copy.deepcopy(INV)
    inv["h1"]["kernel"] = "6.12.9-amd64"
    inv["h2"]["ports"]["eth5"]["firmware"] = "2.2.0"
    diff = platform_differences(_platform(), inv)
    assert diff == ["h1: kernel 6.12.9-amd64; the profile's: 6.1.0-57-amd64",
                    "h2:eth5: firmware 2.2.0; the profile's: 2.1.0"], diff


def test_a_twin_is_compared_by_driver_where_its_nodes_are_not_the_profiles():
    twin = {"srv1": {"kernel": "6.1.0-57-amd64",
                     "ports": {"enp1s0f0": dict(INV["h1"]["ports"]["eth5"]),
                               "enp1s0f1": {"driver": "mlx5_core", "version": "6.1.0-57-amd64",
                                            "firmware": "22.36.1010", "bus": "0000:03:00.1"}}}}
    diff = platform_differences(_platform(), twin)
    assert diff == ["srv1:enp1s0f1: driver mlx5_core, which the profile's platform does not "
                    "have (igb, virtio_net)"], diff
    twin["srv1"]["ports"]["enp1s0f1"] = dict(INV["h1"]["ports"]["eth5"], firmware="3.0")
    diff = platform_differences(_platform(), twin)
    assert diff == ["srv1:enp1s0f1: igb version 6.1.0-57-amd64 firmware 3.0; the profile's: "
                    "version 6.1.0-57-amd64 firmware 2.1.0"], diff


def test_qemu_versions_match_at_the_precision_the_profile_gives():
    inv = copy.deepcopy(INV)
    for n in inv:
        inv[n]["qemu"] = "10.0.2 (TCG)"
    assert platform_differences(_platform(qemu=["10 (TCG, bookworm-backports)"]), inv) == []
    diff = platform_differences(_platform(qemu=["9.2 (TCG)"]), inv)
    assert diff == ["h1: QEMU 10.0.2 (TCG); the profile's: 9.2 (TCG)",
                    "h2: QEMU 10.0.2 (TCG); the profile's: 9.2 (TCG)"], diff


def test_an_unread_inventory_is_said_not_silently_matched():
    diff = platform_differences(_platform(), {"h1": {"error": "CommandTimeout: 30 s"}})
    assert diff == ["h1: inventory not read (CommandTimeout: 30 s): not compared"]


def test_the_default_profile_records_its_platform_and_the_ci_rack_matches_it():
    prof = load_profile("default")
    assert prof.platform.get("lab") == "virtual"
    inv = copy.deepcopy(INV)
    for n in inv:
        inv[n]["qemu"] = "10.0.2 (TCG)"
    assert platform_differences(prof.platform, inv) == []


def _run(platform, diff, inventory=INV):
    return RunResults("20261207-1", "virtual", "virtual", "default", 0.0, 1.0,
                      inventory=inventory, platform=platform, platform_diff=diff)


def test_the_report_header_says_where_the_profile_was_derived_and_what_differs():
    p = _platform(qemu=["10 (TCG)"])
    html = render_html(_run(p, []))
    assert "<b>Profile platform</b>: lab virtual" in html
    assert "NIC drivers igb, virtio_net" in html and "matches it" in html
    diff = [f"h1:eth{i}: firmware 9; the profile's: (none)" for i in range(20)]
    html = render_html(_run(p, diff))
    assert "platform differs from the profile" in html
    assert html.count("firmware 9; the profile") == 12 and "and 8 more" in html
    assert "not recorded by the profile" in render_html(_run({}, []))
    assert "recorded no inventory" in render_html(_run(p, [], inventory={}))


def test_results_json_keeps_the_platform_and_its_differences():
    run = _run(_platform(), ["h1: kernel 7; the profile's: 6"])
    back = RunResults.from_json(run.to_json())
    assert back.platform == run.platform and back.platform_diff == run.platform_diff


def test_a_switchs_platform_and_nos_version_are_recorded_and_compared():
    from laghil.derive import platform_of
    from laghil.inventory import switches_of
    from laghil.profile import platform_differences
    from laghil.report import RunResults
    inv = {"srv1": {"kernel": "6.8.0-41", "ports": {}},
           "sw1": {"switch": {"platform": "onyx", "version": "3.10.4006",
                              "lag_limit": "unknown: not read by laghil's driver"}},
           "sw2": {"switch": {"platform": "eos", "error": "through its eos driver: refused"}}}
    assert switches_of(inv) == {"sw1": inv["sw1"]["switch"], "sw2": inv["sw2"]["switch"]}
    run = RunResults("20261207-000000-rack3", "rack3", "physical", "rack3", 0.0, 1.0,
                     inventory=inv, tests=[])
    plat = platform_of([run], "rack3")
    # what was read is recorded; a switch not read is not a platform fact
    assert plat["switches"] == {"sw1": {"platform": "onyx", "version": "3.10.4006"}}, plat
    assert platform_differences(plat, inv) == []
    newer = {**inv, "sw1": {"switch": {"platform": "onyx", "version": "3.10.5000"}}}
    assert platform_differences(plat, newer) == [
        "sw1: onyx 3.10.5000; the profile's: onyx 3.10.4006"]


def test_the_manifest_and_certificate_name_each_switch(tmp_path):
    from laghil.report.certificate import render_certificate
    m = {"plan": {"name": "p", "version": 1}, "lab": {"name": "rack3"}, "verdict": "passed",
         "product": {"ports": {}}, "summary": {},
         "switches": {"sw1": {"platform": "onyx", "version": "3.10.4006"},
                      "sw2": {"platform": "eos", "error": "refused"}}}
    page = render_certificate(m, {"tests": []}, "0" * 64)
    assert "Switch sw1</th><td colspan=\"3\">onyx: 3.10.4006" in page, page
    assert "eos: version not read: refused" in page


def test_the_report_inventory_lists_a_switch_with_its_nos_version():
    from laghil.report.history import inventory_facts
    from laghil.report.html import _inventory
    inv = {"h1": {"kernel": "6.1.0", "ports": {"eth1": {"driver": "virtio_net"}}},
           "sw1": {"switch": {"platform": "linux", "version": "Linux 6.1.0-57-amd64"}}}
    page = _inventory(inv)
    assert "switch, linux: Linux 6.1.0-57-amd64" in page, page
    # the run history's inventory digest is the hosts' (a switch read is not a host)
    assert inventory_facts(inv) == inventory_facts({"h1": inv["h1"]})
