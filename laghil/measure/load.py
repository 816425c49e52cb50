"""Background load on a LAG during failover trials: fixed-rate UDP flows
(iperf3 -u) at a share of the LAG's usable capacity, bounded in time, ended by
the ids of the processes laghil started.

    plan = load_plan(capacity_bps=40e6, share=0.9, members=["eth1", "eth2"],
                     policy="layer3+4", packet=pair.packet())
    with BackgroundLoad(sender, receiver, "192.168.201.2", plan, duration_s=60,
                        defer=defer) as load:
        ...                     # failover trials
    load.result                 # {"offered_bps", "sent_bps", "received_bps", "lost_pct"}

The load is a share of what the LAG still carries with one member out (the
lowest member rate x (members - 1): one member's rate in a pair), less the
failover probe's own traffic, so that after the failover the survivors still
carry load and probe: the trial then measures the failover under load, not a
congested link (a 90% load over two members would be 180% of the survivor).
The flows are split evenly over the members where the kernel's hash is known
(:func:`laghil.lag_hash.spread_client_ports`); elsewhere the split is the
LAG's and is said so. The sender's member counters over the trials show the
load each member really carried (``member_bps``).
"""

import re
import secrets
import time
from dataclasses import dataclass, field

from ..errors import LaghilError
from ..journal import Undo, node_record
from ..lag_hash import POLICIES, spread_client_ports
from ..names import q
from ..parsing import parser
from .throughput import counter_rates, read_counters

BASE_PORT = 5401
FLOWS_PER_MEMBER = 2


class LoadError(LaghilError):
    pass


@dataclass
class LoadPlan:
    capacity_bps: float             # what the LAG carries with one member out
    share: float
    flows: int
    client_ports: list = None       # one per flow, or None (the LAG's own split)
    basis: str = ""
    probe_bps: float = 0.0          # the failover probe's own traffic, inside the share

    @property
    def rate_bps(self):
        return self.capacity_bps * self.share - self.probe_bps

    def describe(self):
        return (f"{self.rate_bps / 1e6:.3g} Mbit/s UDP background load (with the probe's "
                f"{self.probe_bps / 1e6:.2g} Mbit/s: {self.share:.0%} of the "
                f"{self.capacity_bps / 1e6:.3g} Mbit/s the LAG carries with one member out, "
                f"{self.basis}), {self.flows} flows"
                + (", split evenly by the hash oracle" if self.client_ports
                   else ", split by the LAG"))


def usable_capacity(member_bps):
    """What the LAG still carries with one member out: the lowest member rate x
    (members - 1), one member's rate for a single member."""
    rates = list(member_bps.values())
    n = max(1, len(rates) - 1)
    return min(rates) * n, f"{n} member{'s' if n > 1 else ''} left of {len(rates)}"


def load_plan(placement, member_bps, share, policy=None, packet=None, probe_bps=0.0,
              base_port=BASE_PORT):
    """The background load: ``share`` of :func:`usable_capacity` less the
    probe's ``probe_bps``; LoadError when the probe alone takes that share."""
    cap, why = usable_capacity(member_bps)
    members = list(member_bps)
    flows = FLOWS_PER_MEMBER * len(members)
    ports = None
    if placement == "hash" and policy in POLICIES and packet:
        ports = spread_client_ports(policy, members, [base_port + i for i in range(flows)],
                                    packet)
    rates = sorted({round(v / 1e6, 3) for v in member_bps.values()})
    if cap * share <= probe_bps:
        raise LoadError(f"background load: {share:.0%} of {cap / 1e6:.3g} Mbit/s leaves nothing "
                        f"beside the probe's {probe_bps / 1e6:.3g} Mbit/s")
    return LoadPlan(cap, float(share), flows, ports,
                    f"{why} at {'/'.join(f'{r:g}' for r in rates)} Mbit/s", probe_bps)


_PID = re.compile(r"^\d+$")


@parser("the load generators' pids")
def parse_pids(text):
    """Lines of ``echo $!`` -> [pid]; LoadError on anything else."""
    pids = []
    for ln in text.split():
        if not _PID.fullmatch(ln):
            raise LoadError(f"background load: expected process ids, got {ln!r}")
        pids.append(int(ln))
    return pids


@dataclass
class BackgroundLoad:
    sender: object
    receiver: object
    dst: str
    plan: LoadPlan
    duration_s: float
    members: list
    defer: object = None
    base_port: int = BASE_PORT
    pids: dict = field(default_factory=dict)        # node name -> [pid] laghil started
    result: dict = None

    @property
    def tag(self):
        if not getattr(self, "_tag", None):
            self._tag = f"laghil-load-{secrets.token_hex(4)}"
        return self._tag

    def stop_undo(self):
        """:meth:`stop` with its journal records: its generators (tagged
        LAGHIL_TAG=<tag> in their environment) ended on both nodes."""
        return Undo(self.stop, [node_record(n, "kill_tagged", tag=self.tag,
                                            what=f"end background load {self.tag}")
                                for n in {x.name: x for x in (self.sender, self.receiver)}.values()],
                    f"stop background load {self.tag}")

    def _files(self):
        return [self.sender.path(f"laghil-load-c{self.base_port + i}.json")
                for i in range(self.plan.flows)]

    def start(self):
        if self.duration_s <= 0 or self.duration_s > 900:
            raise LoadError(f"background load of {self.duration_s} s: 0 < duration <= 900 s")
        d, bound = int(self.duration_s), int(self.duration_s + 30)
        self.sender.workdir(verify=True)    # a node power cycled by an earlier test lost it
        ports = [self.base_port + i for i in range(self.plan.flows)]
        if self.defer is not None:
            self.defer(self.stop_undo())
        self.pids[self.receiver.name] = parse_pids(self.receiver.run("; ".join(
            f"LAGHIL_TAG={self.tag} timeout {bound} iperf3 -s -1 -p {p} >/dev/null 2>&1 & echo $!"
            for p in ports)).stdout)
        time.sleep(1.0)
        per = self.plan.rate_bps / self.plan.flows
        cports = self.plan.client_ports or [None] * len(ports)
        self.pids[self.sender.name] = parse_pids(self.sender.run("; ".join(
            f"LAGHIL_TAG={self.tag} timeout {bound} iperf3 -c {q(self.dst)} -u -b {int(per)} "
            f"-l 1200 -t {d} -p {p} -J"
            + (f" --cport {int(c)}" if c else "") + f" > {f} 2>&1 & echo $!"
            for p, c, f in zip(ports, cports, self._files()))).stdout)
        self._c0 = (time.monotonic(), read_counters(self.sender, self.members))
        return self

    def stop(self):
        """End the load (the processes laghil started, by id; idempotent) and
        read what it did: member rates from the sender's counters since start."""
        if not self.pids:
            return self.result
        c1 = read_counters(self.sender, self.members)
        for node in (self.sender, self.receiver):
            pids = self.pids.pop(node.name, [])
            if pids:
                node.run("kill " + " ".join(str(p) for p in pids) + " 2>/dev/null; true",
                         check=False)
        self.sender.run("rm -f " + " ".join(self._files()), check=False)
        rates = counter_rates(self._c0[1], c1)
        self.result = {"offered_bps": self.plan.rate_bps,
                       "member_bps": {m: r["tx_bps"] for m, r in rates.items()},
                       "seconds": time.monotonic() - self._c0[0]}
        return self.result

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False
