"""One guest of the virtual rack as planned from the lab file: its NICs (the
lab's ports, each a UDP socket pair to its cable's far end), its management
NIC, NUMA nodes and memory (:class:`GuestPlan`), and the QEMU arguments of
its NUMA nodes, its management set-up script, and what its serial console
says of its kernel."""

from __future__ import annotations

from dataclasses import dataclass, field

MGMT_NIC = "mgmt0"               # a guest's management NIC (SSH; a twin's: to the jump guest)
MGMT_BRIDGE = "lgmgmt"           # a twin's jump guest: its bridge to the guests behind it

def nic_id(port):
    """QEMU device id of the NIC that backs a lab port."""
    return f"nic-{port}".replace("/", "_")


@dataclass
class Nic:
    port: str
    mac: str
    speed: int | None = None
    local_udp: int | None = None   # None: an uncabled port (no peer, link down)
    peer_udp: int | None = None
    model: str = "virtio-net"      # or "igb": SR-IOV PF (Intel 82576), PCIe
    numa_node: int | None = None   # behind a PCIe expander bus of that NUMA node


@dataclass
class GuestPlan:
    name: str
    ssh_port: int | None           # None: reached through the jump guest (a twin's)
    mgmt_mac: str
    nics: list = field(default_factory=list)
    numa_nodes: int = 1
    memory_mb: int | None = None   # None: the lab's virtual.memory_mb
    # a twin's management network inside the rack: a guest behind the jump host
    # has its management NIC cabled to the jump guest (mgmt_nic) and keeps its
    # lab address; the jump guest bridges one NIC per such guest (mgmt_ports)
    mgmt_nic: Nic | None = None
    address: str | None = None
    mgmt_ports: list = field(default_factory=list)
    peers: list = field(default_factory=list)       # the addresses behind the jump


def numa_args(nodes, cpus, mem_mb):
    """QEMU arguments for ``nodes`` NUMA nodes (none for one): the memory split
    evenly, the ``cpus`` vCPUs (at least one per node: the caller gives the
    guest that many, since a process is pinned to each node in turn) dealt round
    robin, each node's memory a RAM backend of its own."""
    if nodes <= 1:
        return []
    size = mem_mb // nodes
    out = []
    for n in range(nodes):
        vcpus = [c for c in range(cpus) if c % nodes == n]
        out += ["-object", f"memory-backend-ram,id=mem{n},size={size}M",
                "-numa", f"node,nodeid={n},memdev=mem{n}," + ",".join(f"cpus={c}" for c in vcpus)]
    return out


def _split_end(end):
    node, port = end.split(":", 1)
    return node, port


def mgmt_script(plan, jump_ip):
    """Stage 2's management set-up of a twin's guest (iproute2): behind the
    jump host, the lab's address on mgmt0 and a route to the jump guest
    (``jump_ip``); on the jump guest, a bridge over its NICs to the others and a
    route to each. Nothing for the other guests (QEMU's user network, set up in
    stage 1)."""
    out = ["#!/bin/sh", "set -e"]
    if plan.mgmt_nic is not None:
        out += [f"ip addr add {plan.address}/32 dev {MGMT_NIC}",
                f"ip link set {MGMT_NIC} up",
                f"ip route add {jump_ip}/32 dev {MGMT_NIC}"]
    if plan.mgmt_ports:
        out += [f"ip link add {MGMT_BRIDGE} type bridge",
                f"ip link set {MGMT_BRIDGE} up",
                f"ip addr add {jump_ip}/32 dev {MGMT_BRIDGE}"]
        for nic in plan.mgmt_ports:
            out += [f"ip link set {nic.port} master {MGMT_BRIDGE}", f"ip link set {nic.port} up"]
        out += [f"ip route add {a}/32 dev {MGMT_BRIDGE}" for a in plan.peers]
    return "\n".join(out) + "\n"


def console_marks(consoles):
    """{guest: bytes of its serial console so far} (``consoles``: {guest: path})."""
    out = {}
    for name, path in consoles.items():
        try:
            out[name] = path.stat().st_size
        except OSError:
            out[name] = 0
    return out


def console_faults(consoles, marks):
    """{guest: [kernel fault records]} its serial console printed after
    ``marks`` (:func:`console_marks`): a guest kernel's own trouble (a wedged
    virtio queue, a soft lockup, a BUG), which is the rack's, not the device
    under test's. The console carries the kernel's errors (loglevel 3)."""
    from ..kevents import kernel_fault_lines
    out = {}
    for name, path in consoles.items():
        try:
            with open(path, "rb") as f:
                f.seek(marks.get(name, 0))
                text = f.read(1 << 20).decode("utf-8", "replace")
        except OSError:
            continue
        lines = kernel_fault_lines(text)
        if lines:
            out[name] = lines
    return out
