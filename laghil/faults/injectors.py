"""The fault injectors, the one table of fault kinds, the one chooser of how a
cable is pulled, and the one "inject, verify, revert, verify" helper."""

import time
from contextlib import contextmanager

from ..errors import LaghilError
from ..journal import Undo, UndoRecord, node_record
from ..measure.model import Event
from ..names import qif
from ..wait import wait_until


class FaultError(LaghilError):
    pass


# How a cable is pulled, best first: a virtual pull drops carrier at both ends
# at once (the virtual rack only); a host link-down is a member's own failure;
# a switch port shutdown goes through the switch driver. PDU outlets power a
# whole node off: never chosen to pull one cable.
PULL_PREFERENCE = ("virtual_pull", "link_down", "switch_shutdown")


class FaultInjector:
    """Base: a subclass implements ``_inject`` and ``_revert`` (each returns the
    instant it acted, controller wall clock, or None for "now") and sets
    ``dark``: the (node, port) ends whose carrier the fault must drop and the
    revert must bring back."""

    kind = "fault"
    dark = ()
    # a member's own admin-down: how long after the fault instant the command
    # returned (ms; RTNL was held until then), None for other methods
    admin_down_ms = None

    def __init__(self, rt, label):
        self.rt = rt
        self.label = label
        self.t_inject = None
        self.t_revert = None
        self.active = False

    def __repr__(self):
        return f"<{type(self).__name__} {self.label}>"

    def inject(self, *, defer):
        """Register the revert, then inject. Returns the instant of the fault.
        Refused (FaultError, nothing done) where the runtime's
        ``disruption_guard`` says the caller may not take links down."""
        guard = getattr(self.rt, "disruption_guard", None)
        why = guard(self.label) if guard is not None else None
        if why:
            raise FaultError(why)
        defer(Undo(self.revert, self.revert_records() or (), f"revert {self.label}"))
        self.active = True
        self._defer = defer         # for a driver call that registers its own undo
        self.t_inject = self._inject() or time.time()
        return self.t_inject

    def revert(self):
        """Undo the fault (idempotent). Returns the instant of the restore."""
        if not self.active:
            return self.t_revert
        self.t_revert = self._revert() or time.time()
        self.active = False
        return self.t_revert

    def revert_records(self):
        """The journal records of the revert: what a later process does to
        revert this fault (laghil.journal); none: it is not journaled."""
        return None

    def carriers(self):
        """{"node:port": carrier} at the ends the fault darkens."""
        return {f"{n}:{p}": self.rt.node(n).carrier(p) for n, p in self.dark}

    def _all(self, up):
        seen = self.carriers()
        return None if all(v == up for v in seen.values()) else seen

    def verify(self, timeout=10.0):
        """Wait until the fault is visible where it must be; returns the seconds
        it took; FaultError says what was last seen."""
        return wait_until(lambda: self._all(False), timeout=timeout, error=FaultError,
                          what=f"{self.label}: fault visible (carrier gone)")

    def verify_reverted(self, timeout=30.0):
        return wait_until(lambda: self._all(True), timeout=timeout, error=FaultError,
                          what=f"{self.label}: restore visible (carrier back)")

    def events(self):
        out = []
        if self.t_inject:
            out.append(Event(self.t_inject, f"{self.kind}: {self.label}", "fault"))
        if self.t_revert:
            out.append(Event(self.t_revert, f"restore: {self.label}", "restore"))
        return out

    def _inject(self):
        raise NotImplementedError

    def _revert(self):
        raise NotImplementedError


class HostLinkDown(FaultInjector):
    """``ip link set <port> down`` on a host (a member's own link-down). The
    management interface is refused, whatever the lab file says. A real NIC's
    admin-down takes its PHY down: the wire goes dark at both ends. In the virtual
    rack, where a guest's admin-down reaches no wire, the carrier is dropped at
    both ends by QMP at the fault instant, then the host's admin-down follows:
    taking the far end down only after it would put the emulated NIC's stop
    (igb's reset under TCG: hundreds of ms) into the figure (measured on the
    twin of rack3: RDMA T_gap 419-520 ms that way, against 47-52 ms for a switch
    port shut with both ends dark at once)."""
    kind = "link-down"

    def __init__(self, rt, host, port):
        from ..drivers.netdev import NetdevRefused, check_not_management
        super().__init__(rt, f"{host}:{port} link down")
        self.host, self.port = host, port
        self.dark = [(host, port)]
        far = rt.lab.far_end(host, port) if rt.rack is not None else None
        self.far = (far.node, far.port) if far else None
        try:
            check_not_management(rt.node(host), port, "take down")
        except NetdevRefused as e:
            raise FaultError(str(e)) from None

    @classmethod
    def for_cable(cls, rt, cable, spec, at=None):
        host = _end_at(rt.lab, cable, rt.lab.hosts, at)
        return cls(rt, host.node, host.port)

    def _inject(self):
        t = time.time()
        if self.far:
            t = self.rt.rack.set_port(self.host, self.port, False)
            self.rt.rack.set_port(*self.far, False)
        self.rt.node(self.host).run(f"ip link set dev {qif(self.port)} down")
        # the kernel held RTNL through the driver's stop until about now: no
        # switch-over needing it finished before (laghil.bounds.later_of_admin_down);
        # the controller's instant, late by at most the reply's way back
        self.admin_down_ms = (time.time() - t) * 1e3
        return t

    def _revert(self):
        t = time.time()
        self.rt.node(self.host).run(f"ip link set dev {qif(self.port)} up")
        if self.far:
            self.rt.rack.set_port(*self.far, True)
            t = self.rt.rack.set_port(self.host, self.port, True)
        return t

    def revert_records(self):
        recs = [node_record(self.host, "link_set", name=self.port, up=True,
                            what=f"{self.port} up (link-down fault)")]
        if self.far:
            recs += [UndoRecord("port", self.far[0], (self.far[1],)),
                     UndoRecord("port", self.host, (self.port,))]
        return recs


class VirtualCablePull(FaultInjector):
    """Pull a virtual rack cable: carrier drops at BOTH ends (QMP set_link)."""
    kind = "cable pull"

    def __init__(self, rt, cable_name):
        super().__init__(rt, f"cable {cable_name} pulled")
        self.cable = rt.lab.cable(cable_name)
        if rt.rack is None or not self.cable.has_fault("virtual_pull"):
            raise FaultError(f"cable {cable_name}: a virtual pull needs the virtual rack and a "
                             f"cable that allows it (lab {rt.lab.name!r} allows "
                             f"{', '.join(self.cable.fault_kinds) or 'none'})")
        self.dark = [tuple(e) for e in self.cable.refs]

    @classmethod
    def for_cable(cls, rt, cable, spec, at=None):
        return cls(rt, cable.name)

    def _inject(self):
        return self.rt.rack.set_cable(self.cable, False)[0]

    def _revert(self):
        return self.rt.rack.set_cable(self.cable, True)[0]

    def revert_records(self):
        return [UndoRecord("cable", self.cable.name)]


class SlowCarrierPull(VirtualCablePull):
    """A seeded defect for negative controls (never a lab's fault kind): a cable
    whose wire dies at the pull while the host end's carrier drops only
    ``carrier_late_ms`` later (a slow PHY or firmware), and whose wire comes back
    at the restore while the host end's carrier returns only ``link_up_late_ms``
    later (a slow link-up). The LAG's configuration is not touched: what the
    suite must see is the late figure itself. ``host`` is the node whose end is
    late; the far end follows the wire. The fault and restore instants are the
    wire's."""
    kind = "cable pull (slow carrier)"

    def __init__(self, rt, cable_name, host, carrier_late_ms=0.0, link_up_late_ms=0.0):
        super().__init__(rt, cable_name)
        ends = dict(self.cable.refs)
        if host not in ends:
            raise FaultError(f"cable {cable_name}: {host} is not at either end "
                             f"({', '.join(ends)})")
        self.host = (host, ends[host])
        self.far = next((n, p) for n, p in self.cable.refs if n != host)
        self.carrier_late_s = carrier_late_ms / 1e3
        self.link_up_late_s = link_up_late_ms / 1e3
        self.label = (f"cable {cable_name} pulled, {host}'s carrier {carrier_late_ms:g} ms late "
                      f"down, {link_up_late_ms:g} ms late up")
        self.method = (f"virtual_pull, {host}'s carrier {carrier_late_ms:g} ms late down and "
                       f"{link_up_late_ms:g} ms late up (seeded)")

    def _late(self, up, late_s):
        t = self.rt.rack.set_port(*self.far, up)        # the wire: the far end goes with it
        time.sleep(max(0.0, t + late_s - time.time()))
        self.rt.rack.set_port(*self.host, up)
        return t

    def _inject(self):
        return self._late(False, self.carrier_late_s)

    def _revert(self):
        return self._late(True, self.link_up_late_s)


class SwitchPortShutdown(FaultInjector):
    """Shut a switch port through its switch driver. In the virtual rack the
    switch guest's admin-down reaches no PHY, so the link is also darkened at
    both ends by QMP, as a real port's PHY does."""
    kind = "switch shutdown"

    def __init__(self, rt, switch, port):
        from ..drivers.switch import switch_driver
        super().__init__(rt, f"{switch}:{port} shutdown")
        self.switch, self.port = switch, port
        self.driver = switch_driver(rt.node(switch))
        try:        # refused before any change: a port of the lab file, not management
            self.driver.check_shut_port(port)
        except LaghilError as e:
            raise FaultError(str(e)) from None
        far = rt.lab.far_end(switch, port)
        self.far = (far.node, far.port) if far else None
        self.dark = [self.far] if self.far else []

    @classmethod
    def for_cable(cls, rt, cable, spec, at=None):
        sw = _end_at(rt.lab, cable, rt.lab.switches, None)
        return cls(rt, sw.node, sw.port)

    def _inject(self):
        """The fault instant: on a real switch, when the shutdown command was
        sent (the PHY drops while the NOS executes it). In the virtual rack the
        PHY is QMP's: the link goes dark at both ends at that instant (the host
        end's carrier and the switch port's), as a real port's PHY does, then the
        switch's own admin-down follows; dropping the switch end only when the
        admin-down sent over SSH had run lost the frames the switch hashed onto
        the port for an SSH round trip, a figure of the machine's speed (T_gap 5-10
        ms longer than a cable pull with the host end alone; issue 21, item 7)."""
        if self.rt.rack is not None and self.far:
            t = self.rt.rack.set_port(*self.far, False)
            self.rt.rack.set_port(self.switch, self.port, False)
            self.driver.port_shutdown(self.port, defer=self._defer)
            return t
        t = time.time()
        self.driver.port_shutdown(self.port, defer=self._defer)
        return t

    def _revert(self):
        """The port first, then (virtual rack) the carrier at both ends, as a PHY
        comes up once the NOS has enabled the port; the instant as for the fault."""
        t = time.time()
        self.driver.port_no_shutdown(self.port)
        if self.rt.rack is not None and self.far:
            self.rt.rack.set_port(self.switch, self.port, True)
            t = self.rt.rack.set_port(*self.far, True)
        return t

    def revert_records(self):
        recs = [UndoRecord("switch", self.switch, ("port_no_shutdown", [self.port]))]
        if self.rt.rack is not None and self.far:
            recs += [UndoRecord("port", self.switch, (self.port,)),
                     UndoRecord("port", self.far[0], (self.far[1],))]
        return recs


class PduOutletOff(FaultInjector):
    """Switch a PDU outlet off (and back on). Protected outlets are refused before
    anything is sent. The fed node loses power; its cables' far ends lose carrier."""
    kind = "power off"

    def __init__(self, rt, pdu, outlet, pdu_control=None):
        super().__init__(rt, f"{pdu} outlet {outlet} off")
        spec = rt.lab.pdus[pdu].outlets.get(int(outlet))
        if spec is None:
            raise FaultError(f"pdu {pdu}: no outlet {outlet} in lab {rt.lab.name!r}")
        if spec.protected:
            raise FaultError(f"pdu {pdu} outlet {outlet} is protected "
                             f"({spec.label or spec.feeds or 'no label'}): refusing to switch it off")
        if pdu_control is None:
            from ..power.pdu import PduControl
            pdu_control = PduControl(rt.lab, pdu, env=rt.env)
        self.pdu = pdu_control
        self.pdu_name = pdu
        self.outlet = int(outlet)
        self.node = spec.feeds
        self.far = [(c.other_end(self.node, p).node, c.other_end(self.node, p).port)
                    for p in (rt.lab.node(self.node).ports if self.node else [])
                    for c in [rt.lab.cable_of(self.node, p)] if c is not None]
        self.dark = self.far

    @classmethod
    def for_cable(cls, rt, cable, spec, at=None):
        return cls(rt, spec.pdu, spec.outlet)

    def _inject(self):
        return self.pdu.off(self.outlet)

    def _revert(self):
        return self.pdu.on(self.outlet)

    def revert_records(self):
        return [UndoRecord("pdu", self.pdu_name, (self.outlet,))]


# fault kind (as lab files name it) -> injector: the one source of the fault kinds a
# lab file may name (laghil.lab.fields reads it)
FAULT_KINDS = {"link_down": HostLinkDown, "switch_shutdown": SwitchPortShutdown,
               "virtual_pull": VirtualCablePull, "pdu_outlet": PduOutletOff}


def _end_at(lab, cable, section, at):
    """The cable end on a node of ``section`` (hosts, switches); ``at`` first."""
    ends = [e for e in cable.refs if e.node in section]
    if not ends:
        raise FaultError(f"cable {cable.name}: no end on a {'host' if section is lab.hosts else 'switch'}")
    return next((e for e in ends if e.node == at), ends[0])


def pull_method(cable, virtual):
    """The first of :data:`PULL_PREFERENCE` that the lab allows on ``cable``
    (``virtual``: the lab is the virtual rack), or None."""
    return next((k for k in PULL_PREFERENCE
                 if cable.has_fault(k) and (k != "virtual_pull" or virtual)), None)


def injector_for(rt, cable_name, kind=None, at=None):
    """The injector of ``kind`` (default: :func:`pull_method`) for a lab cable,
    if the lab allows it there; ``at`` names the node whose end a one-ended
    fault (link-down) takes."""
    cable = rt.lab.cable(cable_name)
    allowed = {f.kind: f for f in cable.faults}
    if kind is None:
        kind = pull_method(cable, rt.rack is not None)
        if kind is None:
            raise FaultError(f"cable {cable_name}: no way to pull it that laghil can drive "
                             f"(lab {rt.lab.name!r} allows {', '.join(allowed) or 'none'}; "
                             f"pulls: {', '.join(PULL_PREFERENCE)})")
    if kind not in allowed:
        raise FaultError(f"cable {cable_name}: fault {kind!r} not allowed by lab "
                         f"{rt.lab.name!r} (allowed: {', '.join(allowed) or 'none'})")
    if kind not in FAULT_KINDS:
        raise FaultError(f"cable {cable_name}: no injector for {kind!r}")
    return FAULT_KINDS[kind].for_cable(rt, cable, allowed[kind], at)


@contextmanager
def fault(rt, cable_name, *, defer, kind=None, at=None, timeout=10.0, revert_timeout=30.0):
    """Inject (its revert registered first), verify, hand the injector to the
    body, then revert and verify the restore. When the body fails the revert
    still runs (and again, harmlessly, from ``defer``).

        with fault(rt, "h1-h2-a", defer=defer) as f:
            ...   # traffic while the cable is out
    """
    f = injector_for(rt, cable_name, kind, at)
    f.inject(defer=defer)
    f.verify(timeout=timeout)
    try:
        yield f
    except BaseException:
        f.revert()
        raise
    f.revert()
    f.verify_reverted(timeout=revert_timeout)
