"""The fault injectors (see the package docstring)."""

import time

from ..errors import LaghilError
from ..measure.model import Event
from ..names import qif


class FaultError(LaghilError):
    pass


class FaultInjector:
    """Base: subclasses implement _inject, _revert and _verify_injected/_verify_reverted."""

    kind = "fault"

    def __init__(self, rt, label):
        self.rt = rt
        self.label = label
        self.t_inject = None
        self.t_revert = None
        self.active = False

    def __repr__(self):
        return f"<{type(self).__name__} {self.label}>"

    def inject(self, defer):
        """Register the revert, then inject. Returns the instant of the fault."""
        defer(self.revert)
        self.active = True
        self.t_inject = self._inject() or time.time()
        return self.t_inject

    def revert(self):
        """Undo the fault (idempotent). Returns the instant of the restore."""
        if not self.active:
            return self.t_revert
        self.t_revert = self._revert() or time.time()
        self.active = False
        return self.t_revert

    def verify(self, timeout=10.0):
        """Wait until the fault is visible where it must be; raises FaultError."""
        self._wait(self._fault_visible, timeout, "fault not visible")

    def verify_reverted(self, timeout=30.0):
        self._wait(self._restore_visible, timeout, "restore not visible")

    def _wait(self, check, timeout, what):
        deadline = time.monotonic() + timeout
        while True:
            seen = check()
            if seen is True:
                return
            if time.monotonic() > deadline:
                raise FaultError(f"{self.label}: {what} within {timeout:g} s ({seen})")
            time.sleep(0.1)

    def events(self):
        out = []
        if self.t_inject:
            out.append(Event(self.t_inject, f"{self.kind}: {self.label}", "fault"))
        if self.t_revert:
            out.append(Event(self.t_revert, f"restore: {self.label}", "restore"))
        return out

    # subclasses
    def _inject(self):
        raise NotImplementedError

    def _revert(self):
        raise NotImplementedError

    def _fault_visible(self):
        raise NotImplementedError

    def _restore_visible(self):
        raise NotImplementedError


def _carriers(rt, ends):
    return {f"{n}:{p}": rt.node(n).carrier(p) for n, p in ends}


class HostLinkDown(FaultInjector):
    """``ip link set <port> down`` on a host (a member's own link-down)."""
    kind = "link-down"

    def __init__(self, rt, host, port):
        super().__init__(rt, f"{host}:{port} link down")
        self.host, self.port = host, port

    def _inject(self):
        t = time.time()
        self.rt.node(self.host).run(f"ip link set dev {qif(self.port)} down")
        return t

    def _revert(self):
        t = time.time()
        self.rt.node(self.host).run(f"ip link set dev {qif(self.port)} up")
        return t

    def _fault_visible(self):
        seen = _carriers(self.rt, [(self.host, self.port)])
        return True if not any(seen.values()) else seen

    def _restore_visible(self):
        seen = _carriers(self.rt, [(self.host, self.port)])
        return True if all(seen.values()) else seen


class VirtualCablePull(FaultInjector):
    """Pull a virtual rack cable: carrier drops at BOTH ends (QMP set_link)."""
    kind = "cable pull"

    def __init__(self, rt, cable_name):
        super().__init__(rt, f"cable {cable_name} pulled")
        self.cable = rt.cable(cable_name)
        if self.cable.method != "virtual_pull":
            raise FaultError(f"cable {cable_name}: virtual pull needs the virtual rack "
                             f"(lab {rt.lab.name!r} allows {self.cable.method})")

    def _inject(self):
        return self.cable.down(verify=False)

    def _revert(self):
        return self.cable.up(verify=False)

    def _fault_visible(self):
        seen = self.cable.carrier()
        return True if not any(seen.values()) else seen

    def _restore_visible(self):
        seen = self.cable.carrier()
        return True if all(seen.values()) else seen


class SwitchPortShutdown(FaultInjector):
    """Shut a switch port through its switch driver. In the virtual rack the
    switch guest's admin-down does not reach the host NIC's PHY, so the host end's
    carrier is also dropped (QMP on that NIC alone), as a real PHY would."""
    kind = "switch shutdown"

    def __init__(self, rt, switch, port):
        from ..drivers.switch import switch_driver
        super().__init__(rt, f"{switch}:{port} shutdown")
        self.switch, self.port = switch, port
        self.driver = switch_driver(rt.node(switch))
        far = rt.lab.far_end(switch, port)
        self.far = (far.node, far.port) if far else None

    def _inject(self):
        t = time.time()
        self.driver.port_shutdown(self.port)
        if self.rt.rack is not None and self.far:
            self.rt.rack.set_port(*self.far, False)
        return t

    def _revert(self):
        t = time.time()
        if self.rt.rack is not None and self.far:
            self.rt.rack.set_port(*self.far, True)
        self.driver.port_no_shutdown(self.port)
        return t

    def _fault_visible(self):
        if not self.far:
            return True
        seen = _carriers(self.rt, [self.far])
        return True if not any(seen.values()) else seen

    def _restore_visible(self):
        if not self.far:
            return True
        seen = _carriers(self.rt, [self.far])
        return True if all(seen.values()) else seen


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
        self.outlet = int(outlet)
        self.node = spec.feeds
        self.far = [(c.other_end(self.node, p).node, c.other_end(self.node, p).port)
                    for p in (rt.lab.node(self.node).ports if self.node else [])
                    for c in [rt.lab.cable_of(self.node, p)] if c is not None]

    def _inject(self):
        return self.pdu.off(self.outlet)

    def _revert(self):
        t = self.pdu.on(self.outlet)
        return t

    def _fault_visible(self):
        seen = _carriers(self.rt, self.far)
        return True if not any(seen.values()) else seen

    def _restore_visible(self):
        seen = _carriers(self.rt, self.far)
        return True if all(seen.values()) else seen


def injector_for(rt, cable_name, kind):
    """The injector of ``kind`` for a lab cable, if the lab allows it there."""
    cable = rt.lab.cable(cable_name)
    allowed = {f.kind: f for f in cable.faults}
    if kind not in allowed:
        raise FaultError(f"cable {cable_name}: fault {kind!r} not allowed by lab "
                         f"{rt.lab.name!r} (allowed: {', '.join(allowed) or 'none'})")
    a, b = cable.a, cable.b
    if kind == "virtual_pull":
        return VirtualCablePull(rt, cable_name)
    if kind == "link_down":
        host = a if a.node in rt.lab.hosts else b
        return HostLinkDown(rt, host.node, host.port)
    if kind == "switch_shutdown":
        sw = a if a.node in rt.lab.switches else b
        return SwitchPortShutdown(rt, sw.node, sw.port)
    if kind == "pdu_outlet":
        f = allowed[kind]
        return PduOutletOff(rt, f.pdu, f.outlet)
    raise FaultError(f"cable {cable_name}: no injector for {kind!r}")
