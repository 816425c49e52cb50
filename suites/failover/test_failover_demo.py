"""Failover under probe traffic: one member's cable pulled while sequence-numbered
UDP flows run over the bond; the outage is measured per flow (T_gap, T_loss),
judged against the certification profile, and drawn on the run's timeline."""

import time

import pytest

from laghil.faults import injector_for
from laghil.measure.model import Event
from laghil.measure.probe import Probe, sample_clock

pytestmark = [pytest.mark.failover, pytest.mark.bonding, pytest.mark.disruptive,
              pytest.mark.ci, pytest.mark.requires("bonding", count=2)]

RATE_PPS = 2000
FLOWS = 2


def _pull_method(cable):
    for kind in ("virtual_pull", "link_down"):
        if cable.has_fault(kind):
            return kind
    pytest.skip(f"cable {cable.name}: lacks capability 'virtual_pull' or 'link_down'")


def test_active_backup_miimon10_cable_pull_outage_within_profile(
        b2b_bond, lab_rt, measure, profile, defer):
    a, b, cables = b2b_bond("active-backup", miimon=10)
    sender, receiver = a.node, b.node
    deadline = time.monotonic() + 10
    while not (active := a.active_slave()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert active in a.members, f"{sender.name}: bond0 has no active slave ({active!r})"
    cable = next(c for c in cables if (sender.name, active) in (tuple(c.a), tuple(c.b)))
    fault = injector_for(lab_rt, cable.name, _pull_method(cable))

    sender.run("ping -c 3 -i 0.2 -W 2 192.168.201.2")   # neighbours resolved before traffic
    clock = sample_clock(receiver)
    probe = Probe(sender, receiver, "192.168.201.2", flows=FLOWS, rate_pps=RATE_PPS,
                  duration_s=6, realtime=True)
    defer(probe.stop)
    t_traffic = probe.start()
    time.sleep(max(0.0, t_traffic + 2.0 - time.time()))
    t_fault = fault.inject(defer)
    fault.verify(timeout=5)
    time.sleep(max(0.0, t_fault + 2.0 - time.time()))
    t_restore = fault.revert()
    res = probe.wait()
    new_active = a.active_slave()

    to_rx = clock.offset_s   # receiver clock - controller clock
    events = [Event(e.t + to_rx, e.label, e.kind, clock=f"{receiver.name} (offset "
                    f"{to_rx * 1e3:+.1f} +- {clock.uncertainty_s * 1e3:.1f} ms)")
              for e in fault.events()]
    for m in res.measurements(fault_t=t_fault + to_rx):
        m.profile = profile.label
        if m.name == "T_gap max":
            m.threshold = profile.threshold("failover/active-backup.miimon_10.t_gap_ms")
        if m.name == "T_loss max":
            m.threshold = profile.threshold("failover/active-backup.miimon_10.t_loss_ms")
        measure.record(m)
    measure.timeline(res.timeline(f"{receiver.name} <- {sender.name} over bond0 active-backup "
                                  f"miimon 10, {FLOWS} flows x {RATE_PPS} pkt/s", events))
    lag = res.outage(fault_t=t_fault + to_rx)
    print(f"achieved {res.achieved_pps} pkt/s per flow; T_gap max {lag['t_gap_max_ms']:.1f} ms "
          f"median {lag['t_gap_median_ms']:.1f} ms; T_loss max {lag['t_loss_max_ms']:.1f} ms; "
          f"active {active} -> {new_active}; clock offset {to_rx * 1e3:+.1f} ms")

    assert res.achieved_pps >= 0.95 * RATE_PPS, (
        f"probe reached {res.achieved_pps} pkt/s per flow, under 95% of {RATE_PPS}: "
        "the resolution the figures claim does not hold")
    assert t_restore > t_fault
    gap_limit = profile.threshold("failover/active-backup.miimon_10.t_gap_ms")
    loss_limit = profile.threshold("failover/active-backup.miimon_10.t_loss_ms")
    assert lag["t_gap_max_ms"] is not None and lag["t_gap_max_ms"] > 0, (
        f"no outage measured at all around the pull of {cable.name} (T_gap {lag['t_gap_max_ms']})"
        ": the fault did not hit the traffic's path")
    assert lag["t_gap_max_ms"] <= gap_limit, (
        f"T_gap max {lag['t_gap_max_ms']:.1f} ms > {gap_limit:g} ms ({profile.label}) "
        f"after pulling {cable.name} (active {active})")
    assert lag["t_loss_max_ms"] <= loss_limit, (
        f"T_loss max {lag['t_loss_max_ms']:.1f} ms > {loss_limit:g} ms ({profile.label})")
