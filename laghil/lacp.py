"""LACP on the wire and in the kernel: LACPDU captures and the partner timeout.

* :func:`capture_lacpdus` runs tcpdump on a node's member port for a bounded time
  and returns the pcap bytes; :func:`parse_lacpdus` (pure, scapy's
  ``scapy.contrib.lacp``) turns them into :class:`Lacpdu` records, and
  :func:`periods` gives the intervals between one sender's PDUs (802.1AX: fast
  periodic 1 s, slow 30 s).
* :func:`partner_timeout` drops the partner's LACPDUs on a member (tc ingress,
  its undo registered first) and times, on the node's own clock, how long after
  the last LACPDU the kernel accepted the partner is declared out of sync
  (802.1AX short timeout: 3 s). tcpdump sees the dropped PDUs (taps run before
  tc ingress), so the last accepted one is the last seen before the drop rule.
"""

import base64
import json
import secrets
from dataclasses import dataclass

from .errors import LaghilError
from .journal import node_undo
from .names import q, qif
from .parsing import parser

ETH_P_SLOW = 0x8809
SYNC_BIT = 0x08

STATE_BITS = ("activity", "timeout", "aggregation", "synchronization", "collecting",
              "distributing", "defaulted", "expired")

# A port that is collecting and distributing in a synchronized aggregation,
# active LACP: activity, aggregation, synchronization, collecting, distributing,
# plus the timeout bit (short timeout) at the fast rate. 63 fast, 61 slow.
HEALTHY_SLOW = 0b0111101
HEALTHY_FAST = HEALTHY_SLOW | 0b10


def healthy_state(fast):
    """The actor/partner port state of a healthy active member at the fast or slow rate."""
    return HEALTHY_FAST if fast else HEALTHY_SLOW


class LacpError(LaghilError):
    pass


@dataclass(frozen=True)
class Lacpdu:
    t: float                # capture timestamp (node clock)
    src_mac: str
    actor_system: str
    actor_key: int
    actor_port: int
    actor_state: int
    partner_system: str
    partner_key: int
    partner_port: int
    partner_state: int


def state_names(state):
    return [name for i, name in enumerate(STATE_BITS) if state & (1 << i)]


@parser('tcpdump pcap (LACPDUs)')
def parse_lacpdus(pcap):
    """pcap bytes -> [Lacpdu] (frames that are not LACPDUs are skipped)."""
    import io

    from scapy.contrib.lacp import LACP
    from scapy.utils import PcapReader

    out = []
    with PcapReader(io.BytesIO(pcap)) as rd:
        for pkt in rd:
            if LACP not in pkt:
                continue
            la = pkt[LACP]
            out.append(Lacpdu(
                t=float(pkt.time), src_mac=pkt.src, actor_system=la.actor_system,
                actor_key=int(la.actor_key), actor_port=int(la.actor_port_number),
                actor_state=int(la.actor_state), partner_system=la.partner_system,
                partner_key=int(la.partner_key), partner_port=int(la.partner_port_number),
                partner_state=int(la.partner_state)))
    return out


def periods(pdus, actor_system, actor_port=None):
    """Intervals (s) between consecutive PDUs sent by ``actor_system`` (and port)."""
    ts = [p.t for p in pdus if p.actor_system == actor_system
          and (actor_port is None or p.actor_port == actor_port)]
    return [b - a for a, b in zip(ts, ts[1:])]


def capture_command(port, seconds, path):
    return (f"timeout {float(seconds):.1f} tcpdump -i {qif(port)} -U -w {q(path)} "
            f"ether proto {ETH_P_SLOW:#06x} >/dev/null 2>&1; base64 -w0 {q(path)}; rm -f {q(path)}")


def capture_lacpdus(node, port, seconds):
    """Capture LACPDUs on ``node``'s ``port`` for ``seconds`` (bounded); pcap bytes."""
    if not 0 < seconds <= 120:
        raise LacpError(f"capture of {seconds} s: must be 0-120 s")
    path = node.path(f"laghil-lacp-{secrets.token_hex(4)}.pcap", verify=True)
    r = node.run(capture_command(port, seconds, path), timeout=seconds + 30)
    try:
        return base64.b64decode(r.stdout.strip(), validate=True)
    except ValueError:
        raise LacpError(f"{node.name}: capture on {port} returned no pcap: {r.stdout[:200]!r}") from None


# Runs on the node (stdlib python3): start a capture, install the drop rule,
# poll the member's partner state until it loses sync, stop the capture.
_WATCH = r'''
import json, subprocess, sys, time
port, limit, pcap = sys.argv[1], float(sys.argv[2]), sys.argv[3]
f = "/sys/class/net/%s/bonding_slave/ad_partner_oper_port_state" % port
cap = subprocess.Popen(["timeout", str(limit + 6), "tcpdump", "-i", port, "-U", "-w", pcap,
                        "ether", "proto", "0x8809"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
# the drop rule's modules (cls_matchall, act_gact) are loaded here, by a rule on an
# ethertype nobody sends: their first load under emulation took 2 s in CI, and a
# partner PDU that arrived during it made the last accepted PDU unknowable
subprocess.run(["tc", "filter", "add", "dev", port, "ingress", "protocol", "0x88b5", "prio",
                "2", "matchall", "action", "drop"], check=True)
subprocess.run(["tc", "filter", "del", "dev", port, "ingress", "prio", "2"], check=True)
time.sleep(2.5)
t0 = time.time()
subprocess.run(["tc", "filter", "add", "dev", port, "ingress", "protocol", "0x8809", "prio",
                "1", "matchall", "action", "drop"], check=True)
t1 = time.time()
before = int(open(f).read())
t_change = state = None
end = t1 + limit
while time.time() < end:
    s = int(open(f).read())
    if not s & 0x08:
        t_change, state = time.time(), s
        break
    time.sleep(0.005)
time.sleep(0.3)
cap.terminate(); cap.wait(timeout=10)
print(json.dumps({"t_drop_before": t0, "t_drop_after": t1, "t_change": t_change,
                  "state_before": before, "state_after": state}))
'''


@dataclass(frozen=True)
class PartnerTimeout:
    t_drop: float               # node clock, mid of the tc call
    drop_uncertainty_s: float
    t_last_pdu: float | None    # last partner LACPDU before the drop (accepted)
    t_change: float | None      # partner state lost synchronization (poll: 5 ms)
    state_before: int
    state_after: int | None
    in_drop_window: int = 0     # partner PDUs seen while the drop rule was being added

    @property
    def ambiguous(self):
        """A partner PDU arrived while the rule was being installed: whether the
        kernel accepted it is unknown, so the last accepted PDU is too."""
        return self.in_drop_window > 0

    @property
    def timeout_s(self):
        """Seconds from the last accepted partner LACPDU to the loss of sync
        (None when not measured or ambiguous)."""
        if self.t_change is None or self.t_last_pdu is None or self.ambiguous:
            return None
        return self.t_change - self.t_last_pdu


@parser('the LACP watch')
def parse_watch(text, pdus, partner_system):
    """The watcher's JSON line and the capture -> PartnerTimeout."""
    d = json.loads(text.strip().splitlines()[-1])
    t_drop = (d["t_drop_before"] + d["t_drop_after"]) / 2
    theirs = [p.t for p in pdus if p.actor_system == partner_system]
    before = [t for t in theirs if t <= d["t_drop_before"]]
    during = [t for t in theirs if d["t_drop_before"] < t <= d["t_drop_after"]]
    return PartnerTimeout(t_drop, (d["t_drop_after"] - d["t_drop_before"]) / 2,
                          max(before) if before else None, d["t_change"], d["state_before"],
                          d["state_after"], len(during))


def partner_timeout(node, port, partner_system, *, defer, limit_s=10.0, python="python3"):
    """Drop the partner's LACPDUs on ``node``'s ``port`` and time the partner's
    loss of sync (see the module doc). The clsact qdisc (and so the rule) is
    removed by an undo registered before it is added."""
    p = qif(port)
    defer(node_undo(node, "qdisc_delete", name=port, parent="clsact"))
    node.run(f"tc qdisc add dev {p} clsact")
    pcap = node.path(f"laghil-lacp-{secrets.token_hex(4)}.pcap", verify=True)
    script = node.path(f"laghil-lacp-watch-{secrets.token_hex(4)}.py")
    node.session.upload(_WATCH.encode(), script, 0o644)
    r = node.run(f"{q(python)} {q(script)} {p} {float(limit_s):.1f} {q(pcap)}; rm -f {q(script)}",
                 timeout=limit_s + 40)
    data = node.run(f"base64 -w0 {q(pcap)}; rm -f {q(pcap)}").stdout.strip()
    node.run(f"tc qdisc del dev {p} clsact")
    pdus = parse_lacpdus(base64.b64decode(data)) if data else []
    return parse_watch(r.stdout, pdus, partner_system), pdus
