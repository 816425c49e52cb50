"""The lab file's cross checks: what needs the whole lab (node names unique
across sections, jump hosts that resolve, cable ends that exist and are cabled
once, faults that are possible, laghil's device names free, virtual-rack
rules). Every problem is reported, each with its location."""

from __future__ import annotations

from ..errors import BadName
from ..names import check_ifname
from typing import TYPE_CHECKING

from ..drivers.rdma import STAND_IN
from .fields import LINUX_SWITCH_PLATFORMS, VIRTUAL_ADDRESS, PortRef, Problem

if TYPE_CHECKING:
    from .model import Cable, Fault, Host, Management

_SECTIONS = ("hosts", "switches", "pdus", "bmcs")

def cross_check(lab) -> list[Problem]:
    """Every whole-lab consistency problem (empty list when the lab is sound)."""
    problems: list[Problem] = []
    add = lambda loc, msg: problems.append(Problem(tuple(loc), msg))  # noqa: E731

    # Node names are unique across hosts, switches, PDUs and BMCs.
    owner: dict[str, str] = {}
    for section in _SECTIONS:
        for name in getattr(lab, section):
            if name in owner:
                add((section, name), f"node name {name!r} is already used in {owner[name]}")
            else:
                owner[name] = section

    for section in ("hosts", "switches"):
        for name, node in getattr(lab, section).items():
            _check_management(lab, add, section, name, node.management)
    for name, host in lab.hosts.items():
        _check_host(lab, add, name, host)
    for name, sw in lab.switches.items():
        if sw.platform in LINUX_SWITCH_PLATFORMS:
            for port in sw.ports:
                try:
                    check_ifname(port, f"port of {sw.platform} switch")
                except BadName as e:
                    add(("switches", name, "ports", port), str(e))
    for name, pdu in lab.pdus.items():
        for number, outlet in pdu.outlets.items():
            if outlet.feeds is not None and outlet.feeds not in owner:
                add(("pdus", name, "outlets", number, "feeds"),
                    f"outlet feeds unknown node {outlet.feeds!r}; known nodes: {lab._known()}")
    _check_device_names(lab, add)
    _check_cables(lab, add)
    if lab.kind == "virtual":
        _check_virtual(lab, add)
    return problems

def _check_device_names(lab, add):
    names = lab.device_names
    seen: dict[str, str] = {}
    for field_name in ("bond", "team", "bridge"):
        value = getattr(names, field_name)
        if value in seen:
            add(("defaults", "devices", field_name),
                f"{value!r} is already the {seen[value]} name: each device needs its own")
        seen.setdefault(value, field_name)
    for section in ("hosts", "switches"):
        for node, spec in getattr(lab, section).items():
            for value, field_name in seen.items():
                if value in spec.ports:
                    add(("defaults", "devices", field_name),
                        f"{value!r} is a port of {node}: laghil's {field_name} needs a "
                        "name of its own")

def _check_management(lab, add, section, name, mgmt: Management):
    loc = (section, name, "management", "jump")
    if mgmt.jump is None:
        return
    if mgmt.jump == name:
        add(loc, f"node {name!r} cannot be its own jump host")
    elif mgmt.jump not in lab.hosts and mgmt.jump not in lab.switches:
        add(loc, f"jump host {mgmt.jump!r} is not a host or switch of this lab; "
                 f"known: {', '.join([*lab.hosts, *lab.switches])}")
    else:
        chain, hop = [name], mgmt.jump
        while hop is not None and hop != name and hop not in chain:
            chain.append(hop)
            node = lab.hosts.get(hop) or lab.switches.get(hop)
            hop = node.management.jump if node else None
        order = lab.nodes
        if hop == name and name == min(chain, key=order.index):  # report each loop once
            add(loc, f"jump hosts loop: {' -> '.join(chain + [name])}")

def _check_host(lab, add, name, host: Host):
    nodes = host.numa_nodes or 1
    for pname, port in host.ports.items():
        if port.numa_node is not None and port.numa_node >= nodes:
            add(("hosts", name, "ports", pname, "numa_node"),
                f"port {pname} on NUMA node {port.numa_node}: the host has {nodes} "
                "(numa_nodes), nodes 0.." + str(nodes - 1))
    for i, dev in enumerate(host.rdma):
        for j, netdev in enumerate(dev.netdevs):
            if netdev not in host.ports:
                add(("hosts", name, "rdma", i, "netdevs", j),
                    f"RDMA device {dev.name!r} netdev {netdev!r} is not a port of "
                    f"{name}; ports: {', '.join(host.ports)}")
    for i, agg in enumerate(host.rdma_aggregates):
        for j, m in enumerate(agg.members):
            if m.netdev not in host.ports:
                add(("hosts", name, "rdma_aggregates", i, "members", j, "netdev"),
                    f"aggregate {agg.name!r} member netdev {m.netdev!r} is not a port of "
                    f"{name}; ports: {', '.join(host.ports)}")
        if agg.stand_in and agg.provider != STAND_IN:
            add(("hosts", name, "rdma_aggregates", i, "stand_in"),
                f"aggregate {agg.name!r}: a stand-in is Soft-RoCE over a bond (provider "
                f"{STAND_IN}), not {agg.provider}")
        elif agg.stand_in:
            # suites/ib_bond makes it as rxe_<LAG>: a bond active-active, a team active-passive
            lag = lab.device_names.bond if agg.mode == "active-active" else lab.device_names.team
            if agg.name != f"rxe_{lag}":
                add(("hosts", name, "rdma_aggregates", i, "name"),
                    f"stand-in {agg.name!r} ({agg.mode}) is made as rxe_{lag} (Soft-RoCE on the "
                    f"{'bond' if agg.mode == 'active-active' else 'team'} {lag})")
    if host.bmc is not None and host.bmc not in lab.bmcs:
        add(("hosts", name, "bmc"),
            f"bmc {host.bmc!r} is not a bmc of this lab; bmcs: {', '.join(lab.bmcs) or '(none)'}")

def _node_ports(lab, node: str):
    n = lab.hosts.get(node) or lab.switches.get(node)
    return None if n is None else n.ports

def _check_cables(lab, add):
    names: dict[str, int] = {}
    used: dict[PortRef, str] = {}
    for i, cable in enumerate(lab.cables):
        if cable.name in names:
            add(("cables", i, "name"), f"cable name {cable.name!r} is already used by cables[{names[cable.name]}]")
        names.setdefault(cable.name, i)
        for j, ref in enumerate(cable.refs):
            loc = ("cables", i, "ends", j)
            ports = _node_ports(lab, ref.node)
            if ports is None:
                where = "not a host or switch" if ref.node in lab.nodes else "unknown node"
                add(loc, f"cable {cable.name!r}: {where} {ref.node!r}; hosts and switches: "
                         f"{', '.join([*lab.hosts, *lab.switches]) or '(none)'}")
            elif ref.port not in ports:
                add(loc, f"cable {cable.name!r}: {ref.node} has no port {ref.port!r}; "
                         f"ports: {', '.join(ports)}")
            elif ref in used:
                add(loc, f"port {ref} is already cabled by {used[ref]!r}")
            else:
                used[ref] = cable.name
        for j, fault in enumerate(cable.faults):
            _check_fault(lab, add, ("cables", i, "faults", j), cable, fault)

def _check_fault(lab, add, loc, cable: Cable, fault: Fault):
    if fault.kind == "switch_shutdown":
        if not any(ref.node in lab.switches for ref in cable.refs):
            add(loc, f"switch_shutdown needs a switch at one end of cable {cable.name!r}")
    elif fault.kind == "pdu_outlet":
        pdu = lab.pdus.get(fault.pdu)
        if pdu is None:
            add(loc, f"pdu_outlet: unknown pdu {fault.pdu!r}; pdus: {', '.join(lab.pdus) or '(none)'}")
        elif fault.outlet not in pdu.outlets:
            add(loc, f"pdu_outlet: {fault.pdu} has no outlet {fault.outlet}; "
                     f"outlets: {', '.join(map(str, pdu.outlets)) or '(none)'}")
        elif pdu.outlets[fault.outlet].protected:
            add(loc, f"pdu_outlet: outlet {fault.pdu}:{fault.outlet} is protected and "
                     "may never be switched off")

# what a switch guest of the virtual rack can run (laghil.vlab: ovs.sh for Open vSwitch)
VIRTUAL_SWITCH_PLATFORMS = ("linux", "ovs")


def _check_virtual(lab, add):
    ssh_ports: dict[int, str] = {}
    for section in ("hosts", "switches"):
        for name, node in getattr(lab, section).items():
            mgmt = node.management
            if mgmt.address != VIRTUAL_ADDRESS:
                add((section, name, "management", "address"),
                    f"a virtual lab is reached on {VIRTUAL_ADDRESS}, not {mgmt.address!r}")
            if mgmt.port in ssh_ports:
                add((section, name, "management", "port"),
                    f"management port {mgmt.port} is already used by {ssh_ports[mgmt.port]}")
            ssh_ports.setdefault(mgmt.port, name)
            if section == "switches" and node.platform not in VIRTUAL_SWITCH_PLATFORMS:
                add((section, name, "platform"),
                    f"a virtual lab's switch is a guest running {' or '.join(VIRTUAL_SWITCH_PLATFORMS)}"
                    f", not {node.platform!r} (a NOS switch's virtual stand-in is its twin: "
                    "--lab twin:<lab>)")
            for pname, port in node.ports.items():
                missing = [f for f in ("mac", "speed") if getattr(port, f) is None]
                if missing:
                    add((section, name, "ports", pname),
                        f"a virtual lab port needs {' and '.join(missing)} (802.3ad needs a speed)")

# ---- queries ----------------------------------------------------------
