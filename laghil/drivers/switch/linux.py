"""A Linux switch: the virtual rack's switch guest, switchdev ASICs (mlxsw,
ocelot, DSA) and Linux NOSes' ports, over iproute2. A LAG is a bond, the L2
domain a bridge (VLAN-aware when VLANs are asked for).

Read methods parse with the pure functions below (tested on output captured in
the rack, ``tests/data/captures/``): :func:`switch_lag_from_bond`,
:func:`parse_fdb`, :func:`parse_bridge_vlans`, :func:`offload_verdict`,
:func:`refusal_reason` (and :func:`laghil.kevents.kernel_fault_lines` for the log).
"""

import json

from ...errors import CommandFailed
from ...journal import node_undo
from ...kevents import kernel_fault_lines
from ...names import check_ifname, qif
from ...parsing import parser
from ...undo_actions import VLAN_FLAGS, bond_join, bridge_join, master_is
from ..bond import MODES, Bond, parse_state_output, state_command
from ..netdev import UpperDevice
from .base import (
    IN_USE,
    LagMember,
    MadeLag,
    OffloadEvidence,
    SwitchDriver,
    SwitchError,
    SwitchLag,
    SwitchRefused,
)

OFFLOAD_FLAGS = ("offload", "extern_learn")


class LinuxBridge(UpperDevice):
    """A bridge over ports/LAGs of a Linux switch; its undo restores every
    member. ``vlans``: tagged on every member (vlan_filtering on, VLAN 1 left as
    the members' default)."""

    kind = "bridge"

    def __init__(self, node, name, members, vlans=()):
        self.node, self.name = node, check_ifname(name, "bridge name")
        self.members = [check_ifname(m, "bridge member") for m in members]
        self.vlans = [_vid(v) for v in vlans]

    def create(self, *, defer):
        b = qif(self.name)
        cmds = [f"ip link add name {b} type bridge stp_state 0 forward_delay 0"
                + (" vlan_filtering 1" if self.vlans else "")]
        for m in self.members:
            cmds.append(f"ip link set dev {qif(m)} master {b}")
            cmds += [f"bridge vlan add dev {qif(m)} vid {v}" for v in self.vlans]
        cmds.append(f"ip link set dev {b} up")
        return self._create(cmds, defer=defer)


def _vid(v):
    v = int(v)
    if not 1 <= v <= 4094:
        raise SwitchError(f"VLAN id {v} out of 1..4094")
    return v


# ------------------------------------------------------------------ parsers
def switch_lag_from_bond(name, st, mac=None, oper_up=None):
    """A bond's :class:`~laghil.drivers.bond.BondState` as a :class:`SwitchLag`:
    802.3ad members selected when in the active aggregator with sync,
    collecting and distributing set; static members when MII up."""
    lacp = st.mode == "802.3ad"
    agg = st.aggregator or {}
    members = {}
    for p, s in st.slaves.items():
        up = s.mii_status == "up"
        if lacp:
            in_agg = agg.get("id") is not None and s.aggregator_id == agg.get("id")
            sel = up and in_agg and (s.actor_state or 0) & IN_USE == IN_USE
            partner = (agg.get("partner_mac") or "").lower() or None if in_agg else None
            members[p] = LagMember(p, up, sel, s.actor_state, s.partner_state, partner)
        else:
            members[p] = LagMember(p, up, up)
    up = st.mii_status == "up" if oper_up is None else oper_up
    return SwitchLag(name, "lacp" if lacp else "static", up, members,
                     int(st.options.get("min_links", 0) or 0), mac)


@parser('bridge -j fdb show')
def parse_fdb(text):
    """``bridge -j fdb show br <br>`` -> [{"mac", "port", "vlan", "flags", "master"}]
    (permanent entries of the ports' own addresses dropped: they are not learned)."""
    out = []
    for e in json.loads(text or "[]"):
        if e.get("state") == "permanent" and not e.get("vlan") and "master" not in e:
            continue
        if e.get("state") == "permanent":
            continue
        out.append({"mac": e.get("mac", "").lower(), "port": e.get("ifname"),
                    "vlan": e.get("vlan"), "flags": list(e.get("flags", [])),
                    "master": e.get("master")})
    return out


@parser('bridge -j vlan show')
def parse_bridge_vlans(text):
    """``bridge -j vlan show`` -> {port: [(vid, flags)]} (flags: PVID, Egress Untagged)."""
    out = {}
    for e in json.loads(text or "[]"):
        port = e.get("ifname")
        vl = []
        for v in e.get("vlans", []):
            first = v["vlan"]
            last = v.get("vlanEnd", first)
            vl += [(vid, tuple(v.get("flags", []))) for vid in range(first, last + 1)]
        out[port] = vl
    return out


def offload_verdict(lag, switch_ids, fdb_entries):
    """:class:`OffloadEvidence` of ``lag`` from its members' ``phys_switch_id``
    ({port: id or None}) and the FDB entries learned on it. No switch id on any
    member: a software LAG (no switchdev ASIC under it). With one: entries on
    the LAG flagged offload/extern_learn are the evidence; entries without the
    flag: not offloaded (the silent software fallback); none: unknown."""
    signals = {"phys_switch_id": {p: i or "none" for p, i in switch_ids.items()}}
    on_lag = [e for e in fdb_entries if e["port"] == lag]
    flagged = [e for e in on_lag if set(e["flags"]) & set(OFFLOAD_FLAGS)]
    signals["fdb on LAG"] = f"{len(on_lag)} entries, {len(flagged)} flagged offload/extern_learn"
    if not any(switch_ids.values()):
        return OffloadEvidence(lag, "not_offloaded", signals,
                               ("a switchdev ASIC under the LAG's members (phys_switch_id)",))
    if flagged:
        return OffloadEvidence(lag, "offloaded", signals)
    if on_lag:
        return OffloadEvidence(lag, "not_offloaded", signals)
    return OffloadEvidence(lag, "unknown", signals, ("FDB entries learned on the LAG",))


def refusal_reason(stderr):
    """The kernel's own refusal in ``ip``'s stderr: the extack line ("Error:
    mlxsw_spectrum: LAG device using unsupported Tx type."), else the last
    line (an errno text such as "Device or resource busy": -EBUSY has no extack)."""
    lines = [ln.strip() for ln in (stderr or "").splitlines() if ln.strip()]
    ext = [ln for ln in lines if ln.startswith("Error:")]
    return (ext or lines or ["(no reason given)"])[-1]


@parser('/proc/uptime')
def parse_uptime_mark(text):
    """``cat /proc/uptime`` -> seconds since boot (the dmesg clock)."""
    try:
        return float(text.split()[0])
    except (IndexError, ValueError):
        raise SwitchError(f"/proc/uptime: unexpected {text[:60]!r}") from None


# ------------------------------------------------------------------ the driver
def _vlans(vlans):
    """A port's VLANs ([(vid, flags)], parse_bridge_vlans) as journal data."""
    return [[int(vid), [f for f in flags if f in VLAN_FLAGS]] for vid, flags in vlans]


class LinuxSwitch(SwitchDriver):
    netdev_ports = True
    platform = "linux"
    # bonding's bond_3ad_unbind_slave sends a last LACPDU with synchronization,
    # collecting, distributing and aggregation cleared: the partner deselects at once
    lacp_leave_notifies = True

    def port_shutdown(self, port, *, defer):
        port = self.check_shut_port(port)
        defer(self.port_up_undo(port))
        self.node.run(f"ip link set dev {qif(port)} down")

    def port_no_shutdown(self, port):
        self.node.run(f"ip link set dev {qif(port)} up")

    def member_blackhole(self, port, *, defer):
        """tc on ``port``'s ingress: slow protocols (0x8809: LACP) pass, every other
        frame is dropped. Refused, changing nothing, where the port already has
        an ingress qdisc (not laghil's to replace)."""
        p = qif(self._port(port))
        have = self.node.run(f"tc qdisc show dev {p} ingress", check=False).stdout.strip()
        if have:
            raise SwitchError(f"switch {self.node.name}: {port} already has an ingress qdisc "
                              f"({have.splitlines()[0]}): not laghil's, left alone")
        defer(node_undo(self.node, "qdisc_delete", name=port, parent="ingress",
                        what=f"{port}'s blackhole removed"))
        self.node.run(f"modprobe -q cls_u32 2>/dev/null; modprobe -q act_gact 2>/dev/null; "
                      f"tc qdisc add dev {p} ingress && "
                      f"tc filter add dev {p} parent ffff: pref 1 protocol 0x8809 u32 "
                      f"match u32 0 0 action ok && "
                      f"tc filter add dev {p} parent ffff: pref 2 protocol all u32 "
                      f"match u32 0 0 action drop")

    def port_oper_up(self, port):
        r = self.node.run(f"cat /sys/class/net/{qif(port)}/operstate")
        return r.stdout.strip() == "up"

    def lag_create(self, name, ports, mode, *, defer, lacp_rate="fast", miimon=10,
                   xmit_hash_policy="layer3+4", min_links=None):
        """``mode`` "static" (balance-xor), "lacp" (802.3ad) or, to probe what
        an ASIC refuses, any bond mode. A refusal by the kernel (the enslave
        fails) is undone at once and raised as :class:`SwitchRefused` with the
        kernel's reason and whatever the check after the undo found left."""
        bond_mode = {"static": "balance-xor", "lacp": "802.3ad"}.get(mode, mode)
        if bond_mode not in MODES:
            raise SwitchError(f"switch {self.node.name}: LAG mode {mode!r} (static, lacp or a "
                              f"bond mode: {', '.join(MODES)})")
        opts = {"miimon": miimon}
        if bond_mode in ("balance-xor", "802.3ad", "balance-tlb", "balance-alb"):
            opts["xmit_hash_policy"] = xmit_hash_policy
        if bond_mode == "802.3ad":
            opts["lacp_rate"] = lacp_rate
        if min_links is not None:
            opts["min_links"] = min_links
        bond = Bond(self.node, name, bond_mode, ports, **opts)
        try:
            bond.create(defer=defer)
            return MadeLag(self.node.name, name, tuple(ports), mode, bond.destroy)
        except CommandFailed as e:
            reason = refusal_reason(e.result.stderr)
            bond.destroy()
            raise SwitchRefused(f"switch {self.node.name}: LAG {name} ({mode}) over "
                                f"{', '.join(ports)} refused: {reason}", reason,
                                self.left_behind(name, ports)) from None

    def left_behind(self, name, ports):
        """What a refused or deleted LAG left: the device itself, members still
        enslaved to it."""
        n = qif(name)
        cmd = f"[ -e /sys/class/net/{n} ] && echo dev {n}; " + "; ".join(
            f"{master_is(p, name)} && echo member {qif(p)}" for p in ports) + "; true"
        return [ln.strip() for ln in self.node.run(cmd).stdout.splitlines() if ln.strip()]

    def _read_lag(self, name):
        """(BondState, SwitchLag) of LAG ``name``, in one round trip."""
        n = qif(name)
        out = self.node.run(f"{state_command(name)}; echo @@MAC; cat /sys/class/net/{n}/address;"
                            f" cat /sys/class/net/{n}/operstate").stdout
        text, _, tail = out.rpartition("@@MAC")
        proc, _ip = parse_state_output(text, name)
        mac, _, oper = tail.strip().partition("\n")
        return proc, switch_lag_from_bond(name, proc, mac.strip().lower() or None,
                                          oper.strip() == "up")

    def lag_state(self, name):
        return self._read_lag(name)[1]

    def _master_of(self, name):
        """The netdev ``name`` is enslaved to (its bridge), or None."""
        r = self.node.run(f"readlink /sys/class/net/{qif(name)}/master", check=False)
        return r.stdout.strip().rsplit("/", 1)[-1] or None if r.rc == 0 else None

    def lag_member_remove(self, name, port, *, defer):
        """Take ``port`` out of LAG ``name``, left up as a standalone port (as a
        NOS leaves it: the partner sees LACP stop, not a link drop). Returns the
        undo (registered first, idempotent): the port back in the LAG."""
        p = qif(port)
        undo = node_undo(self.node, "bond_join", check=True, name=port, bond=name,
                         what=f"{port} back into {name}")
        defer(undo)
        self.node.run(f"{master_is(port, name)} || {{ echo '{port} is not in {name}' >&2; "
                      f"exit 3; }}; ip link set dev {p} nomaster && ip link set dev {p} up")
        return undo

    def lag_member_add(self, name, port, *, defer):
        defer(node_undo(self.node, "release", check=True, name=port, master=name, up=True,
                        what=f"{port} out of {name}"))
        self.node.run(bond_join(port, name))

    def bridge_create(self, name, members, *, defer, vlans=()):
        return LinuxBridge(self.node, name, members, vlans).create(defer=defer)

    def _member_vlans(self, member):
        return parse_bridge_vlans(self.node.run(f"bridge -j vlan show dev {qif(member)}").stdout
                                  ).get(member, [])

    def bridge_member_remove(self, bridge, member, *, defer):
        """Take ``member`` out of ``bridge``; the undo (registered first, also
        returned) puts it back with exactly the VLANs it had."""
        vlans = self._member_vlans(member)
        undo = node_undo(self.node, "bridge_join", check=True, name=member, bridge=bridge,
                         vlans=_vlans(vlans), what=f"{member} back into {bridge}")
        defer(undo)
        self.node.run(f"ip link set dev {qif(member)} nomaster")
        return undo

    def bridge_member_add(self, bridge, member, *, defer, vlans=None):
        defer(node_undo(self.node, "release", check=True, name=member, master=bridge, up=False,
                        what=f"{member} out of {bridge}"))
        self.node.run(bridge_join(member, bridge, _vlans(vlans or [])))

    def lag_delete(self, name, *, defer):
        """Delete LAG ``name`` with its uppers' links to it (bridge membership,
        VLANs); the undo (registered first, idempotent, also returned) rebuilds
        the LAG over the same ports with the same mode and options and puts it
        back where it was."""
        proc, lag = self._read_lag(name)
        br = self._master_of(name)
        vlans = self._member_vlans(name) if br else []
        opts = {k: proc.options[k] for k in ("miimon", "lacp_rate", "xmit_hash_policy",
                                             "min_links") if proc.options.get(k) not in (None, "")}
        if proc.mode != "802.3ad":
            opts.pop("lacp_rate", None)
        Bond(self.node, name, proc.mode, list(lag.members), **opts)     # its checks
        where = {"bridge": br, "vlans": _vlans(vlans)} if br else {}
        undo = node_undo(self.node, "bond_rebuild", check=True, name=name, mode=proc.mode,
                         options={k: str(v) for k, v in opts.items()},
                         members=list(lag.members), **where,
                         what=f"rebuild LAG {name}" + (f" into {br}" if br else ""))
        defer(undo)
        self.node.run(f"ip link del dev {qif(name)}")
        return undo

    def fdb(self, bridge):
        return parse_fdb(self.node.run(f"bridge -j fdb show br {qif(bridge)}").stdout)

    def offload_evidence(self, name):
        lag = self.lag_state(name)
        ids = {}
        for p in lag.members:
            r = self.node.run(f"cat /sys/class/net/{qif(p)}/phys_switch_id 2>/dev/null",
                              check=False)
            ids[p] = r.stdout.strip() if r.rc == 0 else None
        br = self._master_of(name)
        entries = self.fdb(br) if br else []
        return offload_verdict(name, ids, entries)

    def describe(self):
        ports = list(self.node.spec.ports)
        out = self.node.run("uname -r; " + "; ".join(
            f"echo {qif(p)} $(cat /sys/class/net/{qif(p)}/phys_switch_id 2>/dev/null)"
            for p in ports)).stdout.splitlines()
        ids = {ln.split()[0]: (ln.split() + [None])[1] for ln in out[1:] if ln.strip()}
        limit = ("none: a software LAG (no switchdev ASIC under the ports)"
                 if not any(ids.values()) else
                 "unknown: switchdev ASIC (read its LAG resources with devlink resource show)")
        return {"platform": self.platform, "version": f"Linux {out[0].strip()}" if out else None,
                "lag_limit": limit}

    def log_mark(self):
        return parse_uptime_mark(self.node.run("cat /proc/uptime").stdout)

    def kernel_faults(self, since):
        return kernel_fault_lines(self.node.run("dmesg").stdout, since)
