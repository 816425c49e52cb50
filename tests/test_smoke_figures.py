"""What the smoke suite records and judges, checked without a rack: its test
functions are called with fake nodes, a fake runtime and the default profile."""

import time
from pathlib import Path

import pytest

import selftests.smoke.test_smoke as smoke
from pytest_laghil.keys import INVENTORY as INVENTORY_KEY
from pytest_laghil.reporter import inventory_properties
from laghil.inventory import parse_inventory
from laghil.lab import load_lab
from laghil.profile import load_profile

REPO = Path(__file__).resolve().parents[1]
CAP = Path(__file__).parent / "data" / "captures"


class Result:
    def __init__(self, stdout, rc=0):
        self.stdout, self.rc = stdout, rc


class FakeNode:
    has_shell = True

    def __init__(self, name, ports=(), delay_s=0.0, output=None):
        self.name, self.ports, self.delay_s, self.output = name, list(ports), delay_s, output

    def run(self, cmd, **kw):
        time.sleep(self.delay_s)
        return Result(self.output if self.output is not None else self.name + "\n")


class FakeMeasure:
    def __init__(self):
        self.measurements = []

    def record(self, m):
        self.measurements.append(m)
        return m


class FakeRack:
    plans = {"h1": None, "h2": None, "sw1": None}


class FakeRuntime:
    def __init__(self, lab, boot_seconds, started):
        self.lab, self.rack = lab, FakeRack() if lab.kind == "virtual" else None
        self.boot_seconds, self.started_rack = boot_seconds, started


@pytest.fixture(scope="module")
def profile():
    return load_profile(REPO / "profiles" / "default.yaml")


@pytest.fixture(scope="module")
def vlab():
    return load_lab("virtual", labs_dir=REPO / "labs")


def test_default_profile_sets_rtt_and_boot_goals(profile):
    assert profile.threshold("transport/max_median_rtt_ms") == 250
    assert profile.threshold("vlab/max_boot_s") == 45


def test_ssh_round_trip_is_a_measurement_judged_against_the_profile(profile):
    measure = FakeMeasure()
    smoke.test_node_answers_ssh(lambda n: FakeNode(n), "h1", profile, measure)
    [m] = measure.measurements
    assert m.unit == "ms" and m.threshold == 250 and m.comparison == "<="
    assert m.profile == profile.label and len(m.repetitions) == smoke.RTT_SAMPLES
    assert m.verdict == "pass" and m.value < 250


def test_ssh_round_trip_over_the_profile_fails_with_the_figure(profile):
    measure = FakeMeasure()
    with pytest.raises(AssertionError, match=r"h1: median command round trip \d+ ms > 250 ms"):
        smoke.test_node_answers_ssh(lambda n: FakeNode(n, delay_s=0.26), "h1", profile, measure)
    assert measure.measurements[0].verdict == "fail"


def test_rack_boot_is_recorded_and_judged_when_this_run_booted_it(vlab, profile):
    measure = FakeMeasure()
    smoke.test_virtual_rack_boots_within_profile(FakeRuntime(vlab, 31.5, True), profile, measure)
    [m] = measure.measurements
    assert (m.value, m.unit, m.threshold, m.verdict) == (31.5, "s", 45, "pass")

    with pytest.raises(AssertionError, match=r"booted in 52.0 s > 45 s"):
        smoke.test_virtual_rack_boots_within_profile(FakeRuntime(vlab, 52.0, True), profile,
                                                     FakeMeasure())


def test_rack_boot_is_skipped_with_a_reason_when_the_rack_was_reused(vlab, profile):
    measure = FakeMeasure()
    with pytest.raises(pytest.skip.Exception, match="already up and reused"):
        smoke.test_virtual_rack_boots_within_profile(FakeRuntime(vlab, 0.0, False), profile,
                                                     measure)
    assert measure.measurements == []


def test_inventory_junit_properties_include_bonding_and_team(vlab):
    text = (CAP / "h1-inventory-bond-rxe.txt").read_text()
    # the capture is of a host with the four virtio ports (before the igb PFs)
    hosts = [FakeNode(h, ports={p: v for p, v in vlab.hosts[h].ports.items() if not v.sriov},
                      output=text) for h in vlab.hosts]
    props, config = {}, type("Config", (), {"stash": {}})()
    smoke.test_inventory_collected(vlab, hosts, config, lambda k, v: props.__setitem__(k, v))
    for h in vlab.hosts:
        assert props[f"{h}.bonding"] == "yes" and props[f"{h}.team"] == "yes"
        assert props[f"{h}.eth1.driver"] == "virtio_net" and props[f"{h}.kernel"]
    # the allure environment gets exactly the same names and values
    assert inventory_properties(config.stash[INVENTORY_KEY]) == props


def test_inventory_properties_say_when_bonding_or_team_is_missing():
    inv = parse_inventory((CAP / "h1-inventory-bond-rxe.txt").read_text()
                          .replace("@@team\nyes", "@@team\nno"))
    props = inventory_properties({"h1": inv})
    assert props["h1.bonding"] == "yes" and props["h1.team"] == "no"
