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
from .ovs import OvsSwitch
from .sonic import SonicSwitch

# platform (as lab files name it, each driver's ``platform``) -> driver: the one
# source of the platforms a lab file may name (laghil.lab.fields reads it)
DRIVERS = {d.platform: d for d in (LinuxSwitch, CumulusSwitch, SonicSwitch, EosSwitch,
                                   NxosSwitch, OnyxSwitch, OvsSwitch)}
PLATFORMS = tuple(DRIVERS)
# platforms whose ports are Linux netdevs (Linux interface name rules apply)
NETDEV_PLATFORMS = tuple(p for p, d in DRIVERS.items() if d.netdev_ports)


def switch_driver(node):
    platform = node.spec.platform
    try:
        return DRIVERS[platform](node)
    except KeyError:
        raise SwitchError(f"switch {node.name}: no driver for platform {platform!r} "
                          f"(have: {', '.join(sorted(DRIVERS))})") from None


__all__ = ["DRIVERS", "NETDEV_PLATFORMS", "CumulusSwitch", "SonicSwitch", "EosSwitch", "NxosSwitch", "OnyxSwitch", "OvsSwitch", "PLATFORMS", "IN_USE", "PARTNER_MODE", "LagMember", "LinuxBridge", "LinuxSwitch",
           "OffloadEvidence", "SwitchDriver", "SwitchError", "SwitchLag", "SwitchRefused",
           "switch_driver", "switch_lag_from_bond"]
