"""How a LAG spreads flows over its members: probe flows on distinct 5-tuples,
and the sender's per-member transmit counters read before and after (with the
receiver's members' rx counters and both hosts' UDP counters, which place a
lost packet: :meth:`Distribution.where_lost`).

    d = measure_distribution(lag, receiver, "192.168.201.2", flows=8, rate_pps=300)
    d.shares()        # {member: tx packets / probe packets sent}

The shares are of the probe's packets (a broadcast bond puts every packet on
every member: shares of 1.0 each). Other traffic on the members during the run
(LACPDUs, ARP: a few packets a second) is small against the probe's thousands;
the suites' share tolerance covers it.
"""

from dataclasses import dataclass, field

from ..errors import LaghilError
from ..parsing import parser
from .probe import Probe
from .throughput import read_counters


@parser('/proc/net/snmp')
def parse_udp_snmp(text):
    """``cat /proc/net/snmp`` -> {counter: value} of its ``Udp:`` lines (the
    header line names them, the next gives the values)."""
    rows = [ln.split()[1:] for ln in (text or "").splitlines() if ln.startswith("Udp:")]
    if len(rows) < 2 or len(rows[0]) != len(rows[1]):
        raise LaghilError(f"/proc/net/snmp: no Udp: header and values in {text[:80]!r}")
    return {k: int(v) for k, v in zip(rows[0], rows[1])}


@dataclass
class Distribution:
    members: dict           # member -> tx packets delta on the sender
    sent: int               # probe packets sent, all flows
    flows: list             # [(sport, dport)] of the probe flows
    res: object             # ProbeResult
    # where packets went, read around the run: the receiver's members' rx
    # packets, and each host's UDP counters' deltas (RcvbufErrors, SndbufErrors...)
    rx_members: dict = field(default_factory=dict)
    udp_rx: dict = field(default_factory=dict)
    udp_tx: dict = field(default_factory=dict)

    def shares(self):
        return {m: (n / self.sent if self.sent else 0.0) for m, n in self.members.items()}

    def per_flow_packets(self):
        return [f["tx_count"] for f in self.res.flows]

    def received(self):
        return sum(f["rx_count"] for f in self.res.flows)

    def where_lost(self):
        """Where the probe's lost packets went, as the hosts' counters say: the
        sender's members' tx and the receiver's members' rx (all their traffic,
        a few LACPDUs and ARPs besides the probe's), the sending UDP stack's
        SndbufErrors and the receiving one's RcvbufErrors (a receiver that did
        not read in time), with what that places the loss at."""
        lost = self.sent - self.received()
        tx = sum(self.members.values())
        parts = [f"probe sent {self.sent}, received {self.received()} (lost {lost})",
                 f"sender's members transmitted {tx} {self.members}"]
        if self.rx_members:
            parts.append(f"receiver's members received {sum(self.rx_members.values())} "
                         f"{self.rx_members}")
        rcvbuf = self.udp_rx.get("RcvbufErrors", 0)
        sndbuf = self.udp_tx.get("SndbufErrors", 0)
        if self.udp_rx:
            parts.append(f"receiver's UDP RcvbufErrors +{rcvbuf}, InErrors "
                         f"+{self.udp_rx.get('InErrors', 0)}")
        if self.udp_tx:
            parts.append(f"sender's UDP SndbufErrors +{sndbuf}")
        if lost <= 0:
            where = "nothing lost"
        elif rcvbuf >= lost:
            where = ("lost in the receiving host's socket buffer (the probe's receiver did "
                     "not read in time), above the LAG")
        elif sndbuf >= lost or tx < self.sent:
            where = "lost in the sending host, before its members' drivers"
        elif self.rx_members and sum(self.rx_members.values()) < self.sent:
            where = ("lost between the sender's members and the receiver's: the LAG, the "
                     "switch or the wire")
        else:
            where = "not placed by these counters"
        return f"{where}: " + "; ".join(parts)


# Source ports base + 501 + i against destination ports base + i: with an odd
# offset, layer3+4 spreads consecutive flows over two members (with 500, the
# kernel's hash puts all eight on one: sport ^ dport is then the same parity).
SRC_OFFSET = 501


def probe_flows(flows, base_port=47000, src_base_port=None):
    """[(sport, dport)] of a probe's flows."""
    src = base_port + SRC_OFFSET if src_base_port is None else src_base_port
    return [(src + i, base_port + i) for i in range(flows)]


def _udp(node):
    return parse_udp_snmp(node.run("cat /proc/net/snmp").stdout)


def _delta(before, after):
    return {k: after[k] - before.get(k, 0) for k in after}


def measure_distribution(lag, receiver, dst_ip, flows=8, rate_pps=300, duration_s=3.0,
                         base_port=47000, src_base_port=None, receiver_ports=()):
    """Probe ``flows`` flows from ``lag``'s node to ``dst_ip`` and count each
    member's transmitted packets over the run; ``receiver_ports``: the
    receiver's members, whose rx packets are counted too (with both hosts'
    UDP counters: :meth:`Distribution.where_lost`)."""
    node, members = lag.node, list(lag.members)
    src_base = base_port + SRC_OFFSET if src_base_port is None else src_base_port
    receiver_ports = list(receiver_ports)
    rx_before = read_counters(receiver, receiver_ports) if receiver_ports else None
    udp_before = (_udp(node), _udp(receiver))
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
    rx = {}
    if rx_before is not None:
        rx_after = read_counters(receiver, receiver_ports)
        rx = {p: rx_after[1][p]["rx_packets"] - rx_before[1][p]["rx_packets"]
              for p in receiver_ports}
    udp_tx, udp_rx = (_delta(b, _udp(n)) for b, n in zip(udp_before, (node, receiver)))
    sent = sum(f["tx_count"] for f in res.flows)
    return Distribution(deltas, sent, probe_flows(flows, base_port, src_base), res,
                        rx, udp_rx, udp_tx)
