"""How a LAG spreads flows over its members: probe flows on distinct 5-tuples,
and the sender's per-member transmit counters read before and after.

    d = measure_distribution(lag, receiver, "192.168.201.2", flows=8, rate_pps=300)
    d.shares()        # {member: tx packets / probe packets sent}

The shares are of the probe's packets (a broadcast bond puts every packet on
every member: shares of 1.0 each). Other traffic on the members during the run
(LACPDUs, ARP: a few packets a second) is small against the probe's thousands;
the suites' share tolerance covers it.
"""

from dataclasses import dataclass

from .probe import Probe
from .throughput import read_counters


@dataclass
class Distribution:
    members: dict           # member -> tx packets delta on the sender
    sent: int               # probe packets sent, all flows
    flows: list             # [(sport, dport)] of the probe flows
    res: object             # ProbeResult

    def shares(self):
        return {m: (n / self.sent if self.sent else 0.0) for m, n in self.members.items()}

    def per_flow_packets(self):
        return [f["tx_count"] for f in self.res.flows]


# Source ports base + 501 + i against destination ports base + i: with an odd
# offset, layer3+4 spreads consecutive flows over two members (with 500, the
# kernel's hash puts all eight on one: sport ^ dport is then the same parity).
SRC_OFFSET = 501


def probe_flows(flows, base_port=47000, src_base_port=None):
    """[(sport, dport)] of a probe's flows."""
    src = base_port + SRC_OFFSET if src_base_port is None else src_base_port
    return [(src + i, base_port + i) for i in range(flows)]


def measure_distribution(lag, receiver, dst_ip, flows=8, rate_pps=300, duration_s=3.0,
                         base_port=47000, src_base_port=None):
    """Probe ``flows`` flows from ``lag``'s node to ``dst_ip`` and count each
    member's transmitted packets over the run."""
    node, members = lag.node, list(lag.members)
    src_base = base_port + SRC_OFFSET if src_base_port is None else src_base_port
    before = read_counters(node, members)
    probe = Probe(node, receiver, dst_ip, flows=flows, rate_pps=rate_pps,
                  duration_s=duration_s, base_port=base_port,
                  src_base_port=src_base)
    try:
        res = probe.run()
    finally:
        probe.stop()
    after = read_counters(node, members)
    deltas = {m: after[1][m]["tx_packets"] - before[1][m]["tx_packets"] for m in members}
    sent = sum(f["tx_count"] for f in res.flows)
    return Distribution(deltas, sent, probe_flows(flows, base_port, src_base), res)
