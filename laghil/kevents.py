"""Kernel events of bonding/team from the node's kernel log, on the node's wall clock.

printk stamps come from the kernel's sched_clock, which is not CLOCK_REALTIME
(under emulation the two drift apart, and ``dmesg --time-format iso`` then puts
events up to ~0.2 s off). So the node writes a marker into /dev/kmsg between two
readings of its wall clock (bash's $EPOCHREALTIME, no process started between
them), and each event is placed relative to that marker: wall = marker wall +
(event stamp - marker stamp). With the node's clock offset (SSH round trips,
laghil.measure.probe.sample_clock) the events land on the controller's timeline
and give the detection latency (docs/measurement.md item 4).
"""

import re
import secrets
from dataclasses import dataclass

from .errors import LaghilError
from .names import qif
from .parsing import parser

_LINE = re.compile(r"^\[\s*(\d+\.\d+)\]\s(.*)$")

DOWN = "link status definitely down"
UP = "link status definitely up"
NEW_ACTIVE = "making interface the new active one"
# the ARP monitor of a load-balancing mode (bond_loadbalance_arp_mon) says "interface is
# now down" / "interface is now up" where the MII monitor says DOWN / UP
LB_ARP_DOWN, LB_ARP_UP = "interface is now down", "interface is now up"


@dataclass(frozen=True)
class KernelEvent:
    t: float          # epoch seconds, node clock
    message: str
    uncertainty_s: float = 0.0

    @property
    def kind(self):
        for key, kind in ((DOWN, "link down"), (LB_ARP_DOWN, "link down"), (UP, "link up"),
                          (LB_ARP_UP, "link up"), (NEW_ACTIVE, "new active")):
            if key in self.message:
                return kind
        return "other"


# kernel log records that mean a kernel misbehaved (not a protocol event)
KERNEL_FAULT = re.compile(r"WARNING:|BUG:|Call Trace|NETDEV WATCHDOG|soft lockup|hung_task|"
                          r"general protection fault|Oops|kernel BUG|refcount_t:|"
                          r"unregister_netdevice: waiting")


def kernel_fault_lines(dmesg_text, since=float("-inf")):
    """Records of a kernel log (``dmesg`` or a serial console) stamped after
    ``since`` (s since boot) that show a kernel fault, as "[stamp] message"."""
    return [f"[{s:.3f}] {m}" for s, m in parse_dmesg(dmesg_text)
            if s > since and KERNEL_FAULT.search(m)]


@parser('dmesg')
def parse_dmesg(text):
    """Plain `dmesg` -> [(stamp_s, message)] (lines without a stamp are skipped)."""
    out = []
    for line in text.splitlines():
        m = _LINE.match(line.strip())
        if m:
            out.append((float(m.group(1)), m.group(2)))
    return out


def place_events(records, marker, t_before, t_after):
    """Put dmesg records on the wall clock using the ``marker`` record written
    between wall-clock readings ``t_before`` and ``t_after``."""
    stamp = next((s for s, msg in records if msg.endswith(marker)), None)
    if stamp is None:
        raise LaghilError(f"kernel log marker {marker!r} not found (is /dev/kmsg writable?)")
    wall = (t_before + t_after) / 2
    unc = (t_after - t_before) / 2
    return [KernelEvent(wall + (s - stamp), msg, unc) for s, msg in records if not msg.endswith(marker)]


def kernel_log_command(marker):
    return ("bash -c 't0=$EPOCHREALTIME; echo " + marker + " > /dev/kmsg; t1=$EPOCHREALTIME; "
            "echo \"@@ $t0 $t1\"'; dmesg")


@parser('the kernel log')
def parse_kernel_log(text, marker):
    """Output of kernel_log_command -> [KernelEvent] on the node's wall clock."""
    head, _, rest = text.partition("\n")
    parts = head.split()
    if len(parts) != 3 or parts[0] != "@@":
        raise LaghilError(f"kernel log: no wall-clock bracket in {head!r}")
    return place_events(parse_dmesg(rest), marker, float(parts[1]), float(parts[2]))


def kernel_events(node, since=None):
    """Every kernel log record of ``node`` as a KernelEvent (node clock), after
    ``since`` if given."""
    marker = f"laghil-mark-{secrets.token_hex(4)}"
    evs = parse_kernel_log(node.run(kernel_log_command(marker)).stdout, marker)
    return [e for e in evs if since is None or e.t >= since]


def bond_events(node, bond, since=None):
    """The bond's kernel events on ``node`` (node clock), after ``since`` if given."""
    qif(bond)
    return [e for e in kernel_events(node, since) if e.message.startswith(f"{bond}:")]
