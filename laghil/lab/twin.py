"""The virtual twin of a physical lab file: ``--lab twin:rack3``.

The twin is the physical lab as the virtual rack can build it, one QEMU guest
per host and switch: the same host and switch names, the hosts' port names and
MACs (the guests' NICs are named by MAC at boot), the same cables with the same
fault methods (no ``virtual_pull`` unless the file declares it), the jump host
as a small guest that every other session goes through, and the PDU's outlet
numbering and protected outlets on the rack's SNMP PDU. It stays a lab of kind
``physical``: the suites take the code paths a physical lab takes (gating,
pulls, the switch's port shutdown), and the rack acts only where a device would
(a switch port shutdown drops the host end's carrier, as a PHY does).

What the twin cannot be is replaced by a stand-in, each named in
``Lab.twin.stand_ins`` (the report header, results.json): mlx5 RoCE by
Soft-RoCE on the LAG, SR-IOV PFs by QEMU igb PFs, a NOS switch by a Linux
switch guest with its port names mapped (``Eth1/1`` -> ``eth1-1``), a vendor
PDU by laghil's SNMP agent speaking the rPDU2 MIB; the capabilities the
stand-ins lack are dropped, so their tests skip naming them.

Management: the twin's management network is inside the rack. Nodes the file
reaches through a jump host keep their addresses (IPv4) and the jump: the jump
guest is the only one the controller reaches (127.0.0.1 by hostfwd), and it
reaches the others over guest-to-guest links of its own, bridged. A node the
file reaches directly gets 127.0.0.1 and a port of its own.
"""

from __future__ import annotations

import ipaddress
import re

from ..drivers import rdma
from ..errors import BadName, LabError
from ..names import check_ifname

PREFIX = "twin:"
# what one 2-core machine runs: guests (TCG) and their memory
MAX_GUESTS = 6
MAX_MEMORY_MB = 8192
GUEST_MB, JUMP_MB = 1024, 512
SSH_BASE = 22300            # 127.0.0.1 ports of the nodes reached directly
PDU_PORT = 16162            # the twin's SNMP PDU agent (the virtual rack's is 16161)
# the jump guest's own address on the rack's management bridge (link-local: it
# never leaves the rack, and no lab file names it)
JUMP_INTERNAL = "169.254.77.1"
# capabilities no stand-in has: dropped from the twin, so their tests skip naming them
# (a hardware RDMA provider among them: rxe stands in for it)
DROPPED = ("lag_offload", "vf_link_state", "sriov_lag", *(rdma.provider(p).capability for p in rdma.HARDWARE))
IGB_SPEED = 1000            # what QEMU's igb reports (Mb/s)


def is_twin_name(name) -> bool:
    return isinstance(name, str) and name.startswith(PREFIX)


def switch_port_name(port: str, index: int) -> str:
    """A Linux netdev name for a NOS port name (``Eth1/1`` -> ``eth1-1``,
    ``Ethernet1/2/3`` -> ``ethernet1-2-3``); ``swp<index>`` when that is not a
    valid name."""
    name = re.sub(r"[^A-Za-z0-9_.:@-]", "-", port).lower()
    try:
        return check_ifname(name)
    except BadName:
        return f"swp{index}"


def _refuse(phys, problems):
    raise LabError(f"{phys.source or phys.name} (twin)", problems)


def twin_of(phys):
    """The twin (a :class:`~laghil.lab.model.Lab`) of physical lab ``phys``;
    LabError naming the file and field when it cannot be built here."""
    from .model import Lab, TwinInfo
    if phys.kind != "physical":
        _refuse(phys, [f"kind: {phys.kind}: only a physical lab has a twin (the virtual rack "
                       "is its own)"])
    nodes = {**phys.hosts, **phys.switches}
    jumped = {n for n, s in nodes.items() if s.management.jump}
    jumps = {nodes[n].management.jump for n in jumped}
    mem = sum(JUMP_MB if n in jumps else GUEST_MB for n in nodes)
    problems = []
    if len(nodes) > MAX_GUESTS or mem > MAX_MEMORY_MB:
        problems.append(f"hosts, switches: {len(nodes)} guests and {mem} MB: a twin on one "
                        f"machine holds at most {MAX_GUESTS} guests and {MAX_MEMORY_MB} MB")
    for n in sorted(jumped):
        m = nodes[n].management
        section = "hosts" if n in phys.hosts else "switches"
        if nodes[m.jump].management.jump:
            problems.append(f"{section}.{n}.management.jump: {m.jump} is itself behind a jump "
                            "host: a twin has one jump host level")
        try:
            if ipaddress.ip_address(m.address).version != 4:
                raise ValueError
        except ValueError:
            problems.append(f"{section}.{n}.management.address: {m.address!r}: a node behind a "
                            "jump host keeps its address in the twin, which must be an IPv4 "
                            "address")
    if problems:
        _refuse(phys, problems)

    stand_ins, dropped, port_map = [], {}, {}
    data = phys.model_dump(mode="json", exclude_none=True)
    data["name"] = f"twin-{phys.name}"
    data["description"] = f"virtual twin of {phys.name}: {phys.description}".strip(": ")
    data["virtual"] = {"memory_mb": GUEST_MB, "cpus": 1}
    data.pop("bmcs", None)
    if phys.bmcs:
        stand_ins.append(f"BMCs {', '.join(phys.bmcs)}: not in the twin (power through the "
                         "PDU only)")
    devices = phys.device_names
    ssh_port = SSH_BASE

    def mgmt(name, spec):
        nonlocal ssh_port
        m = spec.management
        out = {"user": "root", "connect_timeout": max(m.connect_timeout, 20.0),
               "command_timeout": max(m.command_timeout, 60.0),
               "boot_timeout": min(m.boot_timeout, 240.0)}
        if m.jump:
            out.update(address=m.address, port=22, jump=m.jump)
        else:
            ssh_port += 1
            out.update(address="127.0.0.1", port=ssh_port)
        return out
    managed_as = sorted({f"{s.management.user}{' via sudo' if s.management.sudo else ''}"
                         for s in nodes.values()})
    stand_ins.append(f"management: {', '.join(managed_as)} over the lab's keys -> root over "
                     "the rack's own key; the jump host and the management addresses kept, "
                     f"on a network inside the rack (the jump guest {JUMP_INTERNAL})")

    data.get("defaults", {}).pop("management", None)
    roce, igb, macs = [], [], {}
    for name, spec in phys.hosts.items():
        h = data["hosts"][name]
        h["management"] = mgmt(name, spec)
        h.pop("bmc", None)
        h.pop("rdma", None)
        caps = list(spec.capabilities)
        gone = [c for c in caps if c in DROPPED]
        if gone:
            dropped[name] = gone
        caps = [c for c in caps if c not in DROPPED]
        hw = rdma.provider_for(spec.capabilities)
        if hw is not None and not hw.software and "roce_lag" in caps \
                and rdma.PROVIDERS[rdma.STAND_IN].capability not in caps:
            caps.append(rdma.PROVIDERS[rdma.STAND_IN].capability)
            roce.append((name, hw))
        h["capabilities"] = caps
        for i, (pname, port) in enumerate(spec.ports.items()):
            p = h["ports"][pname]
            p.pop("pci", None)
            p.pop("driver", None)
            if port.mac is None:
                p["mac"] = f"52:54:00:7a:{len(macs) // 256:02x}:{len(macs) % 256:02x}"
            macs[(name, pname)] = p["mac"]
            if port.sriov and "sriov" in caps:
                p["model"] = "igb"
                p["speed"] = IGB_SPEED
                igb.append(f"{name}:{pname}")
            elif port.speed is None:
                p["speed"] = 10000
        aggs = []
        for a in spec.rdma_aggregates:
            d = a.model_dump(mode="json", exclude_none=True)
            if a.provider != rdma.STAND_IN:
                kind = devices.bond if a.mode == "active-active" else devices.team
                stand_ins.append(f"{name}: RDMA aggregate {a.name} ({a.provider}, {a.mode}) -> "
                                 f"Soft-RoCE rxe_{kind} over laghil's "
                                 f"{'802.3ad bond' if a.mode == 'active-active' else 'team'}")
                d.update(name=f"rxe_{kind}", provider=rdma.STAND_IN, stand_in=True)
                d["members"] = [{"netdev": m.netdev} for m in a.members]
            aggs.append(d)
        h["rdma_aggregates"] = aggs
    for hw in dict.fromkeys(p for _, p in roce):
        stand_ins.append(f"{', '.join(n for n, p in roce if p is hw)}: {hw.name} RoCE LAG "
                         f"({hw.example} made by the driver) -> Soft-RoCE "
                         f"({rdma.STAND_IN}) added on the LAG by laghil")
    if igb:
        stand_ins.append(f"SR-IOV PFs {', '.join(igb)} -> QEMU igb PFs (Intel 82576, "
                         f"{IGB_SPEED} Mb/s, no e-switch)")
    renamed = {}
    for name, spec in phys.switches.items():
        s = data["switches"][name]
        s["management"] = mgmt(name, spec)
        s["capabilities"] = [c for c in spec.capabilities if c not in DROPPED]
        gone = [c for c in spec.capabilities if c in DROPPED]
        if gone:
            dropped[name] = gone
        if spec.platform != "linux":
            s["platform"] = "linux"
            m = {p: switch_port_name(p, i + 1) for i, p in enumerate(spec.ports)}
            if len(set(m.values())) != len(m):
                m = {p: f"swp{i + 1}" for i, p in enumerate(spec.ports)}
            port_map[name] = m
            s["ports"] = {m[p]: v for p, v in s["ports"].items()}
            renamed.update({f"{name}:{p}": f"{name}:{q}" for p, q in m.items()})
            stand_ins.append(f"{name}: {spec.platform} switch -> a Linux switch guest (bridge "
                             "and bonding); ports " + ", ".join(f"{p} -> {q}"
                                                                for p, q in m.items()))
        for i, (pname, port) in enumerate(s["ports"].items()):
            port.pop("pci", None)
            port.pop("driver", None)
            if "mac" not in port:
                port["mac"] = f"52:54:00:7b:{len(macs) // 256:02x}:{len(macs) % 256:02x}"
            macs[(name, pname)] = port["mac"]
    # a cable's two ends at one speed (802.3ad aggregates ports of one speed)
    for c in data["cables"]:
        c["ends"] = [renamed.get(e, e) for e in c["ends"]]
        (na, pa), (nb, pb) = (e.split(":", 1) for e in c["ends"])
        ends = [data["hosts" if n in phys.hosts else "switches"][n]["ports"][p]
                for n, p in ((na, pa), (nb, pb))]
        speed = min(e.get("speed") or 10000 for e in ends)
        for e in ends:
            e["speed"] = speed
    for pname, pdu in phys.pdus.items():
        d = data["pdus"][pname]
        stand_ins.append(f"{pname}: {pdu.model} at {pdu.address} -> laghil's SNMP agent "
                         f"(rPDU2 OIDs) on 127.0.0.1:{PDU_PORT}, outlets and protection as "
                         "in the file")
        d.update(model="virtual", address="127.0.0.1", port=PDU_PORT)
    if dropped:
        stand_ins.append("capabilities no stand-in has, dropped: " + "; ".join(
            f"{n}: {', '.join(c)}" for n, c in dropped.items()))
    try:
        lab = Lab.model_validate(data)
    except ValueError as e:
        _refuse(phys, [f"the twin of this lab is not a valid lab: {e}"])
    lab._source = phys.source
    lab._twin = TwinInfo(of=phys.name, source=phys.source or "", stand_ins=stand_ins,
                         port_map=port_map, jump_address=JUMP_INTERNAL)
    return lab
