"""Linux bonding over iproute2: create, configure, read and destroy a bond in any
of the seven modes, with its undo registered before anything changes.

(The option table, the two state parsers and the driver of one
device belong together; each is tested on captured output.)

Options are checked before a command is sent (name, value, and whether the mode
accepts it, as the kernel's bond_options.c does), so a bad option is one clear
error and the host is untouched. State is read from BOTH ``/proc/net/bonding/<bond>``
and ``ip -d -j link`` in one round trip; :func:`disagreements` compares the two.
Parsers are pure functions (tests/test_bond.py, on output captured in the rack).
"""

import ipaddress
import json
import re
import time
from dataclasses import dataclass, field

from ..errors import LaghilError
from ..lacp import healthy_state
from ..names import check_ifname, qif
from ..undo_actions import bond_create_commands
from ..parsing import parser
from .netdev import UpperDevice

MODES = ("balance-rr", "active-backup", "balance-xor", "broadcast", "802.3ad",
         "balance-tlb", "balance-alb")
LAG_MODES = ("balance-rr", "balance-xor", "802.3ad", "balance-tlb", "balance-alb")
HASH_POLICIES = ("layer2", "layer2+3", "layer3+4", "encap2+3", "encap3+4", "vlan+srcmac")
USES_PRIMARY = ("active-backup", "balance-tlb", "balance-alb")

# /proc/net/bonding "Bonding Mode:" text -> mode name (bond_mode_names in the kernel)
PROC_MODE_NAMES = {
    "load balancing (round-robin)": "balance-rr",
    "fault-tolerance (active-backup)": "active-backup",
    "load balancing (xor)": "balance-xor",
    "fault-tolerance (broadcast)": "broadcast",
    "IEEE 802.3ad Dynamic link aggregation": "802.3ad",
    "transmit load balancing": "balance-tlb",
    "adaptive load balancing": "balance-alb",
}


class BondError(LaghilError):
    pass


# ---------------------------------------------------------------- options
def _enum(*values):
    def check(v):
        if str(v) not in values:
            raise ValueError(f"one of {', '.join(values)}")
        return str(v)
    return check


def _int(lo, hi):
    def check(v):
        if isinstance(v, bool) or not re.fullmatch(r"\d+", str(v)) or not lo <= int(v) <= hi:
            raise ValueError(f"an integer from {lo} to {hi}")
        return str(int(v))
    return check


def _targets(v):
    items = v if isinstance(v, (list, tuple)) else str(v).split(",")
    if not 1 <= len(items) <= 16:
        raise ValueError("1 to 16 IPv4 addresses")
    try:
        return ",".join(str(ipaddress.IPv4Address(str(i).strip())) for i in items)
    except ValueError:
        raise ValueError("IPv4 addresses (a list, or comma-separated)") from None


def _ifname(v):
    return check_ifname(str(v), "bond option value")


_BIG = 2 ** 31 - 1
# option -> (value check, modes that accept it or None for all)
OPTIONS = {
    "miimon": (_int(0, _BIG), None),
    "updelay": (_int(0, _BIG), None),
    "downdelay": (_int(0, _BIG), None),
    "peer_notify_delay": (_int(0, 300000), None),
    "use_carrier": (_int(0, 1), None),
    "arp_interval": (_int(0, _BIG), ("balance-rr", "active-backup", "balance-xor", "broadcast")),
    "arp_ip_target": (_targets, ("balance-rr", "active-backup", "balance-xor", "broadcast")),
    "arp_validate": (_enum("none", "active", "backup", "all", "filter", "filter_active",
                           "filter_backup"), ("active-backup",)),
    "arp_all_targets": (_enum("any", "all"), ("active-backup",)),
    "arp_missed_max": (_int(1, 255), None),
    "primary": (_ifname, USES_PRIMARY),
    "primary_reselect": (_enum("always", "better", "failure"), None),
    "fail_over_mac": (_enum("none", "active", "follow"), None),
    "num_grat_arp": (_int(0, 255), None),
    "num_unsol_na": (_int(0, 255), None),
    "all_slaves_active": (_int(0, 1), None),
    "resend_igmp": (_int(0, 255), None),
    "xmit_hash_policy": (_enum(*HASH_POLICIES), ("balance-xor", "802.3ad", "balance-tlb",
                                                 "balance-alb")),
    "packets_per_slave": (_int(0, 65535), ("balance-rr",)),
    "lacp_rate": (_enum("slow", "fast"), ("802.3ad",)),
    "lacp_active": (_enum("on", "off"), ("802.3ad",)),
    "ad_select": (_enum("stable", "bandwidth", "count"), ("802.3ad",)),
    "ad_actor_sys_prio": (_int(1, 65535), ("802.3ad",)),
    "ad_user_port_key": (_int(0, 1023), ("802.3ad",)),
    "min_links": (_int(0, _BIG), None),
    "tlb_dynamic_lb": (_int(0, 1), ("balance-tlb", "balance-alb")),
    "lp_interval": (_int(1, _BIG), None),
}


def check_options(node_name, bond, mode, members, options):
    """Validated options as {name: value string}; BondError names the first problem."""
    out = {}
    for k, v in options.items():
        where = f"{node_name}: bond {bond} ({mode}): option {k}={v!r}"
        if k not in OPTIONS:
            raise BondError(f"{where}: unknown option (known: {', '.join(sorted(OPTIONS))})")
        check, modes = OPTIONS[k]
        if modes is not None and mode not in modes:
            raise BondError(f"{where}: not accepted in mode {mode} (only {', '.join(modes)})")
        try:
            out[k] = check(v)
        except ValueError as e:
            raise BondError(f"{where}: must be {e}") from None
    if "primary" in out and out["primary"] not in members:
        raise BondError(f"{node_name}: bond {bond}: primary {out['primary']!r} is not a member "
                        f"({', '.join(members)})")
    mii = int(out.get("miimon", 0))
    for k in ("updelay", "downdelay"):
        if mii and int(out.get(k, 0)) % mii:
            raise BondError(f"{node_name}: bond {bond}: {k} {out[k]} is not a multiple of "
                            f"miimon {mii} (the kernel would round it down)")
    if mii and int(out.get("arp_interval", 0)):
        raise BondError(f"{node_name}: bond {bond}: miimon and arp_interval exclude each other")
    if int(out.get("arp_interval", 0)) and "arp_ip_target" not in out:
        raise BondError(f"{node_name}: bond {bond}: arp_interval needs arp_ip_target")
    return out


# the bonding driver's words (bond_enslave) for what check_link_layers refuses
MSG_IB_MODE = "Only active-backup mode is supported for infiniband slaves"
MSG_TYPE_MIX = "Device type is different from other slaves"


def check_link_layers(node_name, bond, mode, layers):
    """``layers``: {member: "ethernet" | "infiniband"} (the lab file's). IPoIB
    members are taken in active-backup only, and not beside Ethernet ones: the
    kernel refuses both at enslave time, after the bond exists; laghil refuses
    them before any command, quoting the driver."""
    ib = sorted(m for m, ll in layers.items() if ll == "infiniband")
    if not ib:
        return
    if len(ib) != len(layers):
        eth = sorted(set(layers) - set(ib))
        raise BondError(f"{node_name}: bond {bond}: IPoIB members {ib} beside Ethernet {eth} "
                        f"(the driver: \"{MSG_TYPE_MIX}\")")
    if mode != "active-backup":
        raise BondError(f"{node_name}: bond {bond} ({mode}) over IPoIB members {ib}: active-backup "
                        f"only (the driver: \"{MSG_IB_MODE}\")")


# ---------------------------------------------------------------- state
@dataclass(frozen=True)
class SlaveState:
    name: str
    mii_status: str                 # "up" | "down" | "going down" | "going back"
    state: str | None = None        # "active" | "backup" (ip only)
    link_failure_count: int = 0
    perm_hwaddr: str | None = None
    speed_mbps: int | None = None
    aggregator_id: int | None = None
    actor_state: int | None = None
    partner_state: int | None = None


@dataclass(frozen=True)
class BondState:
    mode: str
    mii_status: str
    active_slave: str | None
    primary: str | None
    slaves: dict                    # name -> SlaveState, in enslave order
    options: dict = field(default_factory=dict)   # miimon, updelay, xmit_hash_policy, ...
    aggregator: dict | None = None  # 802.3ad: id, num_ports, actor_key, partner_key, partner_mac

    @property
    def up_slaves(self):
        return [s for s, st in self.slaves.items() if st.mii_status == "up"]


def _num(text):
    m = re.match(r"-?\d+", text.strip())
    return int(m.group()) if m else None


@parser('/proc/net/bonding')
def parse_proc_bonding(text):
    """/proc/net/bonding/<bond> -> BondState (parsed by key, not by position)."""
    head, slaves, cur, section = {}, {}, None, None
    agg = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or ":" not in line:
            if line == "802.3ad info":
                section = "ad"
            continue
        key, _, val = line.partition(":")
        key, val = key.strip(), val.strip()
        if key == "Slave Interface":
            cur = slaves[val] = {"name": val}
            section = "slave"
            continue
        if key in ("details actor lacp pdu", "details partner lacp pdu"):
            section = "actor" if "actor" in key else "partner"
            continue
        if cur is None:
            if key == "Active Aggregator Info":
                section = "agg"
            elif section == "agg" and key in ("Aggregator ID", "Number of ports", "Actor Key",
                                              "Partner Key", "Partner Mac Address"):
                agg[key] = val
            else:
                head[key] = val
        elif section in ("actor", "partner"):
            if key == "port state":
                cur[f"{section}_state"] = int(val)
        else:
            cur[key] = val
    mode_text = head.get("Bonding Mode", "")
    fom = re.search(r"\(fail_over_mac (\w+)\)$", mode_text)
    mode_text = re.sub(r"\s*\(fail_over_mac \w+\)$", "", mode_text)
    mode = PROC_MODE_NAMES.get(mode_text)
    if mode is None:
        raise BondError(f"/proc/net/bonding: unknown Bonding Mode {mode_text!r}")
    prim = head.get("Primary Slave")
    primary = prim.split()[0] if prim else None
    reselect = re.search(r"primary_reselect (\w+)", prim or "")
    active = head.get("Currently Active Slave")
    opts = {"miimon": _num(head.get("MII Polling Interval (ms)", "0")),
            "updelay": _num(head.get("Up Delay (ms)", "0")),
            "downdelay": _num(head.get("Down Delay (ms)", "0")),
            "peer_notify_delay": _num(head.get("Peer Notification Delay (ms)", "0")),
            "arp_interval": _num(head.get("ARP Polling Interval (ms)", "0")) or 0,
            "fail_over_mac": fom.group(1) if fom else "none"}
    if "Transmit Hash Policy" in head:
        opts["xmit_hash_policy"] = head["Transmit Hash Policy"].split()[0]
    if reselect:
        opts["primary_reselect"] = reselect.group(1)
    if head.get("ARP IP target/s (n.n.n.n form)"):
        opts["arp_ip_target"] = [a.strip() for a in head["ARP IP target/s (n.n.n.n form)"].split(",")]
    if mode == "802.3ad":
        opts.update(lacp_rate=head.get("LACP rate"), min_links=_num(head.get("Min links", "0")),
                    ad_select=head.get("Aggregator selection policy (ad_select)"),
                    lacp_active=head.get("LACP active"))
    aggregator = None
    if agg:
        aggregator = {"id": int(agg["Aggregator ID"]), "num_ports": int(agg["Number of ports"]),
                      "actor_key": int(agg["Actor Key"]), "partner_key": int(agg["Partner Key"]),
                      "partner_mac": agg["Partner Mac Address"]}
    out = {}
    for name, s in slaves.items():
        speed = s.get("Speed", "")
        out[name] = SlaveState(
            name=name, mii_status=s.get("MII Status", "unknown"),
            link_failure_count=int(s.get("Link Failure Count", 0)),
            perm_hwaddr=s.get("Permanent HW addr"),
            speed_mbps=_num(speed) if speed and speed != "Unknown" else None,
            aggregator_id=_num(s["Aggregator ID"]) if "Aggregator ID" in s else None,
            actor_state=s.get("actor_state"), partner_state=s.get("partner_state"))
    return BondState(mode=mode, mii_status=head.get("MII Status", "unknown"),
                     active_slave=None if active in (None, "None") else active,
                     primary=None if primary in (None, "None") else primary,
                     slaves=out, options=opts, aggregator=aggregator)


def parse_ip_bond(links, bond):
    """``ip -d -j link show`` (all links, a parsed list) -> BondState of ``bond``."""
    dev = next((d for d in links if d.get("ifname") == bond), None)
    if dev is None or dev.get("linkinfo", {}).get("info_kind") != "bond":
        raise BondError(f"{bond}: no such bond in `ip -d -j link`")
    d = dev["linkinfo"].get("info_data", {})
    slaves = {}
    for lk in links:
        if lk.get("master") != bond:
            continue
        sd = lk.get("linkinfo", {}).get("info_slave_data", {})
        slaves[lk["ifname"]] = SlaveState(
            name=lk["ifname"], mii_status=str(sd.get("mii_status", "unknown")).lower().replace("_", " "),
            state=str(sd.get("state", "")).lower() or None,
            link_failure_count=sd.get("link_failure_count", 0), perm_hwaddr=sd.get("perm_hwaddr"),
            aggregator_id=sd.get("ad_aggregator_id"),
            actor_state=sd.get("ad_actor_oper_port_state"),
            partner_state=sd.get("ad_partner_oper_port_state"))
    opts = {k: d.get(k) for k in ("miimon", "updelay", "downdelay", "peer_notify_delay",
                                  "arp_interval", "fail_over_mac", "primary_reselect",
                                  "xmit_hash_policy", "min_links", "ad_select",
                                  "all_slaves_active", "packets_per_slave", "tlb_dynamic_lb",
                                  "arp_validate", "num_peer_notif") if k in d}
    if d.get("arp_ip_target"):
        opts["arp_ip_target"] = list(d["arp_ip_target"])
    if "ad_lacp_rate" in d:
        opts["lacp_rate"] = d["ad_lacp_rate"]
        opts["lacp_active"] = d.get("ad_lacp_active")
    ad = d.get("ad_info")
    aggregator = None
    if ad:
        aggregator = {"id": ad["aggregator"], "num_ports": ad["num_ports"],
                      "actor_key": ad["actor_key"], "partner_key": ad["partner_key"],
                      "partner_mac": ad["partner_mac"]}
    mii = "up" if "LOWER_UP" in dev.get("flags", []) else "down"
    return BondState(mode=d.get("mode"), mii_status=mii, active_slave=d.get("active_slave"),
                     primary=d.get("primary"), slaves=slaves, options=opts, aggregator=aggregator)


# fields both sources give; /proc rounds nothing, so they must agree exactly
_COMPARE_OPTS = ("miimon", "updelay", "downdelay", "peer_notify_delay", "arp_interval",
                 "fail_over_mac", "xmit_hash_policy", "lacp_rate", "min_links", "ad_select",
                 "arp_ip_target")


def disagreements(proc, ip):
    """Where /proc/net/bonding and ``ip -d -j link`` disagree, as messages."""
    out = []

    def cmp(what, a, b):
        if a != b:
            out.append(f"{what}: /proc says {a!r}, ip says {b!r}")
    cmp("mode", proc.mode, ip.mode)
    cmp("mii_status", proc.mii_status, ip.mii_status)
    if proc.mode in USES_PRIMARY:
        cmp("active_slave", proc.active_slave, ip.active_slave)
        cmp("primary", proc.primary, ip.primary)
    for k in _COMPARE_OPTS:
        if k in proc.options and k in ip.options:
            cmp(k, proc.options[k], ip.options[k])
    # /proc lists the slaves in enslave order, ip in ifindex order (the same
    # when the ports were probed in name order; not behind PCIe expander buses)
    cmp("slaves", sorted(proc.slaves), sorted(ip.slaves))
    for s in [s for s in proc.slaves if s in ip.slaves]:
        p, i = proc.slaves[s], ip.slaves[s]
        for k in ("mii_status", "link_failure_count", "perm_hwaddr", "aggregator_id",
                  "actor_state", "partner_state"):
            if getattr(p, k) is not None and getattr(i, k) is not None:
                cmp(f"{s}.{k}", getattr(p, k), getattr(i, k))
    if proc.aggregator and ip.aggregator:
        cmp("aggregator", proc.aggregator, ip.aggregator)
    return out


SEP = "@@LAGHIL@@"


def state_command(bond):
    return f"cat /proc/net/bonding/{qif(bond)}; echo {SEP}; ip -d -j link show"


@parser('the bond state (/proc/net/bonding, ip -d -j link)')
def parse_state_output(text, bond):
    """Output of :func:`state_command` -> (proc BondState, ip BondState)."""
    proc, sep, ipj = text.partition(SEP)
    if not sep:
        raise BondError(f"{bond}: state output has no separator")
    return parse_proc_bonding(proc), parse_ip_bond(json.loads(ipj), bond)


# ---------------------------------------------------------------- the bond
class Bond(UpperDevice):
    """A Linux bond: one of the :mod:`laghil.drivers.lag` LAGs."""

    kind = "bond"

    def __init__(self, node, name, mode, members, **options):
        if mode not in MODES:
            raise BondError(f"{node.name}: unknown bond mode {mode!r} (one of {', '.join(MODES)})")
        self.node, self.name, self.mode = node, check_ifname(name, "bond name"), mode
        self.members = [check_ifname(m, "bond member") for m in members]
        if len(set(self.members)) != len(self.members) or not self.members:
            raise BondError(f"{node.name}: bond {name}: members {self.members} must be distinct "
                            "and at least one")
        self.options = check_options(node.name, self.name, mode, self.members, options)
        spec = getattr(node, "spec", None)
        check_link_layers(node.name, self.name, mode, {
            m: getattr(spec.ports.get(m), "link_layer", "ethernet") if spec else "ethernet"
            for m in self.members})

    def __repr__(self):
        return f"<Bond {self.node.name}:{self.name} {self.mode} {self.members}>"

    def create_commands(self, address=None):
        return bond_create_commands(self.name, self.mode, self.options, self.members,
                                    str(ipaddress.ip_interface(address)) if address else None)

    def create(self, *, defer, address=None):
        """Create the bond, enslave members, bring it up (and add ``address``).
        Refused (nothing changed) when the name or a member is not laghil's to
        take; the undo (destroy + restore every member) is registered first."""
        return self._create(self.create_commands(address), defer=defer)

    def info(self):
        """`ip -d -j link show <bond>` linkinfo data (mode, miimon, active slave...)."""
        d = json.loads(self.node.run(f"ip -d -j link show dev {qif(self.name)}").stdout)[0]
        return d.get("linkinfo", {}).get("info_data", {})

    def active_member(self):
        """The active slave (active-backup, tlb, alb), None when there is none."""
        return self.info().get("active_slave")

    def set_active_member(self, member):
        """Make ``member`` the active slave (active-backup, tlb, alb), as an
        operator moves traffic (``ip link set <bond> type bond active_slave``)."""
        if self.mode not in ("active-backup", "balance-tlb", "balance-alb"):
            raise BondError(f"{self.node.name}: bond {self.name} ({self.mode}) has no active "
                            "slave to set")
        if member not in self.members:
            raise BondError(f"{self.node.name}: bond {self.name}: {member!r} is not a member "
                            f"({', '.join(self.members)})")
        self.node.run(f"ip link set dev {qif(self.name)} type bond active_slave {qif(member)}")

    def states(self):
        """(from /proc, from ip -d -j link), read in one round trip."""
        return parse_state_output(self.node.run(state_command(self.name)).stdout, self.name)

    def state(self, settle_s=3.0, wait_s=0.3):
        """The bond's state; BondError if /proc and ip still disagree after
        ``settle_s`` of re-reads every ``wait_s``. The two are read a moment
        apart: a member in transition ("going down" / "going back"), or LACP
        states changing while the partners negotiate (a partner_state of 7 in
        one and 199 in the other, seen at a pair's setup under load), may be
        seen differently for a while; a real disagreement stays."""
        deadline = time.monotonic() + settle_s
        while True:
            proc, ip = self.states()
            bad = disagreements(proc, ip)
            if not bad:
                return proc
            if time.monotonic() + wait_s > deadline:
                break
            time.sleep(wait_s)
        raise BondError(f"{self.node.name}: {self.name}: /proc/net/bonding and "
                        f"`ip -d -j link` disagree for {settle_s:g} s: " + "; ".join(bad))

    def ready(self):
        """None when the bond is ready for traffic, else what is still missing."""
        return ready_problem(self.state(), self.mode, self.members)


def ready_problem(st, mode, members):
    """Why a bond in state ``st`` is not ready for traffic (pure; None if it is):
    members up, 802.3ad: one aggregator with every member and healthy LACP
    states both ways, an active member where the mode has one."""
    down = [s for s in members if st.slaves.get(s) is None or st.slaves[s].mii_status != "up"]
    if down:
        return f"members not up: {down}"
    if mode == "802.3ad":
        agg = st.aggregator or {}
        if agg.get("num_ports") != len(members):
            return f"aggregator {agg} does not hold all {len(members)} members"
        want = healthy_state(st.options.get("lacp_rate") == "fast")
        bad = {s: (x.actor_state, x.partner_state) for s, x in st.slaves.items()
               if (x.actor_state, x.partner_state) != (want, want)}
        if bad:
            return f"LACP port states (actor, partner) not {want}: {bad}"
    if mode in USES_PRIMARY and not st.active_slave:
        return "no active slave"
    return None
