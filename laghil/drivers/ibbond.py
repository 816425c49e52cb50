"""IB device bonding: an aggregate RDMA device as the lab declares it
(:class:`laghil.lab.model.RdmaAggregate`), found by attributes, and used by the
stock verbs tools with no extra flag (``ibv_devinfo``, ``ibv_rc_pingpong``,
``ibv_ud_pingpong``, ``ib_send_lat``, ``rping``).

Names change (rdma-core's udev rule renames devices), so the aggregate is the
one RDMA device whose port sits on the LAG netdev over the declared members; its
name is then checked against the declaration and the difference reported.
"""

import re
from dataclasses import dataclass, field

from ..errors import LaghilError
from ..names import check_name, q
from ..parsing import parser


class IbBondError(LaghilError):
    pass


@dataclass(frozen=True)
class DevinfoGid:
    index: int
    gid: str                   # as printed: fe80::... or ::ffff:a.b.c.d
    type: str                  # "RoCE v1" | "RoCE v2" | "" (InfiniBand: no type)


@dataclass
class DevinfoPort:
    num: int
    state: str = ""            # "PORT_ACTIVE"
    link_layer: str = ""       # "Ethernet" | "InfiniBand"
    active_mtu: int | None = None
    port_lid: int | None = None     # InfiniBand: the SM-assigned LID (0 on RoCE)
    gids: list = field(default_factory=list)    # ibv_devinfo -v: [DevinfoGid]

    def roce_v2_gids(self):
        return [g for g in self.gids if g.type == "RoCE v2"]


@dataclass
class Devinfo:
    hca_id: str
    phys_port_cnt: int = 0
    transport: str = ""
    ports: dict = field(default_factory=dict)
    vendor_id: str = ""


_GID = re.compile(r"^GID\[\s*(\d+)\]:\s*(\S+?)(?:,\s*(.+))?$")


@parser("ibv_devinfo")
def parse_ibv_devinfo(text):
    """``ibv_devinfo [-v] [-d DEV]`` -> {hca_id: Devinfo}; with ``-v`` each
    port's GID table too (``GID[  1]:  fe80::..., RoCE v2``)."""
    devs, cur, port = {}, None, None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or ":" not in line:
            continue
        g = _GID.match(line)
        if g and port is not None:
            port.gids.append(DevinfoGid(int(g[1]), g[2], (g[3] or "").strip()))
            continue
        key, _, val = (x.strip() for x in line.partition(":"))
        if key == "hca_id":
            cur = devs[val] = Devinfo(val)
            port = None
        elif cur is None:
            continue
        elif key == "transport":
            cur.transport = val
        elif key == "phys_port_cnt":
            cur.phys_port_cnt = int(val)
        elif key == "vendor_id" and port is None:
            cur.vendor_id = val
        elif key == "port":
            port = cur.ports[int(val)] = DevinfoPort(int(val))
        elif port is not None and key == "state":
            port.state = val.split()[0]
        elif port is not None and key == "link_layer":
            port.link_layer = val
        elif port is not None and key == "active_mtu":
            port.active_mtu = int(val.split()[0])
        elif port is not None and key == "port_lid":
            port.port_lid = int(val.split()[0])
    if not devs:
        raise IbBondError(f"no hca_id in ibv_devinfo output: {text.strip()[:200]!r}")
    return devs


_RDMA_LINK = re.compile(r"^link (\S+)/(\d+)\s+(.*)$")


@parser("rdma link")
def parse_rdma_link(text):
    """``rdma link show`` (text) -> [{"ifname", "port", "state", "physical_state",
    "netdev"}], the shape of ``rdma -j link``'s objects."""
    out = []
    for line in text.splitlines():
        m = _RDMA_LINK.match(line.strip())
        if not m:
            continue
        words = m[3].split()
        kv = dict(zip(words[::2], words[1::2]))
        out.append({"ifname": m[1], "port": int(m[2]), "state": kv.get("state", ""),
                    "physical_state": kv.get("physical_state", ""), "netdev": kv.get("netdev")})
    if not out and text.strip():
        raise IbBondError(f"no 'link <dev>/<port>' line in rdma link output: {text.strip()[:200]!r}")
    return out


def find_aggregate(devs, lag):
    """The one RDMA device of an inventory (``laghil.drivers.roce.parse_inventory``)
    whose port sits on the LAG netdev ``lag``: by ``rdma link``'s netdev, else by
    every GID of the port being on ``lag`` (a provider that reports no netdev).
    By attributes, never by name (udev renames). IbBondError names what was seen."""
    check_name(lag, "LAG netdev")
    on = sorted(d.name for d in devs.values() if lag in d.netdevs)
    if not on:
        on = sorted(d.name for d in devs.values()
                    if any(p.gids and all(g.ndev == lag for g in p.gids) for p in d.ports.values()))
    if len(on) != 1:
        seen = {d.name: sorted(d.netdevs) for d in devs.values()}
        raise IbBondError(f"{len(on)} RDMA devices on {lag} ({on or 'none'}); devices and their "
                          f"netdevs: {seen}")
    return on[0]


def numa_node_command(netdev):
    """Shell text printing the NUMA node of ``netdev``'s PCI device: its
    ``device`` link is the PCI function (a NIC) or a child of it (virtio-net:
    virtio<N> under the PCI device); -1 when the platform gives none."""
    d = f"/sys/class/net/{check_name(netdev, 'netdev')}/device"
    return (f"d={d}; [ -e \"$d/numa_node\" ] || d=$d/..; cat \"$d/numa_node\" 2>/dev/null "
            "|| echo -1")


def aggregate_problems(info, declared):
    """What ``ibv_devinfo -d <aggregate>`` shows against the declaration: one
    device, one port, ACTIVE, the declared link layer."""
    out = []
    if len(info) != 1:
        out.append(f"ibv_devinfo -d {declared.name} listed {len(info)} devices: {sorted(info)}")
    dev = info.get(declared.name) or next(iter(info.values()))
    if dev.phys_port_cnt != 1 or len(dev.ports) != 1:
        out.append(f"{dev.hca_id}: {dev.phys_port_cnt} ports (an aggregate shows one)")
    for p in dev.ports.values():
        if p.state != "PORT_ACTIVE":
            out.append(f"{dev.hca_id} port {p.num}: {p.state or 'no state'}, not PORT_ACTIVE")
        want = {"ethernet": "Ethernet", "infiniband": "InfiniBand"}[declared.link_layer]
        if p.link_layer != want:
            out.append(f"{dev.hca_id} port {p.num}: link layer {p.link_layer}, declared {want}")
    return out


# ---- the stock tools, server and client ---------------------------------------------
TOOLS = ("ibv_rc_pingpong", "ibv_ud_pingpong", "ib_send_lat", "rping")


def tool_commands(tool, dev, gid_index, server_ip, iters=100, port=None):
    """(server, client) command lines of a stock verbs tool between two hosts,
    unmodified: the aggregate named with ``-d`` as a user would, nothing else
    laghil-specific. Bounded by ``timeout``. rping takes no device: rdma_cm
    picks it by the address (the aggregate's)."""
    check_name(dev, "RDMA device")
    g, n, ip = int(gid_index), int(iters), q(server_ip)
    if tool in ("ibv_rc_pingpong", "ibv_ud_pingpong"):
        p = f" -p {int(port)}" if port else ""
        # UD: one message per MTU (rxe over a 1500-byte bond: 1024)
        size = " -s 512" if tool == "ibv_ud_pingpong" else ""
        base = f"{tool} -d {q(dev)} -g {g} -n {n}{size}{p}"
        return f"timeout 60 {base}", f"timeout 60 {base} {ip}"
    if tool == "ib_send_lat":
        p = f" -p {int(port)}" if port else ""
        base = f"ib_send_lat -d {q(dev)} -x {g} -n {n}{p}"
        return f"timeout 60 {base}", f"timeout 60 {base} {ip}"
    if tool == "rping":
        return (f"timeout 60 rping -s -a {ip} -C {n} -v",
                f"timeout 60 rping -c -a {ip} -C {n} -v")
    raise IbBondError(f"no such stock tool in laghil's list: {tool!r} ({', '.join(TOOLS)})")


_PINGPONG = re.compile(r"(\d+) iters in ([\d.]+) seconds = ([\d.]+) usec/iter")


@parser("a stock verbs tool")
def parse_tool_output(text, tool):
    """What a stock tool's client printed -> {"iters", "usec"} (pingpong: its
    "N iters in S seconds = U usec/iter" line; ib_send_lat: the t_avg column;
    rping -v: the count of ping lines)."""
    if tool in ("ibv_rc_pingpong", "ibv_ud_pingpong"):
        m = _PINGPONG.search(text)
        if not m:
            raise IbBondError(f"{tool}: no 'iters in ... usec/iter' line")
        return {"iters": int(m[1]), "usec": float(m[3])}
    if tool == "ib_send_lat":
        for line in text.splitlines():
            cols = line.split()
            if len(cols) >= 7 and cols[0].isdigit() and cols[1].isdigit():
                return {"iters": int(cols[1]), "usec": float(cols[5])}
        raise IbBondError("ib_send_lat: no result row (#bytes #iterations t_min ...)")
    if tool == "rping":
        n = sum(1 for line in text.splitlines() if line.startswith("ping data:"))
        if not n:
            raise IbBondError("rping: no 'ping data:' line")
        return {"iters": n, "usec": None}
    raise IbBondError(f"unknown tool {tool!r}")
