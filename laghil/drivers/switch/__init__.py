"""Switch platform drivers behind one interface (:mod:`.base`), one module per
platform. ``switch_driver(node)`` gives the driver the lab file names for the
switch (``platform:``); :data:`PLATFORMS` lists the platforms laghil knows, and
the lab loader refuses any other.
"""

from .base import (IN_USE, PARTNER_MODE, LagMember, OffloadEvidence, SwitchDriver, SwitchError,
                   SwitchLag, SwitchRefused)
from .cumulus import CumulusSwitch
from .eos import EosSwitch
from .linux import LinuxBridge, LinuxSwitch, switch_lag_from_bond
from .nxos import NxosSwitch
from .onyx import OnyxSwitch
from .sonic import SonicSwitch

DRIVERS = {"linux": LinuxSwitch, "cumulus": CumulusSwitch, "sonic": SonicSwitch,
           "eos": EosSwitch, "nxos": NxosSwitch, "onyx": OnyxSwitch}
# the platforms a lab file may name (the lab loader refuses any other)
PLATFORMS = tuple(DRIVERS)


def switch_driver(node):
    platform = node.spec.platform
    try:
        return DRIVERS[platform](node)
    except KeyError:
        raise SwitchError(f"switch {node.name}: no driver for platform {platform!r} "
                          f"(have: {', '.join(sorted(DRIVERS))})") from None


__all__ = ["DRIVERS", "CumulusSwitch", "SonicSwitch", "EosSwitch", "NxosSwitch", "OnyxSwitch", "PLATFORMS", "IN_USE", "PARTNER_MODE", "LagMember", "LinuxBridge", "LinuxSwitch",
           "OffloadEvidence", "SwitchDriver", "SwitchError", "SwitchLag", "SwitchRefused",
           "switch_driver", "switch_lag_from_bond"]
