"""Fault injectors: inject / verify / revert, with the revert registered on the
undo stack BEFORE the fault is injected. Each records the instants of the fault
and of the restore (controller wall clock) for the timeline.

    f = injector_for(rt, "h1-h2-a")          # the lab's preferred pull
    f.inject(defer=defer)   # registers f.revert first, then pulls
    f.verify()              # carrier really gone where it must be
    f.revert()              # idempotent; the undo stack calls it again harmlessly

    with fault(rt, "h1-h2-a", defer=defer):  # the same, verified both ways
        ...

``FAULT_KINDS`` is the one table of fault kinds (as lab files name them),
``pull_method`` the one chooser of how a cable is pulled.
"""

from .injectors import (FAULT_KINDS, PULL_PREFERENCE, FaultError, FaultInjector, HostLinkDown,
                        PduOutletOff, SlowCarrierPull, SwitchPortShutdown, VirtualCablePull, fault,
                        injector_for, pull_method)

__all__ = ["FAULT_KINDS", "PULL_PREFERENCE", "FaultError", "FaultInjector", "HostLinkDown",
           "PduOutletOff", "SlowCarrierPull", "SwitchPortShutdown", "VirtualCablePull", "fault", "injector_for",
           "pull_method"]
