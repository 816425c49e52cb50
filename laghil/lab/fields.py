"""The lab file's vocabulary: the names laghil knows (capabilities, fault kinds,
PDU models), the field types every model uses (validated names, MACs, PCI
addresses, cable ends...), and the small records of a lab (PortRef, Problem)."""

from __future__ import annotations

import re
from typing import Annotated, Literal, NamedTuple

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from ..drivers import rdma as _rdma
from ..drivers import switch as _switch
from ..errors import BadName, LaghilError
from ..faults import injectors as _injectors
from ..power import pdu as _pdu
from ..names import check_ifname, check_name

CAPABILITIES = (
    "bonding", "team", "lacp", "roce_lag", "sriov", "sriov_lag", "vf_link_state",
    "ib_bond", "numa", "switch_lag", "lag_offload", "virtual_pull",
    *(p.capability for p in _rdma.PROVIDERS.values()),     # an RDMA provider each
)
RDMA_PROVIDERS = tuple(_rdma.PROVIDERS)
# The names below are read from what implements them, their one source: a
# lab file naming anything else is refused at load.
FAULT_KINDS = tuple(_injectors.FAULT_KINDS)             # a fault injector each
PDU_MODELS = tuple(_pdu.MODEL_MODULES)                  # a PDU model module each
SWITCH_PLATFORMS = _switch.PLATFORMS                    # a switch driver each
LINUX_SWITCH_PLATFORMS = _switch.NETDEV_PLATFORMS       # ports are Linux netdevs
VIRTUAL_ADDRESS = "127.0.0.1"


class _Model(BaseModel):
    """Every model of a lab file: frozen, and unknown fields refused."""
    model_config = ConfigDict(frozen=True, extra="forbid")


class UnknownPort(LaghilError, KeyError):
    """A port name that the node does not declare."""

    def __str__(self):
        return str(self.args[0]) if self.args else "unknown port"


class UnknownCable(LaghilError, KeyError):
    """A cable name that the lab does not declare."""

    def __str__(self):
        return str(self.args[0]) if self.args else "unknown cable"


class PortRef(NamedTuple):
    """One end of a cable: a node and one of its ports."""

    node: str
    port: str

    def __str__(self):
        return f"{self.node}:{self.port}"


class Problem(NamedTuple):
    """One cross-check failure: where in the lab data (a key path) and what."""

    loc: tuple
    message: str


def format_loc(loc) -> str:
    """Render a key path as ``hosts.h1.ports.eth1`` / ``cables[2].ends[0]``."""
    out = ""
    for part in loc:
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


# --------------------------------------------------------------------------
# Field types. Validators raise ValueError: pydantic turns it into a problem.

def _wrap(check, what):
    def validate(value):
        try:
            return check(value, what)
        except BadName as e:
            raise ValueError(str(e)) from None
    return validate


_SWITCH_PORT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9/_.:-]{0,63}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MAC = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")
# a link-layer address: Ethernet's 6 octets or IPoIB's 20 (4 of QPN and flags,
# then the 16-octet port GID)
_HWADDR = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}((:[0-9a-fA-F]{2}){14})?$")
_PCI = re.compile(r"^[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$")


def _node_name(value):
    value = _wrap(check_name, "node name")(value)
    if ":" in value:
        raise ValueError(f"node name {value!r} must not contain ':' (cable ends are node:port)")
    return value


def _switch_port(value):
    if not isinstance(value, str) or not _SWITCH_PORT.fullmatch(value):
        raise ValueError(
            f"switch port name {value!r} is not valid: 1-64 characters of letters, "
            "digits and / _ . : - (no spaces or shell characters)"
        )
    return value


def _env_name(value):
    if not _ENV_NAME.fullmatch(value):
        raise ValueError(
            f"{value!r} is not an environment variable name: give the NAME of a "
            "variable holding the secret, never the secret itself"
        )
    return value


def _pattern(regex, what, example):
    def validate(value):
        if not regex.fullmatch(value):
            raise ValueError(f"{value!r} is not a valid {what} (like {example})")
        return value.lower()
    return validate


def _capability(value):
    if isinstance(value, str) and value not in CAPABILITIES:
        raise ValueError(f"unknown capability {value!r}; allowed: {', '.join(CAPABILITIES)}")
    return value


def _platform(value):
    if value not in SWITCH_PLATFORMS:
        raise ValueError(f"unknown switch platform {value!r}; laghil has drivers for: "
                         f"{', '.join(SWITCH_PLATFORMS)}")
    return value


def _cable_end(value):
    node, sep, port = value.partition(":")
    if not sep or not node or not port:
        raise ValueError(f"cable end {value!r} must be 'node:port'")
    return value


NodeName = Annotated[str, AfterValidator(_node_name)]
Name = Annotated[str, AfterValidator(_wrap(check_name, "name"))]
IfName = Annotated[str, AfterValidator(_wrap(check_ifname, "interface name"))]
SwitchPortName = Annotated[str, AfterValidator(_switch_port)]
EnvName = Annotated[str, AfterValidator(_env_name)]
Mac = Annotated[str, AfterValidator(_pattern(_MAC, "MAC address", "aa:bb:cc:dd:ee:ff"))]
HwAddr = Annotated[str, AfterValidator(_pattern(
    _HWADDR, "link-layer address (6 octets, or 20 for IPoIB)", "aa:bb:cc:dd:ee:ff"))]
Pci = Annotated[str, AfterValidator(_pattern(_PCI, "PCI address", "0000:3b:00.0"))]
Capability = Annotated[Literal[CAPABILITIES], BeforeValidator(_capability)]  # type: ignore[valid-type]
CableEnd = Annotated[str, AfterValidator(_cable_end)]
Platform = Annotated[str, AfterValidator(_platform)]
TcpPort = Annotated[int, Field(ge=1, le=65535)]
Seconds = Annotated[float, Field(gt=0)]
