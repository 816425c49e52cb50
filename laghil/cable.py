"""A lab cable as the suites see it: its carrier at both ends, and its pull.

``CableControl.pull(defer=defer)`` takes the cable out the one way laghil
pulls cables (:func:`laghil.faults.pull_method`: a virtual pull in the virtual
rack, else a host link-down or a switch port shutdown, as the lab allows),
with the revert registered first, and returns the injector (``revert()``,
``verify()``, ``verify_reverted()``). ``pulled(defer=defer)`` is the same as a
context manager that verifies the fault, and the restore on the way out.
"""

from .faults import injector_for, pull_method
from .faults.injectors import FaultError, fault
from .wait import wait_until


class CableError(FaultError):
    pass


class CableControl:
    def __init__(self, rt, cable):
        self.rt = rt
        self.cable = cable
        self.ends = [tuple(e) for e in cable.refs]
        self.method = pull_method(cable, rt.rack is not None)
        if self.method is None:
            raise CableError(f"cable {cable.name}: no fault method laghil can drive "
                             f"(lab allows {cable.fault_kinds or 'none'})")

    def __repr__(self):
        return f"<Cable {self.cable.name} {self.cable.ends[0]}<->{self.cable.ends[1]} via {self.method}>"

    @property
    def name(self):
        return self.cable.name

    def carrier(self):
        """{"node:port": bool} for both ends."""
        return {f"{n}:{p}": self.rt.node(n).carrier(p) for n, p in self.ends}

    def wait_carrier(self, expected, timeout=10.0, interval=0.1):
        """Poll both ends until both show ``expected``; return the seconds it took."""
        def check():
            seen = self.carrier()
            return None if all(v == expected for v in seen.values()) else seen
        return wait_until(check, timeout=timeout, interval=interval, error=CableError,
                          what=f"cable {self.name}: carrier {'up' if expected else 'down'} "
                               "at both ends")

    def pull(self, *, defer, at=None):
        """Pull the cable (its revert registered on ``defer`` first); the injector."""
        f = injector_for(self.rt, self.name, self.method, at)
        f.inject(defer=defer)
        return f

    def pulled(self, *, defer, at=None, timeout=10.0):
        """Context manager: pulled and verified inside, restored and verified after."""
        return fault(self.rt, self.name, defer=defer, kind=self.method, at=at, timeout=timeout)
