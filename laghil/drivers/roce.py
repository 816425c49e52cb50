"""RoCE over a LAG: the RDMA device that a bond (or team) presents, and its checks.

Inventory (pure parser over one shell command's output): every RDMA device
with its provider (the kernel driver of its PCI function, ``rxe``/``siw`` for
the software providers), node type, ports (state, physical state, link
layer, netdev from ``rdma -j link``) and the populated GID table entries
(index, GID, type, netdev) from sysfs.

:class:`RoceLag` sets RoCE up over a LAG device through the provider a lab
declares (:mod:`laghil.drivers.rdma`, one module per provider): a software one
(rxe, the virtual rack) is added on the LAG by laghil, its removal registered
first; a hardware one makes its bond device itself when the LAG takes its PFs
(``mlx5_bond_<n>``, ``hns_bond_<n>``, ``bnxt_re_bond<n>``): laghil refuses a
LAG the provider would not take, naming the rule, and waits for the device.

:func:`roce_lag_problems` states what must hold for either: exactly one RDMA
device bound to the LAG, with one port, ACTIVE; no device left on a member
netdev; RoCE v2 GIDs for every address of the LAG, all on the LAG netdev.
"""

import ipaddress
import json
from dataclasses import dataclass, field

from ..names import check_ifname, q, qif
from ..parsing import parser
from ..wait import wait_until
from .rdma import RdmaError, device_provider
from .rdma import provider as rdma_provider

# the modes the RoCE LAG suites run (those a hardware RoCE LAG takes: mlx5 lag.c)
ROCE_LAG_MODES = ("active-backup", "balance-xor", "802.3ad")
ROCE_LAG_RUNNERS = ("activebackup", "loadbalance", "lacp")        # the same over a team

INVENTORY_CMD = (
    "echo @@links; (command -v rdma >/dev/null && rdma -j link show 2>/dev/null) || echo '[]'; "
    "for d in /sys/class/infiniband/*; do [ -d \"$d\" ] || continue; n=${d##*/}; "
    "echo \"@@dev $n\"; read t < \"$d/node_type\"; echo \"node_type $t\"; "
    "[ -r \"$d/parent\" ] && { read p < \"$d/parent\"; echo \"parent $p\"; }; "
    "[ -e \"$d/device/driver\" ] && echo \"driver $(basename \"$(readlink \"$d/device/driver\")\")\"; "
    "for p in \"$d\"/ports/*; do [ -d \"$p\" ] || continue; "
    "read s < \"$p/state\"; read ps < \"$p/phys_state\"; read ll < \"$p/link_layer\"; "
    "echo \"@@port ${p##*/}|$s|$ps|$ll\"; "
    "for g in \"$p\"/gids/*; do read v < \"$g\" 2>/dev/null || continue; "
    "case $v in 0000:0000:0000:0000:0000:0000:0000:0000) continue;; esac; i=${g##*/}; "
    "ty=; nd=; read ty < \"$p/gid_attrs/types/$i\" 2>/dev/null; "
    "read nd < \"$p/gid_attrs/ndevs/$i\" 2>/dev/null; echo \"gid $i|$v|$ty|$nd\"; done; done; done"
)


class RoceError(RdmaError):
    pass


@dataclass(frozen=True)
class Gid:
    index: int
    gid: str
    type: str          # "RoCE v2", "RoCE v1", "IB/RoCE v1"
    ndev: str

    @property
    def ip(self):
        """The address the GID encodes (IPv4-mapped -> IPv4), or None for a
        non-IP GID."""
        try:
            a = ipaddress.IPv6Address(bytes.fromhex(self.gid.replace(":", "")))
        except ValueError:
            return None
        return str(a.ipv4_mapped or a)


@dataclass
class RdmaPort:
    num: int
    state: str
    phys_state: str
    link_layer: str
    netdev: str = None
    gids: list = field(default_factory=list)

    def roce_v2_ips(self):
        return {g.ip for g in self.gids if g.type == "RoCE v2"}


@dataclass
class RdmaDev:
    name: str
    node_type: str = ""
    provider: str = ""
    parent: str = None
    ports: dict = field(default_factory=dict)

    @property
    def netdevs(self):
        return {p.netdev for p in self.ports.values() if p.netdev}


@parser('the RDMA inventory (rdma -j, ibv_devinfo)')
def parse_inventory(text):
    """Output of :data:`INVENTORY_CMD` -> {device name: :class:`RdmaDev`}."""
    devs, cur, port, links = {}, None, None, []
    state = "start"
    buf = []
    for line in text.splitlines():
        if line == "@@links":
            state = "links"
            continue
        if line.startswith("@@dev "):
            if state == "links":
                links = json.loads("".join(buf) or "[]")
            state = "dev"
            cur = RdmaDev(line[6:].strip())
            devs[cur.name] = cur
            port = None
            continue
        if state == "links":
            buf.append(line)
            continue
        if cur is None:
            continue
        key, _, val = line.partition(" ")
        if key == "node_type":
            cur.node_type = val.strip()
        elif key == "parent":
            cur.parent = val.strip()
        elif key == "driver":
            cur.provider = val.strip()
        elif key == "@@port":
            num, st, ps, ll = (val.split("|") + ["", "", "", ""])[:4]
            port = RdmaPort(int(num), st.strip(), ps.strip(), ll.strip())
            cur.ports[port.num] = port
        elif key == "gid" and port is not None:
            idx, gid, ty, nd = (val.split("|") + ["", "", "", ""])[:4]
            port.gids.append(Gid(int(idx), gid.strip(), ty.strip(), nd.strip()))
    if state == "links":
        links = json.loads("".join(buf) or "[]")
    for d in devs.values():
        if not d.provider:
            d.provider = device_provider(None, d.node_type, d.parent)
    for link in links:
        d = devs.get(link.get("ifname"))
        if d is None:
            continue
        p = d.ports.get(int(link.get("port", 1)))
        if p is not None:
            p.netdev = link.get("netdev")
    return devs


def inventory(node):
    return parse_inventory(node.run(INVENTORY_CMD, timeout=60).stdout)


def addresses(node, netdev):
    """The netdev's global and link-local addresses (no prefix length)."""
    check_ifname(netdev)
    r = node.run(f"ip -j addr show dev {q(netdev)}")
    data = json.loads(r.stdout or "[]")
    return {a["local"] for d in data for a in d.get("addr_info", [])
            if a.get("family") in ("inet", "inet6")}


def roce_lag_problems(devs, lag, members, lag_addrs):
    """What is wrong with RoCE over ``lag`` in ``devs`` (an inventory); empty
    when it holds. ``members``: the LAG's lower netdevs; ``lag_addrs``: the
    LAG's IP addresses, each must have a RoCE v2 GID on the LAG."""
    out = []
    on_lag = [d for d in devs.values() if lag in d.netdevs]
    if len(on_lag) != 1:
        out.append(f"{len(on_lag)} RDMA devices bound to {lag} "
                   f"({[d.name for d in on_lag]}), want exactly one")
    for d in on_lag:
        if len(d.ports) != 1:
            out.append(f"{d.name}: {len(d.ports)} ports, want one")
        for p in d.ports.values():
            if "ACTIVE" not in p.state:
                out.append(f"{d.name}/{p.num}: state {p.state!r}, want ACTIVE")
            if p.link_layer and p.link_layer != "Ethernet":
                out.append(f"{d.name}/{p.num}: link layer {p.link_layer!r}, want Ethernet")
            v2 = p.roce_v2_ips()
            missing = sorted(a for a in lag_addrs if a not in v2)
            if missing:
                out.append(f"{d.name}/{p.num}: no RoCE v2 GID for {lag} addresses {missing} "
                           f"(v2 GIDs: {sorted(x for x in v2 if x)})")
            stray = sorted({g.ndev for g in p.gids if g.ndev and g.ndev != lag})
            if stray:
                out.append(f"{d.name}/{p.num}: GIDs on other netdevs {stray}, want only {lag}")
    exposed = sorted(d.name for d in devs.values() if d.netdevs & set(members))
    if exposed:
        out.append(f"member netdevs {sorted(members)} still expose RDMA devices {exposed}")
    return out


class RoceLag:
    """RoCE on LAG device ``lag`` (a Bond or Team) with RDMA provider
    ``provider`` (a name, laghil.drivers.rdma). ``create(defer=defer)`` then
    ``device`` is the RDMA device's name."""

    def __init__(self, lag, provider):
        try:
            self.rdma = rdma_provider(provider)
        except RdmaError as e:
            raise RoceError(f"{lag.node.name}: RoCE LAG: {e}") from None
        self.lag, self.node, self.provider = lag, lag.node, provider
        self.device = None

    @property
    def name(self):
        return self.lag.name

    def create(self, *, defer, timeout=15.0):
        if self.rdma.software:
            try:
                self.rdma.add(self.node, self.lag.name, defer)
            except RdmaError as e:
                raise RoceError(str(e)) from None
        else:
            lag = dict(hash_policy=getattr(self.lag, "options", {}).get("xmit_hash_policy"),
                       members=len(self.lag.members))
            why = self.rdma.refusal(self.lag.kind, self.lag.mode, **lag)
            if not why and self.rdma.refuses_with_vfs:     # read only where it matters
                why = self.rdma.refusal(self.lag.kind, self.lag.mode, **lag,
                                        vfs=self.member_vfs())
            if why:
                raise RoceError(f"{self.node.name}: {why}")
        self.device = self.wait(timeout)
        if not self.rdma.aggregate_re(self.lag.name).fullmatch(self.device):
            raise RoceError(f"{self.node.name}: the RDMA device on {self.lag.name} is "
                            f"{self.device}, not a {self.provider} LAG device "
                            f"({self.rdma.example})")
        return self.device

    def member_vfs(self):
        """How many VFs the LAG's members have (sriov_numvfs; a member without
        SR-IOV counts none)."""
        files = " ".join(f"/sys/class/net/{qif(m)}/device/sriov_numvfs" for m in self.lag.members)
        out = self.node.run(f"cat {files} 2>/dev/null; true", check=False).stdout.split()
        return sum(int(x) for x in out if x.isdigit())

    def wait(self, timeout=15.0):
        """The one RDMA device bound to the LAG, ACTIVE (polled up to ``timeout``)."""
        found = []

        def one_active():
            devs = inventory(self.node)
            on = [d for d in devs.values() if self.lag.name in d.netdevs
                  and any("ACTIVE" in p.state for p in d.ports.values())]
            if len(on) == 1:
                found.append(on[0].name)
                return None
            return {d.name: sorted(d.netdevs) for d in devs.values()}
        wait_until(one_active, timeout=timeout, interval=0.5, error=RoceError,
                   what=f"{self.node.name}: a single ACTIVE RDMA device on {self.lag.name}")
        return found[-1]

    def problems(self):
        devs = inventory(self.node)
        return roce_lag_problems(devs, self.lag.name, self.lag.members,
                                 addresses(self.node, self.lag.name)), devs
