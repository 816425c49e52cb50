"""Each fault injector takes its fault where the lab says, it is visible at the
right ends, and its revert (registered before the fault) restores the lab."""

import pytest

from laghil.faults import FaultError, HostLinkDown, SwitchPortShutdown, VirtualCablePull

pytestmark = [pytest.mark.disruptive, pytest.mark.smoke]


def _first_cable(lab, kind):
    for c in lab.cables:
        if any(f.kind == kind for f in c.faults):
            return c
    pytest.skip(f"lab {lab.name!r} lacks capability {kind!r}: no cable allows it")


def test_virtual_cable_pull_drops_carrier_at_both_ends(lab, lab_rt, defer):
    c = _first_cable(lab, "virtual_pull")
    f = VirtualCablePull(lab_rt, c.name)
    t = f.inject(defer)
    f.verify(timeout=10)
    f.revert()
    f.verify_reverted(timeout=10)
    assert f.t_revert >= t and [e.kind for e in f.events()] == ["fault", "restore"]


def test_host_link_down_drops_the_host_port(lab, lab_rt, defer):
    c = _first_cable(lab, "link_down")
    end = c.a if c.a.node in lab.hosts else c.b
    f = HostLinkDown(lab_rt, end.node, end.port)
    f.inject(defer)
    f.verify(timeout=10)
    f.revert()
    f.verify_reverted(timeout=10)


def test_switch_port_shutdown_takes_the_host_end_down(lab, lab_rt, defer):
    c = _first_cable(lab, "switch_shutdown")
    sw = c.a if c.a.node in lab.switches else c.b
    host = c.other_end(sw.node, sw.port)
    f = SwitchPortShutdown(lab_rt, sw.node, sw.port)
    f.inject(defer)
    f.verify(timeout=10)
    assert lab_rt.node(host.node).carrier(host.port) is False, \
        f"{host.node}:{host.port} still has carrier after {sw.node}:{sw.port} shutdown"
    f.revert()
    f.verify_reverted(timeout=10)


def test_revert_runs_from_the_undo_stack_when_the_test_fails_midway(lab, lab_rt):
    from fixtures.fixtures import Defer
    c = _first_cable(lab, "virtual_pull")
    stack = Defer()
    f = VirtualCablePull(lab_rt, c.name)
    f.inject(stack)
    assert len(stack) == 1, "the revert must be registered before the fault"
    assert stack.run_all() == []
    f.verify_reverted(timeout=10)


def test_unknown_fault_kind_for_a_cable_is_refused(lab, lab_rt):
    from laghil.faults import injector_for
    c = lab.cables[0]
    with pytest.raises(FaultError, match="not allowed by lab"):
        injector_for(lab_rt, c.name, "pdu_outlet")
