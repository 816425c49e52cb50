"""RDMA providers under a LAG, one module each (:mod:`.base` says what a
provider is): the one place laghil tells providers apart. Everything else
asks a provider (:func:`provider`, :func:`provider_for`) what it needs."""

from . import bnxt_re, hns, mlx5, rxe
from .base import KnownDefect, RdmaError, RdmaProvider

# name -> provider; hardware first: a host that declares a hardware provider and
# rxe uses its hardware
PROVIDERS = {p.name: p for p in (mlx5.PROVIDER, hns.PROVIDER, bnxt_re.PROVIDER, rxe.PROVIDER)}
# what the virtual rack (and every twin) puts where a lab has a hardware provider
STAND_IN = rxe.PROVIDER.name
HARDWARE = tuple(n for n, p in PROVIDERS.items() if not p.software)


def provider(name):
    try:
        return PROVIDERS[name]
    except KeyError:
        raise RdmaError(f"RDMA provider {name!r} unknown (laghil knows "
                        f"{', '.join(PROVIDERS)})") from None


def provider_for(capabilities):
    """The provider a host declaring ``capabilities`` uses (hardware before
    software), or None."""
    return next((p for p in PROVIDERS.values() if p.capability in capabilities), None)


def added_by_laghil(dev, netdev):
    """Whether RDMA device ``dev`` over ``netdev`` is one laghil adds (a
    software provider's device on a LAG, e.g. rxe_<lag>)."""
    return any(p.software and p.aggregate_re(netdev).fullmatch(dev) for p in PROVIDERS.values())


def device_provider(driver, node_type, parent):
    """The provider of an RDMA device from its sysfs entry: the driver of its
    PCI function; a device with a parent netdev and no function is a software
    one (siw for an RNIC node type, else rxe)."""
    if driver:
        return driver
    if parent:
        return "siw" if "RNIC" in node_type else rxe.PROVIDER.name
    return "unknown"


__all__ = ["HARDWARE", "KnownDefect", "PROVIDERS", "RdmaError", "RdmaProvider", "STAND_IN",
           "added_by_laghil", "device_provider", "provider", "provider_for"]
