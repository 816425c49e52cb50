"""Each fault injector takes its fault where the lab says, it is visible at the
right ends, and its revert (registered before the fault) restores the lab."""

import pytest

from pytest_laghil import lacks
from laghil.faults import FaultError, HostLinkDown, SwitchPortShutdown, VirtualCablePull

pytestmark = [pytest.mark.disruptive, pytest.mark.smoke]


def _first_cable(config, lab, kind):
    for c in lab.cables:
        if any(f.kind == kind for f in c.faults):
            return c
    lacks(config, kind, lab, "no cable allows it")


def test_virtual_cable_pull_drops_carrier_at_both_ends(pytestconfig, lab, lab_rt, defer):
    c = _first_cable(pytestconfig, lab, "virtual_pull")
    f = VirtualCablePull(lab_rt, c.name)
    t = f.inject(defer=defer)
    f.verify(timeout=10)
    f.revert()
    f.verify_reverted(timeout=10)
    assert f.t_revert >= t and [e.kind for e in f.events()] == ["fault", "restore"]


def test_host_link_down_drops_the_host_port(pytestconfig, lab, lab_rt, defer):
    c = _first_cable(pytestconfig, lab, "link_down")
    end = c.a if c.a.node in lab.hosts else c.b
    f = HostLinkDown(lab_rt, end.node, end.port)
    f.inject(defer=defer)
    f.verify(timeout=10)
    f.revert()
    f.verify_reverted(timeout=10)


def test_switch_port_shutdown_takes_the_host_end_down(pytestconfig, lab, lab_rt, defer):
    c = _first_cable(pytestconfig, lab, "switch_shutdown")
    sw = c.a if c.a.node in lab.switches else c.b
    host = c.other_end(sw.node, sw.port)
    f = SwitchPortShutdown(lab_rt, sw.node, sw.port)
    f.inject(defer=defer)
    f.verify(timeout=10)
    assert lab_rt.node(host.node).carrier(host.port) is False, \
        f"{host.node}:{host.port} still has carrier after {sw.node}:{sw.port} shutdown"
    f.revert()
    f.verify_reverted(timeout=10)


def test_revert_runs_from_the_undo_stack_when_the_test_fails_midway(pytestconfig, lab, lab_rt):
    from laghil.undo import Defer
    c = _first_cable(pytestconfig, lab, "virtual_pull")
    stack = Defer()
    f = VirtualCablePull(lab_rt, c.name)
    f.inject(defer=stack)
    assert len(stack) == 1, "the revert must be registered before the fault"
    assert stack.run_all() == []
    f.verify_reverted(timeout=10)


def test_unknown_fault_kind_for_a_cable_is_refused(lab, lab_rt):
    from laghil.faults import injector_for
    c = next((c for c in lab.cables if not c.has_fault("switch_shutdown")), None)
    if c is None:
        pytest.skip(f"lab {lab.name!r}: every cable allows switch_shutdown")
    with pytest.raises(FaultError, match="not allowed by lab"):
        injector_for(lab_rt, c.name, "switch_shutdown")


@pytest.mark.power
def test_pdu_outlet_off_cuts_the_node_and_on_brings_it_back(pytestconfig, lab, lab_rt, defer):
    from laghil.faults import PduOutletOff
    c = _first_cable(pytestconfig, lab, "pdu_outlet")
    fault = next(f for f in c.faults if f.kind == "pdu_outlet")
    f = PduOutletOff(lab_rt, fault.pdu, fault.outlet)
    assert f.pdu.state(f.outlet) is True, f"{fault.pdu} outlet {fault.outlet} was off before the test"
    f.inject(defer=defer)
    f.verify(timeout=15)
    assert f.pdu.state(f.outlet) is False
    f.revert()
    f.verify_reverted(timeout=120)
    r = lab_rt.node(f.node).run("cat /proc/uptime")
    uptime = float(r.stdout.split()[0])
    assert uptime < 300, f"{f.node} did not reboot: uptime {uptime:.0f} s after power on"
    print(f"{fault.pdu} outlet {fault.outlet} ({f.node}): off at {f.t_inject:.3f}, on at "
          f"{f.t_revert:.3f}; far ends {f.far} dark then lit; {f.node} uptime {uptime:.1f} s")


def test_protected_outlet_is_refused_before_anything_is_sent(pytestconfig, lab, lab_rt):
    from laghil.faults import PduOutletOff
    for pdu_name, pdu in lab.pdus.items():
        for n, outlet in pdu.outlets.items():
            if outlet.protected:
                with pytest.raises(FaultError, match="protected"):
                    PduOutletOff(lab_rt, pdu_name, n, pdu_control=_NoSnmp())
                return
    lacks(pytestconfig, "protected outlet", lab, "none declared")


class _NoSnmp:
    """A PDU control that fails the test if anything is sent."""
    def __getattr__(self, name):
        raise AssertionError(f"PDU {name}() called for a protected outlet")
