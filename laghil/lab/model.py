"""The lab file model: what a rack holds and how its nodes are wired.

(The pydantic model of every section of a lab file and the
lab's queries; the cables in cables.py; field types, cross checks and SSH
access are in fields.py, checks.py and access.py.)

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

from typing import Annotated, Literal, Mapping, Optional, Union

from pydantic import AfterValidator, Field, PrivateAttr, ValidationInfo, \
    model_validator

from ..errors import UnknownNode
from ..names import check_ifname
from ..transport.target import SshTarget
from .fields import (CAPABILITIES, FAULT_KINDS, LINUX_SWITCH_PLATFORMS, PDU_MODELS, RDMA_PROVIDERS,  # noqa: F401
                     SWITCH_PLATFORMS, VIRTUAL_ADDRESS, Capability, Platform, CableEnd, EnvName, HwAddr, IfName, Mac, Name, NodeName,
                     Pci, PortRef, Problem, Seconds, SwitchPortName, TcpPort, UnknownCable,
                     UnknownPort, _Model, _wrap, format_loc)
from .access import vlab_state_dir  # noqa: F401  (re-exported)
from .cables import Cable, Fault  # noqa: F401  (part of the model, re-exported)


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
    # a node that went away mid-run (power-cycled, rebooted) is waited for this long
    # before the tests that need it fail; 0: never waited for
    boot_timeout: Annotated[float, Field(ge=0)] = 300.0
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
    boot_timeout: Optional[Annotated[float, Field(ge=0)]] = None
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
    netns: IfNamePrefix = "lgns"        # network namespaces laghil makes (a tenant's VFs)


class Defaults(_Model):
    management: Optional[ManagementDefaults] = None
    devices: DeviceNames = Field(default_factory=DeviceNames)


class Port(_Model):
    """A data port (netdev on a host, front-panel port on a switch)."""

    mac: Optional[HwAddr] = None    # 6 octets; 20 (IPoIB) with link_layer infiniband
    pci: Optional[Pci] = None
    speed: Optional[Annotated[int, Field(gt=0)]] = None  # Mb/s
    driver: Optional[str] = None
    description: Optional[str] = None
    # the virtual rack's NIC model for this port: "igb" (an Intel 82576 with
    # SR-IOV VFs, behind a PCIe root port) or the host's nic_model (virtio-net)
    model: Optional[Literal["virtio-net", "igb"]] = None
    # an SR-IOV PF laghil may make VFs on (suites/sriov_lag); its cables are left
    # out of the back-to-back pairs of the other suites
    sriov: bool = False
    # an IPoIB port (InfiniBand link layer): its address is 20 octets, and a bond
    # takes it in active-backup only (laghil refuses the rest before any command)
    link_layer: Literal["ethernet", "infiniband"] = "ethernet"
    # the NUMA node of the port's PCI device (the virtual rack places it there:
    # a PCIe expander bus of that node); None: not declared
    numa_node: Optional[Annotated[int, Field(ge=0)]] = None

    @model_validator(mode="after")
    def _address_fits_link_layer(self):
        if self.mac is not None:
            octets = self.mac.count(":") + 1
            want = 20 if self.link_layer == "infiniband" else 6
            if octets != want:
                raise ValueError(f"mac {self.mac!r}: {octets} octets, a {self.link_layer} port's "
                                 f"address has {want}")
        return self


class RdmaDevice(_Model):
    """An RDMA device (ibv_devices name) and the netdevs it sits on."""

    name: Name
    port_count: Annotated[int, Field(ge=1)] = 1
    netdevs: list[IfName] = Field(default_factory=list)


class AggregateMember(_Model):
    """A member of an aggregate RDMA device: its netdev and, where it has one of
    its own outside the aggregate, its RDMA device."""

    netdev: IfName
    device: Optional[Name] = None


class RdmaAggregate(_Model):
    """An RDMA device that aggregates others (IB device bonding: mlx5_bond_<n>,
    hns_bond_*, bnxt_re_bond*, or the virtual rack's stand-in, Soft-RoCE over a
    bond), declared with what it claims; suites/ib_bond proves each claim and
    reports each one it could not test. Identified by attributes (the netdev its
    port sits on), never by name alone: udev may rename it."""

    name: Name                                  # what applications open (-d NAME)
    provider: Literal[RDMA_PROVIDERS]  # type: ignore[valid-type]  # laghil.drivers.rdma
    members: Annotated[list[AggregateMember], Field(min_length=2)]
    mode: Literal["active-active", "active-passive"]
    members_hidden: bool = True                 # member devices gone while aggregated
    link_layer: Literal["ethernet", "infiniband"] = "ethernet"
    affinity: Optional[Literal["numa", "device"]] = None   # the placement it claims
    sriov: bool = False                         # VFs of the aggregate get its HA
    stand_in: bool = False                      # the virtual rack's rxe-over-bond


class Host(_Model):
    """A server under test."""

    management: Management
    ports: Annotated[dict[IfName, Port], Field(min_length=1)]
    nic_model: Optional[str] = None
    rdma: list[RdmaDevice] = Field(default_factory=list)
    rdma_aggregates: list[RdmaAggregate] = Field(default_factory=list)
    capabilities: list[Capability] = Field(default_factory=list)
    numa_nodes: Optional[Annotated[int, Field(ge=1)]] = None
    bmc: Optional[NodeName] = None


class Switch(_Model):
    """A switch; port names are the switch CLI's (``Eth1/1``, ``swp1``...)."""

    platform: Platform  # one of SWITCH_PLATFORMS (a driver in laghil.drivers.switch)
    management: Management
    ports: Annotated[dict[SwitchPortName, Port], Field(min_length=1)]
    capabilities: list[Capability] = Field(default_factory=list)
    # a NOS switch (no bridge netdev): the VLAN laghil makes as a test's untagged
    # L2 domain (the hosts' ports or partner LAGs its access members); one that no
    # one else uses on this switch: laghil refuses when it exists already
    l2_vlan: Optional[Annotated[int, Field(ge=2, le=4094)]] = None


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
# The lab

class VirtualSettings(_Model):
    """Resources of each guest of the virtual rack."""

    memory_mb: Annotated[int, Field(ge=128)] = 1024
    cpus: Annotated[int, Field(ge=1)] = 1
    # the first UDP port on 127.0.0.1 of the rack's cables (None: 41000, a twin
    # 43000): racks with ranges of their own can be up at once
    udp_base: Annotated[int, Field(ge=1024, le=65000)] | None = None


class TwinInfo(_Model):
    """What makes a lab the virtual twin of a physical one (laghil.lab.twin):
    built by laghil from the physical file (``--lab twin:NAME``), never written."""

    of: Name                                    # the physical lab's name
    source: str = ""                            # its file
    stand_ins: list[str] = Field(default_factory=list)  # what the twin is instead, each said
    port_map: dict[str, dict[str, str]] = Field(default_factory=dict)  # switch: NOS -> netdev
    jump_address: str = "169.254.77.1"          # the jump guest on the rack's management net


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
    # set by laghil.lab.twin only: a lab file cannot make itself a twin
    _twin: Optional[TwinInfo] = PrivateAttr(default=None)
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
        from .checks import cross_check
        return cross_check(self)

    def _known(self) -> str:
        return ", ".join(self.nodes) or "(none)"

    @property
    def twin(self) -> Optional[TwinInfo]:
        """What makes this lab the virtual twin of a physical one (None: it is not)."""
        return self._twin

    @property
    def rack_backed(self) -> bool:
        """Is the lab built by the virtual rack (the embedded rack, or the twin
        of a physical lab, which is otherwise run as the physical lab is)?"""
        return self.kind == "virtual" or self.twin is not None

    @property
    def device_names(self) -> DeviceNames:
        """The names laghil gives the netdevs it makes (``defaults.devices``)."""
        return self.defaults.devices if self.defaults is not None else DeviceNames()

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

    def ssh_target(self, node_name: str, env: Optional[Mapping[str, str]] = None) -> SshTarget:
        """What the transport needs to reach ``node_name``: see :func:`access.ssh_target`."""
        from .access import ssh_target
        return ssh_target(self, node_name, env)

    def _where(self) -> str:
        return self._source or f"lab {self.name!r}"
