"""Fault injectors: inject / verify / revert, with the revert registered on the
undo stack BEFORE the fault is injected. Each records the instants of the fault
and of the restore (controller wall clock) for the timeline.

    f = HostLinkDown(rt, "h1", "eth1")
    f.inject(defer)      # registers f.revert first, then takes the link down
    f.verify()           # carrier really gone where it must be
    f.revert()           # idempotent; the undo stack calls it again harmlessly
"""

from .injectors import (FaultError, FaultInjector, HostLinkDown, PduOutletOff,
                        SwitchPortShutdown, VirtualCablePull, injector_for)

__all__ = ["FaultError", "FaultInjector", "HostLinkDown", "PduOutletOff",
           "SwitchPortShutdown", "VirtualCablePull", "injector_for"]
