"""Pull and restore a lab cable, checked at both ends.

``CableControl.down()`` drops carrier on BOTH ends of a cable and verifies it by
reading carrier on both nodes; ``up()`` restores it the same way. The method is
the first the cable's lab entry allows among those laghil can drive here:
``virtual_pull`` (QMP set_link on both guests' NICs) in the virtual rack,
``link_down`` (``ip link set down`` on the host ends) elsewhere. Switch shutdown
and PDU outlets arrive with the fault injectors.
"""

import time

from .errors import LaghilError
from .names import qif


class CableError(LaghilError):
    pass


class CableControl:
    def __init__(self, lab, cable, nodes, rack=None):
        self.lab = lab
        self.cable = cable
        self.nodes = nodes            # callable name -> Node
        self.rack = rack              # laghil.vlab.rack.Rack for virtual labs
        self.ends = [tuple(e.split(":", 1)) for e in cable.ends]
        self.method = self._choose_method()
        self.events = []              # (label, wall time) for timelines

    def __repr__(self):
        return f"<Cable {self.cable.name} {self.cable.ends[0]}<->{self.cable.ends[1]} via {self.method}>"

    @property
    def name(self):
        return self.cable.name

    def _choose_method(self):
        kinds = [f.kind for f in self.cable.faults]
        if self.rack is not None and "virtual_pull" in kinds:
            return "virtual_pull"
        if "link_down" in kinds:
            return "link_down"
        raise CableError(f"cable {self.cable.name}: no fault method laghil can drive "
                         f"(lab allows {kinds or 'none'})")

    def carrier(self):
        """{"node:port": bool} for both ends."""
        out = {}
        for node, port in self.ends:
            out[f"{node}:{port}"] = self.nodes(node).carrier(port)
        return out

    def wait_carrier(self, expected, timeout=10.0, interval=0.1):
        """Poll both ends until both show ``expected``; return the seconds it took."""
        t0 = time.monotonic()
        while True:
            seen = self.carrier()
            if all(v == expected for v in seen.values()):
                return time.monotonic() - t0
            if time.monotonic() - t0 > timeout:
                raise CableError(f"cable {self.cable.name}: carrier expected "
                                 f"{'up' if expected else 'down'} at both ends within "
                                 f"{timeout:.1f} s, saw {seen}")
            time.sleep(interval)

    def _apply(self, up):
        if self.method == "virtual_pull":
            t = self.rack.set_cable(self.cable, up)[0]
        else:
            t = time.time()
            for node, port in self.ends:
                n = self.nodes(node)
                if n.role == "host":
                    n.run(f"ip link set dev {qif(port)} {'up' if up else 'down'}")
        self.events.append(("restore" if up else "pull", t))
        return t

    def down(self, verify=True, timeout=10.0):
        """Pull the cable; return the wall-clock instant of the fault."""
        t = self._apply(False)
        if verify:
            self.wait_carrier(False, timeout)
        return t

    def up(self, verify=True, timeout=10.0):
        """Restore the cable; return the wall-clock instant of the restore."""
        t = self._apply(True)
        if verify:
            self.wait_carrier(True, timeout)
        return t
