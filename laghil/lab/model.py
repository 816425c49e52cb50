"""The lab file model: what a rack holds and how its nodes are wired.

A lab is hosts, switches, PDUs and BMCs (all "nodes", names unique across the
four kinds) plus the cables between host and switch ports. Every model is a
frozen pydantic v2 model that refuses unknown fields.

Validation happens in two steps:

* the schema (types, names, patterns), done by pydantic field by field;
* cross checks (:meth:`Lab.cross_check`) that need the whole lab: cable ends
  exist, no port is cabled twice, faults are possible, jumps resolve...

Cross checks report every problem, not just the first one. :func:`laghil.lab.load_lab`
turns both kinds of problem into ``file:line: field: message`` lines.

Secrets never enter the model: a lab file names the *environment variable* that
holds a password or SNMP community; :meth:`Lab.ssh_target` reads it at use.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Literal, Mapping, NamedTuple, Optional, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    model_validator,
)

from ..errors import BadName, LabError, LaghilError, UnknownNode
from ..vlab.paths import lab_state_dir
from ..names import check_ifname, check_name
from ..transport.target import SshTarget

CAPABILITIES = (
    "bonding", "team", "lacp", "rxe", "roce_lag", "sriov", "sriov_lag",
    "ib_bond", "numa", "switch_lag", "virtual_pull", "mlx5",
)
FAULT_KINDS = ("link_down", "switch_shutdown", "virtual_pull", "pdu_outlet")
PDU_MODELS = ("apc-rpdu2", "apc-sporlet", "raritan-px", "virtual")
# Switch platforms whose ports are Linux netdevs (so Linux ifname rules apply).
LINUX_SWITCH_PLATFORMS = ("linux", "cumulus", "sonic")
VIRTUAL_ADDRESS = "127.0.0.1"


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


def vlab_state_dir(lab_name: str, env: Optional[Mapping[str, str]] = None) -> Path:
    """Where the virtual rack keeps its state (SSH key, known_hosts, guest files)."""
    return lab_state_dir(lab_name, env)


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
_PCI = re.compile(r"^[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$")


def _node_name(value):
    value = _wrap(check_name, "node name")(value)
    if ":" in value:
        raise ValueError(f"node name {value!r} must not contain ':' (cable ends are node:port)")
    return value


def _switch_port(value):
    if not isinstance(value, str) or not _SWITCH_PORT.match(value):
        raise ValueError(
            f"switch port name {value!r} is not valid: 1-64 characters of letters, "
            "digits and / _ . : - (no spaces or shell characters)"
        )
    return value


def _env_name(value):
    if not _ENV_NAME.match(value):
        raise ValueError(
            f"{value!r} is not an environment variable name: give the NAME of a "
            "variable holding the secret, never the secret itself"
        )
    return value


def _pattern(regex, what, example):
    def validate(value):
        if not regex.match(value):
            raise ValueError(f"{value!r} is not a valid {what} (like {example})")
        return value.lower()
    return validate


def _capability(value):
    if isinstance(value, str) and value not in CAPABILITIES:
        raise ValueError(f"unknown capability {value!r}; allowed: {', '.join(CAPABILITIES)}")
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
Pci = Annotated[str, AfterValidator(_pattern(_PCI, "PCI address", "0000:3b:00.0"))]
Capability = Annotated[Literal[CAPABILITIES], BeforeValidator(_capability)]  # type: ignore[valid-type]
CableEnd = Annotated[str, AfterValidator(_cable_end)]
TcpPort = Annotated[int, Field(ge=1, le=65535)]
Seconds = Annotated[float, Field(gt=0)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# --------------------------------------------------------------------------
# Nodes

class Management(_Model):
    """How to reach a node over SSH. Secrets are named by env var, never stored."""

    address: str = Field(min_length=1)
    port: TcpPort = 22
    user: Name = "root"
    key_file: Optional[str] = None          # '~' expanded at use
    password_env: Optional[EnvName] = None  # NAME of the env var holding the password
    known_hosts: Optional[str] = None       # None = ~/.ssh/known_hosts
    accept_unknown_host_keys: bool = False
    jump: Optional[NodeName] = None         # another node of the lab used as jump host
    connect_timeout: Seconds = 10.0
    command_timeout: Seconds = 60.0
    sudo: bool = False


class ManagementDefaults(_Model):
    """Management fields shared by every node (``defaults.management``); no address."""

    port: Optional[TcpPort] = None
    user: Optional[Name] = None
    key_file: Optional[str] = None
    password_env: Optional[EnvName] = None
    known_hosts: Optional[str] = None
    accept_unknown_host_keys: Optional[bool] = None
    jump: Optional[NodeName] = None         # not applied to the jump node itself
    connect_timeout: Optional[Seconds] = None
    command_timeout: Optional[Seconds] = None
    sudo: Optional[bool] = None


def _ifname_prefix(value):
    """A prefix to which laghil appends an index (1..99): the whole name must fit."""
    _wrap(check_ifname, "interface name prefix")(value + "99")
    return value


IfNamePrefix = Annotated[str, AfterValidator(_ifname_prefix)]


class DeviceNames(_Model):
    """Names of the netdevs laghil makes on a lab's nodes (``defaults.devices``).

    They are laghil's own so that a node's production ``bond0`` is never taken
    for one of the suite's: a create refuses when a netdev of the name exists."""

    bond: IfName = "lgbond0"
    team: IfName = "lgteam0"
    bridge: IfName = "lgbr0"            # a switch's bridge over the partner LAGs
    switch_lag: IfNamePrefix = "lglag"  # a switch's partner LAGs: lglag1, lglag2...


class Defaults(_Model):
    management: Optional[ManagementDefaults] = None
    devices: DeviceNames = Field(default_factory=DeviceNames)


class Port(_Model):
    """A data port (netdev on a host, front-panel port on a switch)."""

    mac: Optional[Mac] = None
    pci: Optional[Pci] = None
    speed: Optional[Annotated[int, Field(gt=0)]] = None  # Mb/s
    driver: Optional[str] = None
    description: Optional[str] = None


class RdmaDevice(_Model):
    """An RDMA device (ibv_devices name) and the netdevs it sits on."""

    name: Name
    port_count: Annotated[int, Field(ge=1)] = 1
    netdevs: list[IfName] = Field(default_factory=list)


class Host(_Model):
    """A server under test."""

    management: Management
    ports: Annotated[dict[IfName, Port], Field(min_length=1)]
    nic_model: Optional[str] = None
    rdma: list[RdmaDevice] = Field(default_factory=list)
    capabilities: list[Capability] = Field(default_factory=list)
    numa_nodes: Optional[Annotated[int, Field(ge=1)]] = None
    bmc: Optional[NodeName] = None


class Switch(_Model):
    """A switch; port names are the switch CLI's (``Eth1/1``, ``swp1``...)."""

    platform: Name  # linux, onyx, cumulus, sonic, eos...
    management: Management
    ports: Annotated[dict[SwitchPortName, Port], Field(min_length=1)]
    capabilities: list[Capability] = Field(default_factory=list)


class Outlet(_Model):
    feeds: Optional[NodeName] = None  # the node powered by this outlet
    protected: bool = False           # never switched off by laghil
    label: Optional[str] = None


class Pdu(_Model):
    """A switched PDU driven over SNMP (or the virtual rack's fake one)."""

    model: Literal[PDU_MODELS]  # type: ignore[valid-type]
    address: str = Field(min_length=1)
    port: TcpPort = 161
    community_env: Optional[EnvName] = None  # NAME of the env var holding the community
    outlets: dict[Annotated[int, Field(ge=1)], Outlet] = Field(default_factory=dict)


class Bmc(_Model):
    """A server's baseboard management controller."""

    address: str = Field(min_length=1)
    type: Literal["redfish", "ipmi"]
    user: str = Field(min_length=1)
    password_env: EnvName
    system_id: Optional[str] = None


Node = Union[Host, Switch, Pdu, Bmc]


# --------------------------------------------------------------------------
# Cables

class Fault(_Model):
    """One way to break a cable.

    YAML forms: ``link_down``, ``switch_shutdown``, ``virtual_pull`` or
    ``{pdu_outlet: "pdu1:4"}``; code reads ``kind`` and, for ``pdu_outlet``,
    ``pdu`` and ``outlet``.
    """

    kind: Literal[FAULT_KINDS]  # type: ignore[valid-type]
    pdu: Optional[NodeName] = None
    outlet: Optional[Annotated[int, Field(ge=1)]] = None

    @model_validator(mode="before")
    @classmethod
    def _from_yaml(cls, value):
        expected = ("expected one of link_down, switch_shutdown, virtual_pull "
                    "or {pdu_outlet: \"<pdu>:<outlet>\"}")
        if isinstance(value, str):
            if value not in FAULT_KINDS or value == "pdu_outlet":
                raise ValueError(f"unknown fault {value!r}; {expected}")
            return {"kind": value}
        if isinstance(value, dict) and "kind" not in value:
            if list(value) != ["pdu_outlet"]:
                raise ValueError(f"unknown fault {value!r}; {expected}")
            pdu, sep, outlet = str(value["pdu_outlet"]).rpartition(":")
            if not sep or not pdu or not outlet.isdigit():
                raise ValueError(f"pdu_outlet {value['pdu_outlet']!r} must be \"<pdu>:<outlet number>\"")
            return {"kind": "pdu_outlet", "pdu": pdu, "outlet": int(outlet)}
        return value  # already normalised (e.g. a model_dump)

    @model_validator(mode="after")
    def _pdu_fields(self):
        if (self.kind == "pdu_outlet") != (self.pdu is not None and self.outlet is not None):
            raise ValueError("pdu and outlet are given with, and only with, kind pdu_outlet")
        return self

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema, handler):
        return {
            "title": "Fault",
            "description": "How a cable can be broken.",
            "anyOf": [
                {"enum": ["link_down", "switch_shutdown", "virtual_pull"]},
                {
                    "type": "object",
                    "properties": {"pdu_outlet": {"type": "string", "pattern": r"^[^:]+:[0-9]+$"}},
                    "required": ["pdu_outlet"],
                    "additionalProperties": False,
                },
            ],
        }

    def __str__(self):
        return f"pdu_outlet {self.pdu}:{self.outlet}" if self.kind == "pdu_outlet" else self.kind


class Cable(_Model):
    """A cable between two ports, and the ways laghil may break it."""

    name: Name
    ends: tuple[CableEnd, CableEnd]
    faults: list[Fault] = Field(default_factory=list)
    speed: Optional[Annotated[int, Field(gt=0)]] = None  # Mb/s
    description: Optional[str] = None

    @property
    def a(self) -> PortRef:
        """The first end."""
        return PortRef(*self.ends[0].split(":", 1))

    @property
    def b(self) -> PortRef:
        """The second end."""
        return PortRef(*self.ends[1].split(":", 1))

    @property
    def refs(self) -> tuple[PortRef, PortRef]:
        return (self.a, self.b)

    def other_end(self, node: str, port: str) -> PortRef:
        """The end that is not ``node:port``."""
        here = PortRef(node, port)
        if here == self.a:
            return self.b
        if here == self.b:
            return self.a
        raise ValueError(f"cable {self.name!r} does not end at {here}")

    def touches(self, node: str) -> bool:
        return node in (self.a.node, self.b.node)

    @property
    def fault_kinds(self) -> list[str]:
        return [f.kind for f in self.faults]

    def has_fault(self, kind: str) -> bool:
        return kind in self.fault_kinds


# --------------------------------------------------------------------------
# The lab

class VirtualSettings(_Model):
    """Resources of each guest of the virtual rack."""

    memory_mb: Annotated[int, Field(ge=128)] = 1024
    cpus: Annotated[int, Field(ge=1)] = 1


_SECTIONS = ("hosts", "switches", "pdus", "bmcs")


class Lab(_Model):
    """A whole lab: nodes, cables and queries over them."""

    name: Name
    kind: Literal["virtual", "physical"]
    description: str = ""
    virtual: Optional[VirtualSettings] = None
    defaults: Optional[Defaults] = None
    hosts: dict[NodeName, Host] = Field(default_factory=dict)
    switches: dict[NodeName, Switch] = Field(default_factory=dict)
    pdus: dict[NodeName, Pdu] = Field(default_factory=dict)
    bmcs: dict[NodeName, Bmc] = Field(default_factory=dict)
    cables: list[Cable] = Field(default_factory=list)

    _source: Optional[str] = PrivateAttr(default=None)
    _index: Optional[dict] = PrivateAttr(default=None)

    # ---- validation ------------------------------------------------------

    @model_validator(mode="before")
    @classmethod
    def _apply_defaults(cls, data):
        """Merge ``defaults.management`` into each host's and switch's management."""
        if not isinstance(data, dict):
            return data
        defaults = data.get("defaults")
        mgmt = defaults.get("management") if isinstance(defaults, dict) else None
        if not isinstance(mgmt, dict) or not mgmt:
            return data
        try:
            ManagementDefaults.model_validate(mgmt)
        except ValueError:
            return data  # reported once, at defaults.management, by field validation
        data = dict(data)
        for section in ("hosts", "switches"):
            nodes = data.get(section)
            if not isinstance(nodes, dict):
                continue
            merged = {}
            for name, node in nodes.items():
                if isinstance(node, dict) and isinstance(node.get("management"), dict):
                    base = {k: v for k, v in mgmt.items() if not (k == "jump" and v == name)}
                    node = {**node, "management": {**base, **node["management"]}}
                merged[name] = node
            data[section] = merged
        return data

    @model_validator(mode="after")
    def _cross_checks(self, info: ValidationInfo):
        if info.context and info.context.get("defer_cross_checks"):
            return self
        problems = self.cross_check()
        if problems:
            raise ValueError("; ".join(f"{format_loc(p.loc)}: {p.message}" for p in problems))
        return self

    def cross_check(self) -> list[Problem]:
        """Every whole-lab consistency problem (empty list when the lab is sound)."""
        problems: list[Problem] = []
        add = lambda loc, msg: problems.append(Problem(tuple(loc), msg))  # noqa: E731

        # Node names are unique across hosts, switches, PDUs and BMCs.
        owner: dict[str, str] = {}
        for section in _SECTIONS:
            for name in getattr(self, section):
                if name in owner:
                    add((section, name), f"node name {name!r} is already used in {owner[name]}")
                else:
                    owner[name] = section

        for section in ("hosts", "switches"):
            for name, node in getattr(self, section).items():
                self._check_management(add, section, name, node.management)
        for name, host in self.hosts.items():
            self._check_host(add, name, host)
        for name, sw in self.switches.items():
            if sw.platform in LINUX_SWITCH_PLATFORMS:
                for port in sw.ports:
                    try:
                        check_ifname(port, f"port of {sw.platform} switch")
                    except BadName as e:
                        add(("switches", name, "ports", port), str(e))
        for name, pdu in self.pdus.items():
            for number, outlet in pdu.outlets.items():
                if outlet.feeds is not None and outlet.feeds not in owner:
                    add(("pdus", name, "outlets", number, "feeds"),
                        f"outlet feeds unknown node {outlet.feeds!r}; known nodes: {self._known()}")
        self._check_device_names(add)
        self._check_cables(add)
        if self.kind == "virtual":
            self._check_virtual(add)
        return problems

    def _check_device_names(self, add):
        names = self.device_names
        seen: dict[str, str] = {}
        for field_name in ("bond", "team", "bridge"):
            value = getattr(names, field_name)
            if value in seen:
                add(("defaults", "devices", field_name),
                    f"{value!r} is already the {seen[value]} name: each device needs its own")
            seen.setdefault(value, field_name)
        for section in ("hosts", "switches"):
            for node, spec in getattr(self, section).items():
                for value, field_name in seen.items():
                    if value in spec.ports:
                        add(("defaults", "devices", field_name),
                            f"{value!r} is a port of {node}: laghil's {field_name} needs a "
                            "name of its own")

    @property
    def device_names(self) -> DeviceNames:
        """The names laghil gives the netdevs it makes (``defaults.devices``)."""
        return self.defaults.devices if self.defaults is not None else DeviceNames()

    def _known(self) -> str:
        return ", ".join(self.nodes) or "(none)"

    def _check_management(self, add, section, name, mgmt: Management):
        loc = (section, name, "management", "jump")
        if mgmt.jump is None:
            return
        if mgmt.jump == name:
            add(loc, f"node {name!r} cannot be its own jump host")
        elif mgmt.jump not in self.hosts and mgmt.jump not in self.switches:
            add(loc, f"jump host {mgmt.jump!r} is not a host or switch of this lab; "
                     f"known: {', '.join([*self.hosts, *self.switches])}")
        else:
            chain, hop = [name], mgmt.jump
            while hop is not None and hop != name and hop not in chain:
                chain.append(hop)
                node = self.hosts.get(hop) or self.switches.get(hop)
                hop = node.management.jump if node else None
            order = self.nodes
            if hop == name and name == min(chain, key=order.index):  # report each loop once
                add(loc, f"jump hosts loop: {' -> '.join(chain + [name])}")

    def _check_host(self, add, name, host: Host):
        for i, dev in enumerate(host.rdma):
            for j, netdev in enumerate(dev.netdevs):
                if netdev not in host.ports:
                    add(("hosts", name, "rdma", i, "netdevs", j),
                        f"RDMA device {dev.name!r} netdev {netdev!r} is not a port of "
                        f"{name}; ports: {', '.join(host.ports)}")
        if host.bmc is not None and host.bmc not in self.bmcs:
            add(("hosts", name, "bmc"),
                f"bmc {host.bmc!r} is not a bmc of this lab; bmcs: {', '.join(self.bmcs) or '(none)'}")

    def _node_ports(self, node: str):
        n = self.hosts.get(node) or self.switches.get(node)
        return None if n is None else n.ports

    def _check_cables(self, add):
        names: dict[str, int] = {}
        used: dict[PortRef, str] = {}
        for i, cable in enumerate(self.cables):
            if cable.name in names:
                add(("cables", i, "name"), f"cable name {cable.name!r} is already used by cables[{names[cable.name]}]")
            names.setdefault(cable.name, i)
            for j, ref in enumerate(cable.refs):
                loc = ("cables", i, "ends", j)
                ports = self._node_ports(ref.node)
                if ports is None:
                    where = "not a host or switch" if ref.node in self.nodes else "unknown node"
                    add(loc, f"cable {cable.name!r}: {where} {ref.node!r}; hosts and switches: "
                             f"{', '.join([*self.hosts, *self.switches]) or '(none)'}")
                elif ref.port not in ports:
                    add(loc, f"cable {cable.name!r}: {ref.node} has no port {ref.port!r}; "
                             f"ports: {', '.join(ports)}")
                elif ref in used:
                    add(loc, f"port {ref} is already cabled by {used[ref]!r}")
                else:
                    used[ref] = cable.name
            for j, fault in enumerate(cable.faults):
                self._check_fault(add, ("cables", i, "faults", j), cable, fault)

    def _check_fault(self, add, loc, cable: Cable, fault: Fault):
        if fault.kind == "switch_shutdown":
            if not any(ref.node in self.switches for ref in cable.refs):
                add(loc, f"switch_shutdown needs a switch at one end of cable {cable.name!r}")
        elif fault.kind == "pdu_outlet":
            pdu = self.pdus.get(fault.pdu)
            if pdu is None:
                add(loc, f"pdu_outlet: unknown pdu {fault.pdu!r}; pdus: {', '.join(self.pdus) or '(none)'}")
            elif fault.outlet not in pdu.outlets:
                add(loc, f"pdu_outlet: {fault.pdu} has no outlet {fault.outlet}; "
                         f"outlets: {', '.join(map(str, pdu.outlets)) or '(none)'}")
            elif pdu.outlets[fault.outlet].protected:
                add(loc, f"pdu_outlet: outlet {fault.pdu}:{fault.outlet} is protected and "
                         "may never be switched off")

    def _check_virtual(self, add):
        ssh_ports: dict[int, str] = {}
        for section in ("hosts", "switches"):
            for name, node in getattr(self, section).items():
                mgmt = node.management
                if mgmt.address != VIRTUAL_ADDRESS:
                    add((section, name, "management", "address"),
                        f"a virtual lab is reached on {VIRTUAL_ADDRESS}, not {mgmt.address!r}")
                if mgmt.port in ssh_ports:
                    add((section, name, "management", "port"),
                        f"management port {mgmt.port} is already used by {ssh_ports[mgmt.port]}")
                ssh_ports.setdefault(mgmt.port, name)
                for pname, port in node.ports.items():
                    missing = [f for f in ("mac", "speed") if getattr(port, f) is None]
                    if missing:
                        add((section, name, "ports", pname),
                            f"a virtual lab port needs {' and '.join(missing)} (802.3ad needs a speed)")

    # ---- queries ----------------------------------------------------------

    @property
    def source(self) -> Optional[str]:
        """The file this lab was loaded from (None when built in code)."""
        return self._source

    @property
    def nodes(self) -> list[str]:
        """All node names: hosts, switches, PDUs, BMCs."""
        return [n for section in _SECTIONS for n in getattr(self, section)]

    def node(self, name: str) -> Node:
        """The node called ``name``; UnknownNode if the lab has none."""
        for section in _SECTIONS:
            found = getattr(self, section).get(name)
            if found is not None:
                return found
        raise UnknownNode(f"lab {self.name!r} has no node {name!r}; known nodes: {self._known()}")

    def _ports_index(self) -> dict:
        if self._index is None:
            index = {}
            for cable in self.cables:
                for ref in cable.refs:
                    index.setdefault(ref, cable)
            self._index = index
        return self._index

    def _check_port(self, node: str, port: str):
        ports = getattr(self.node(node), "ports", None) or {}
        if port not in ports:
            raise UnknownPort(f"lab {self.name!r}: node {node!r} has no port {port!r}; "
                              f"ports: {', '.join(ports) or '(none)'}")

    def cable_of(self, node: str, port: str) -> Optional[Cable]:
        """The cable plugged into ``node:port``, or None if the port is not cabled."""
        self._check_port(node, port)
        return self._ports_index().get(PortRef(node, port))

    def far_end(self, node: str, port: str) -> Optional[PortRef]:
        """The port at the other end of ``node:port``'s cable, or None."""
        cable = self.cable_of(node, port)
        return None if cable is None else cable.other_end(node, port)

    def cables_between(self, a: str, b: str) -> list[Cable]:
        """Cables with one end on node ``a`` and the other on node ``b``, in file order."""
        self.node(a), self.node(b)
        return [c for c in self.cables
                if {c.a.node, c.b.node} == {a, b} and (a != b or c.a.node == c.b.node == a)]

    def ports_towards(self, host: str, switch: str) -> list[str]:
        """``host``'s ports whose cable reaches ``switch``, in the host's port order."""
        ports = getattr(self.node(host), "ports", {})
        self.node(switch)
        index = self._ports_index()
        out = []
        for port in ports:
            cable = index.get(PortRef(host, port))
            if cable is not None and cable.other_end(host, port).node == switch:
                out.append(port)
        return out

    def cable(self, name: str) -> Cable:
        """The cable called ``name``; UnknownCable if none."""
        for cable in self.cables:
            if cable.name == name:
                return cable
        raise UnknownCable(f"lab {self.name!r} has no cable {name!r}; cables: "
                           f"{', '.join(c.name for c in self.cables) or '(none)'}")

    def capabilities(self, node: str) -> frozenset[str]:
        """The node's declared capabilities (empty for PDUs and BMCs)."""
        return frozenset(getattr(self.node(node), "capabilities", ()))

    def has_capability(self, node: str, cap: str) -> bool:
        """Whether ``node`` declares ``cap``; a misspelt capability raises ValueError."""
        if cap not in CAPABILITIES:
            raise ValueError(f"unknown capability {cap!r}; allowed: {', '.join(CAPABILITIES)}")
        return cap in self.capabilities(node)

    def ssh_target(self, node_name: str, env: Optional[Mapping[str, str]] = None,
                   _chain: tuple = ()) -> SshTarget:
        """What the transport needs to reach ``node_name`` (jump hosts resolved).

        The password is read from ``env`` (default ``os.environ``) through
        ``management.password_env``. For a virtual lab a missing key_file or
        known_hosts is the virtual rack's own, under :func:`vlab_state_dir`.
        """
        env = os.environ if env is None else env
        node = self.node(node_name)
        if not isinstance(node, (Host, Switch)):
            raise LabError(self._where(), [f"node {node_name!r} is a {type(node).__name__.lower()}, "
                                           "not reachable over SSH"])
        if node_name in _chain:
            raise LabError(self._where(), [f"jump hosts loop: {' -> '.join(_chain + (node_name,))}"])
        m = node.management
        key_file, known_hosts = m.key_file, m.known_hosts
        if self.kind == "virtual":
            state = vlab_state_dir(self.name, env)
            key_file = key_file or str(state / "id_ed25519")
            known_hosts = known_hosts or str(state / "known_hosts")
        password = None
        if m.password_env:
            password = env.get(m.password_env) or None
            if password is None and not key_file:
                raise LabError(self._where(), [
                    f"node {node_name!r}: environment variable {m.password_env} "
                    "(management.password_env) is not set and no key_file is given"])
        jump = None
        if m.jump:
            jump = self.ssh_target(m.jump, env, _chain + (node_name,))
        return SshTarget(
            name=node_name,
            address=m.address,
            port=m.port,
            user=m.user,
            key_file=os.path.expanduser(key_file) if key_file else None,
            password=password,
            known_hosts=os.path.expanduser(known_hosts) if known_hosts else None,
            accept_unknown_host_keys=m.accept_unknown_host_keys,
            connect_timeout=m.connect_timeout,
            command_timeout=m.command_timeout,
            sudo=m.sudo,
            jump=jump,
        )

    def _where(self) -> str:
        return self._source or f"lab {self.name!r}"
