"""IB device bonding's building blocks (suites/ib_bond), no pytest in them:
the LAG that brings a declared aggregate about, the pair of aggregates a test
runs over, a RoCE v2 GID's index, each member's share of the tx packets, a
kernel CPU list."""

import time
from dataclasses import dataclass

from ..drivers.roce import inventory
from ..measure.throughput import read_counters

# the LAG that brings an aggregate about, by its declared mode: (kind, mode)
STAND_IN_LAG = {"active-active": ("bond", "802.3ad"), "active-passive": ("team", "activebackup")}
DRIVER_LAG = {"active-active": ("bond", "802.3ad"), "active-passive": ("bond", "active-backup")}
# all of a one-active LAG's RDMA traffic is on its active member: what else a
# member sends in the window (an ARP, an IPv6 neighbour probe) stays under 5%
ONE_MEMBER_SHARE = 0.95
WINDOW_S = 1.0


@dataclass
class AggregatePair:
    lag: object         # the LagPair under the aggregates
    devs: dict          # host -> the aggregate RDMA device found on the LAG
    decl: dict          # host -> RdmaAggregate (the lab file's)
    kind: str           # the LAG: bond or team
    mode: str           # its mode or runner

    @property
    def what(self):
        d = self.decl[self.lag.a.node.name]
        return ("stand-in: Soft-RoCE over a " + f"{self.kind} {self.mode}" if d.stand_in
                else f"{d.provider} aggregate over a {self.kind} {self.mode}")


def roce_v2_gid_index(node, dev, ip):
    """The index of the RoCE v2 GID of address ``ip`` on ``dev``'s port 1 of ``node``."""
    port = inventory(node)[dev].ports[1]
    for g in port.gids:
        if g.type == "RoCE v2" and g.ip == ip:
            return g.index
    raise AssertionError(f"{node.name}: {dev} has no RoCE v2 GID for {ip}: "
                         f"{[(g.index, g.type, g.ip) for g in port.gids]}")


def tx_shares(node, members, window_s=WINDOW_S):
    """Each member's share of the tx packets of all ``members`` over ``window_s``."""
    c0 = read_counters(node, members)[1]
    time.sleep(window_s)
    c1 = read_counters(node, members)[1]
    d = {m: c1[m]["tx_packets"] - c0[m]["tx_packets"] for m in members}
    total = sum(d.values())
    return {m: (v / total if total else 0.0) for m, v in d.items()}, d


def cpulist(text):
    """A kernel CPU list ("0-2,5") -> the set of CPUs."""
    out = set()
    for part in text.strip().split(","):
        if part:
            lo, _, hi = part.partition("-")
            out.update(range(int(lo), int(hi or lo) + 1))
    return out
