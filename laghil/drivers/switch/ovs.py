"""Open vSwitch: a Linux host whose switching is OVS (kernel datapath, or tc
offload to a NIC's e-switch: the switch of mlx5's switchdev VF LAG). A LAG is
an OVS bond (``bond_mode`` balance-tcp with OVS's own LACP, balance-slb,
active-backup), the L2 domain an OVS bridge with ``tag`` / ``trunks`` per port.

OVS has no bond outside a bridge: a LAG made alone lives in a holding bridge of
its own (``<lag>-hold``), and :meth:`OvsSwitch.bridge_create` moves its Port
record (same options, same LACP settings) into the domain; its undo moves it
back. Every bridge and port laghil makes carries ``external_ids:laghil=made``;
a mutation refuses a record without it, naming the switch and the record.

Read methods parse with the pure functions below, tested on output captured
on the virtual rack's OVS guest (``tests/data/captures/sw1-ovs-*``):
:func:`parse_bond_show`, :func:`parse_lacp_show`, :func:`parse_fdb_show`,
:func:`parse_dump_flows`, :func:`parse_vsctl_list`. Ports, counters, the port
shutdown and the kernel log are a Linux host's (:class:`LinuxSwitch`).
"""

import json
import re

from ...kevents import kernel_fault_lines
from ...names import check_ifname, qif
from ...undo_actions import check_mac
from ...parsing import parser
from .base import IN_USE, LagMember, MadeLag, OffloadEvidence, SwitchError, SwitchLag, SwitchRefused
from .linux import LinuxSwitch, _vid, parse_uptime_mark

MARK = "external_ids:laghil=made"
# LACP port state words of `ovs-appctl lacp/show` (lib/lacp.c ds_put_lacp_state), as 802.1AX bits
LACP_STATE_BITS = {"activity": 0x01, "timeout": 0x02, "aggregation": 0x04,
                   "synchronized": 0x08, "collecting": 0x10, "distributing": 0x20,
                   "defaulted": 0x40, "expired": 0x80}
# a lab's LAG modes in OVS's words: (bond_mode, lacp, other_config). A static LAG
# is balance-slb with all-members-active: without it, a bond without LACP takes
# broadcast and multicast frames on its active member only (OVS's "do not
# configure the upstream switch as a bond" modes), and a static partner that
# hashes its ARP requests onto another member would never be answered.
BOND_MODES = {"lacp": ("balance-tcp", "active", {}),
              "static": ("balance-slb", "off", {"all-members-active": "true"}),
              "balance-tcp": ("balance-tcp", "active", {}),
              "balance-slb": ("balance-slb", "off", {}),
              "active-backup": ("active-backup", "off", {})}


# ------------------------------------------------------------------ parsers
def _fields(lines):
    """{key: value} of "  key: value" lines (the first of each key)."""
    out = {}
    for ln in lines:
        k, sep, v = ln.strip().partition(":")
        if sep and k and k not in out:
            out[k.strip()] = v.strip()
    return out


@parser("ovs-appctl bond/show")
def parse_bond_show(text):
    """``ovs-appctl bond/show <bond>`` -> {"bond_mode", "lacp_status", "active_member",
    "members": {iface: {"enabled": bool, "active": bool, "may_enable": bool}}}."""
    top, members = [], {}
    cur = None
    for line in text.splitlines():
        m = re.match(r"^member (\S+): (enabled|disabled)\s*$", line)
        if m:
            cur = members[m.group(1)] = {"enabled": m.group(2) == "enabled", "active": False,
                                         "may_enable": None}
            continue
        if cur is None:
            top.append(line)
        elif line.strip() == "active member":
            cur["active"] = True
        elif line.strip().startswith("may_enable:"):
            cur["may_enable"] = line.split(":", 1)[1].strip() == "true"
    f = _fields(top)
    if "bond_mode" not in f:
        raise SwitchError("no bond_mode line (not a bond?)")
    act = f.get("active member mac") or f.get("active slave mac") or ""
    am = re.search(r"\(([^)]+)\)", act)
    return {"bond_mode": f["bond_mode"], "lacp_status": f.get("lacp_status"),
            "active_member": am.group(1) if am and am.group(1) != "none" else None,
            "members": members}


def lacp_state_bits(words):
    """``activity timeout aggregation synchronized ...`` -> the 802.1AX state byte."""
    bits = 0
    for w in words.split():
        if w not in LACP_STATE_BITS:
            raise SwitchError(f"unknown LACP state word {w!r}")
        bits |= LACP_STATE_BITS[w]
    return bits


@parser("ovs-appctl lacp/show")
def parse_lacp_show(text):
    """``ovs-appctl lacp/show <bond>`` -> {"status", "sys_id", "lacp_time",
    "members": {iface: {"status", "actor_state", "partner_state", "partner_sys_id"}}}."""
    head, blocks = [], {}       # the LACP object's lines; member -> (status, its lines)
    for line in text.splitlines():
        m = re.match(r"^(?:member|slave): (\S+): (.*)$", line)
        if m:
            blocks[m.group(1)] = (m.group(2).strip(), [])
        elif blocks:
            blocks[next(reversed(blocks))][1].append(line)
        else:
            head.append(line)
    f = _fields(head)
    if "sys_id" not in f:
        raise SwitchError("no sys_id line (LACP not configured on this port?)")
    members = {}
    for name, (status, lines) in blocks.items():
        mf = _fields(lines)
        members[name] = {
            "status": status,
            "may_enable": mf.get("may_enable") == "true",
            "actor_state": lacp_state_bits(mf.get("actor state", "")),
            "partner_state": lacp_state_bits(mf.get("partner state", "")),
            "partner_sys_id": (mf.get("partner sys_id") or "").lower() or None}
    return {"status": f.get("status"), "sys_id": f["sys_id"].lower(),
            "lacp_time": f.get("lacp_time"), "members": members}


@parser("ovs-appctl fdb/show")
def parse_fdb_show(text):
    """``ovs-appctl fdb/show <bridge>`` -> [{"port", "vlan", "mac", "age"}] (the
    port as OVS names it: the bond, or the interface of a plain port)."""
    out = []
    for line in text.splitlines()[1:]:
        parts = line.split()
        if not parts:
            continue
        port, vlan, mac, age = parts[:4]
        out.append({"port": port, "vlan": int(vlan), "mac": mac.lower(), "age": age})
    return out


@parser("ovs-appctl dpctl/dump-flows -m")
def parse_dump_flows(text):
    """``ovs-appctl dpctl/dump-flows -m`` -> [{"in_port", "offloaded", "dp", "actions"}]."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("flow-dump"):
            continue
        m = re.search(r"in_port\(([^)]*)\)", line)
        off = re.search(r"offloaded:(\w+)", line)
        dp = re.search(r"dp:(\w+)", line)
        act = line.rsplit("actions:", 1)
        out.append({"in_port": m.group(1) if m else None,
                    "offloaded": off is not None and off.group(1) == "yes",
                    "dp": dp.group(1) if dp else None,
                    "actions": act[1] if len(act) == 2 else ""})
    return out


@parser("ovs-vsctl --format=json list")
def parse_vsctl_list(text):
    """``ovs-vsctl --format=json list <table>`` -> [{column: value}] with OVSDB's
    JSON encodings decoded: ["set", [...]] a list, ["map", [[k, v]...]] a dict,
    ["uuid", u] the uuid."""
    doc = json.loads(text)
    return [{h: _ovsdb_value(v) for h, v in zip(doc["headings"], row)} for row in doc["data"]]


def _set(v):
    """An OVSDB set column as a list: ``--format=json`` prints a set of one
    element as the bare element (``interfaces``, ``trunks``, ``ports``)."""
    return [] if v is None else v if isinstance(v, list) else [v]


def _ovsdb_value(v):
    if isinstance(v, list) and len(v) == 2 and v[0] in ("set", "map", "uuid", "named-uuid"):
        kind, val = v
        if kind == "set":
            return [_ovsdb_value(x) for x in val]
        if kind == "map":
            return {_ovsdb_value(k): _ovsdb_value(x) for k, x in val}
        return val
    return v


def one_interface_port(ifaces, lacp, links):
    """What :func:`parse_bond_show` gives for a port OVS does not treat as a bond
    (one interface): the member enabled when LACP may enable it, else when its
    link is up. Its LACP says the link is individual (no aggregation bit: OVS
    sets it only for more than one member)."""
    members = {}
    for i in ifaces:
        lm = (lacp or {}).get("members", {}).get(i)
        enabled = lm.get("may_enable", False) if lm else (links or {}).get(i) == "up"
        members[i] = {"enabled": bool(enabled), "active": bool(enabled), "may_enable": enabled}
    return {"bond_mode": None, "lacp_status": (lacp or {}).get("status"),
            "active_member": next((i for i, m in members.items() if m["enabled"]), None),
            "members": members}


def fdb_entries(rows, ofports, owner, bridge, park=None):
    """``parse_fdb_show`` rows with their port numbers as names: {ofport: iface}
    from the Interface table, {iface: OVS port} (a bond's members -> the bond),
    LOCAL -> the bridge. Entries in VLAN ``park`` (where a LAG out of the
    domain waits, :meth:`OvsSwitch.bridge_member_remove`) are not the domain's:
    left out."""
    out = []
    for r in rows:
        if park is not None and r["vlan"] == park:
            continue
        iface = bridge if r["port"] == "LOCAL" else ofports.get(r["port"], r["port"])
        out.append({"mac": r["mac"], "port": owner.get(iface, iface), "vlan": r["vlan"],
                    "flags": [], "master": bridge})
    return out


def switch_lag_from_ovs(name, bond, lacp=None, links=None):
    """An OVS bond as a :class:`SwitchLag`: a member is selected when OVS
    enabled it and, under LACP, its actor state has sync, collecting and
    distributing; ``links`` ({iface: "up"|"down"}, Interface link_state) for
    each member's oper state; the LAG's MAC is its LACP system id."""
    members = {}
    for p, s in bond["members"].items():
        up = (links or {}).get(p, "up" if s["enabled"] else "down") == "up"
        if lacp is not None and p in lacp["members"]:
            lm = lacp["members"][p]
            sel = s["enabled"] and lm["actor_state"] & IN_USE == IN_USE
            members[p] = LagMember(p, up, sel, lm["actor_state"], lm["partner_state"],
                                   lm["partner_sys_id"])
        else:
            members[p] = LagMember(p, up, s["enabled"])
    return SwitchLag(name, "lacp" if lacp is not None else "static",
                     any(m.selected for m in members.values()), members, 0,
                     lacp["sys_id"] if lacp is not None else None)


def offload_from_flows(lag, members, flows, hw_offload):
    """:class:`OffloadEvidence` of LAG ``lag`` from the datapath flows that come
    in on its ``members`` (parse_dump_flows) and ``other_config:hw-offload``."""
    mine = [f for f in flows if f["in_port"] in members]
    on = [f for f in mine if f["offloaded"]]
    dps = sorted({f["dp"] or "ovs" for f in mine})
    signals = {"hw-offload": hw_offload or "false",
               "datapath flows in on the LAG": f"{len(mine)} ({len(on)} offloaded; dp "
                                               f"{', '.join(dps) or 'none'})"}
    if on and len(on) == len(mine):
        return OffloadEvidence(lag, "offloaded", signals)
    if mine:
        return OffloadEvidence(lag, "not_offloaded", signals,
                               () if hw_offload == "true" else
                               ("other_config:hw-offload=true over a NIC with tc flower offload",))
    return OffloadEvidence(lag, "unknown", signals, ("datapath flows in on the LAG's members",))


# ------------------------------------------------------------------ the driver
class OvsSwitch(LinuxSwitch):
    platform = "ovs"
    netdev_ports = True
    # a member taken out of an OVS bond just stops sending LACPDUs: the partner
    # deselects it at its LACP timeout
    lacp_leave_notifies = False

    # ---- plumbing
    def vsctl(self, *args, check=True):
        return self.node.run("ovs-vsctl --timeout=10 " + " ".join(args), check=check)

    def _ports(self):
        """{port name: row} of every OVS Port, with its bridge (one round trip)."""
        out = self.vsctl(
            "--format=json --columns=_uuid,name,interfaces,external_ids,tag,trunks,vlan_mode,"
            "bond_mode,lacp,other_config list Port; echo @@; ovs-vsctl --timeout=10 "
            "--format=json --columns=_uuid,name list Interface; echo @@; ovs-vsctl --timeout=10 "
            "--format=json --columns=name,ports list Bridge").stdout
        p_text, i_text, b_text = out.split("@@")
        ports = {p["_uuid"]: p for p in parse_vsctl_list(p_text)}
        ifaces = {i["_uuid"]: i["name"] for i in parse_vsctl_list(i_text)}
        for br in parse_vsctl_list(b_text):
            for u in _set(br["ports"]):
                if u in ports:
                    ports[u]["bridge"] = br["name"]
        out = {}
        for p in ports.values():
            # interface name -> its record's uuid, in the port's order
            p["iface_uuids"] = {ifaces[i]: i for i in _set(p["interfaces"]) if i in ifaces}
            p["iface_names"] = list(p["iface_uuids"])
            out[p["name"]] = p
        return out

    def _bridges(self):
        out = self.vsctl("--format=json --columns=name,external_ids list Bridge").stdout
        return {b["name"]: b for b in parse_vsctl_list(out)}

    def _refuse_unless_ours(self, what, row):
        if (row.get("external_ids") or {}).get("laghil") != "made":
            raise SwitchError(f"switch {self.node.name}: {what} exists and is not laghil's "
                              "(no external_ids:laghil=made): left alone")

    @staticmethod
    def hold_bridge(name):
        return check_ifname(f"{name}-hold", "holding bridge of an OVS LAG")

    # ---- LAGs
    def lag_create(self, name, ports, mode, *, defer, lacp_rate="fast", min_links=None,
                   miimon=None, xmit_hash_policy=None):
        """An OVS bond over ``ports`` in a holding bridge of its own: "lacp"
        (balance-tcp, LACP active, lacp-time from ``lacp_rate``), "static"
        (balance-slb taking broadcasts on every member), or OVS's own
        "balance-slb" / "active-backup". min_links OVS has not: refused
        (SwitchRefused naming the capability) before any change."""
        check_ifname(name, "LAG name")
        ports = [self._port(p) for p in ports]
        if mode not in BOND_MODES:
            raise SwitchRefused(f"switch {self.node.name}: LAG {name} ({mode}) refused: OVS "
                                f"bond modes are {', '.join(BOND_MODES)}",
                                f"unsupported mode: {mode}")
        if min_links is not None:
            raise SwitchRefused(f"switch {self.node.name}: LAG {name}: OVS bonds have no "
                                "min-links (a bond stays up while one member is enabled)",
                                "unsupported option: min_links", capability="min_links")
        hold = self.hold_bridge(name)
        have, bridges = self._ports(), self._bridges()
        owner = {i: row for row in have.values() for i in row["iface_names"]}
        for what in (name, *ports):
            row = have.get(what) or owner.get(what)
            if row is not None:
                raise SwitchError(f"switch {self.node.name}: {what} is already in OVS (port "
                                  f"{row['name']}, bridge {row.get('bridge')}): left alone")
        if hold in bridges:
            raise SwitchError(f"switch {self.node.name}: bridge {hold} exists: left alone")
        bond_mode, lacp, other = BOND_MODES[mode]
        defer(self.lag_remove_undo(name, ports))
        opts = [f"bond_mode={bond_mode}", f"lacp={lacp}", MARK]
        opts += [f"other_config:{k}={v}" for k, v in other.items()]
        if lacp != "off":
            # the system id pinned to the first member's MAC (as a Linux bond's): OVS's
            # default is its bridge's MAC, which changes when bridge_create moves the bond
            opts += [f"other_config:lacp-time={'fast' if lacp_rate == 'fast' else 'slow'}",
                     f"other_config:lacp-system-id=$(cat /sys/class/net/{qif(ports[0])}/address)"]
        opts.append("bond_updelay=0 bond_downdelay=0")
        self.vsctl(f"-- add-br {qif(hold)} -- set Bridge {qif(hold)} {MARK} "
                   f"-- add-bond {qif(hold)} {qif(name)} {' '.join(qif(p) for p in ports)} "
                   + " ".join(opts))
        return MadeLag(self.node.name, name, tuple(ports), mode,
                       lambda: self.lag_remove(name, ports))

    def lag_remove(self, name, ports):
        """Remove OVS bond ``name`` (wherever it is) and its holding bridge, if
        laghil's (idempotent; a port or bridge not marked laghil's is refused)."""
        check_ifname(name, "LAG name")
        have, bridges = self._ports(), self._bridges()
        hold = self.hold_bridge(name)
        cmds = []
        if name in have:
            self._refuse_unless_ours(f"OVS port {name}", have[name])
            cmds.append(f"-- --if-exists del-port {qif(name)}")
        if hold in bridges:
            self._refuse_unless_ours(f"OVS bridge {hold}", bridges[hold])
            cmds.append(f"-- --if-exists del-br {qif(hold)}")
        if cmds:
            self.vsctl(" ".join(cmds))

    def _read(self, name):
        """(bond, lacp, links) of OVS port ``name``. A port left with one
        interface is no bond to OVS (``bond/show``: "no such bond"): its one
        member is read from its LACP state, else from its link."""
        out = self.node.run(
            f"ovs-appctl bond/show {qif(name)} 2>&1; echo @@LACP; "
            f"ovs-appctl lacp/show {qif(name)} 2>/dev/null; echo @@IF; "
            f"ovs-vsctl --format=json --columns=_uuid,name,link_state list Interface; echo @@PORT; "
            f"ovs-vsctl --format=json --columns=name,interfaces list Port {qif(name)}").stdout
        bond_text, _, rest = out.partition("@@LACP")
        lacp_text, _, rest = rest.partition("@@IF")
        if_text, _, port_text = rest.partition("@@PORT")
        lacp = parse_lacp_show(lacp_text) if lacp_text.strip() else None
        ifaces = parse_vsctl_list(if_text)
        links = {r["name"]: r["link_state"] for r in ifaces}
        if "no such bond" in bond_text:
            names = {r["_uuid"]: r["name"] for r in ifaces}
            row = parse_vsctl_list(port_text)[0]
            bond = one_interface_port([names[u] for u in _set(row["interfaces"])], lacp, links)
        else:
            bond = parse_bond_show(bond_text)
        return bond, lacp, links

    def lag_state(self, name):
        check_ifname(name, "LAG name")
        return switch_lag_from_ovs(name, *self._read(name))

    def left_behind(self, name, ports):
        have = self._ports()
        out = [f"port {name}"] if name in have else []
        out += [f"member {p}" for p in ports if any(p in r["iface_names"] for r in have.values())]
        return out

    def lag_member_remove(self, name, port, *, defer):
        """Take ``port`` out of bond ``name`` (its Interface record removed: the
        netdev leaves OVS, left up). Returns the undo (registered first): the
        interface back in the bond."""
        self._port(port)
        have = self._ports()
        if name not in have or port not in have[name]["iface_names"]:
            raise SwitchError(f"switch {self.node.name}: {port} is not in OVS bond {name}")
        self._refuse_unless_ours(f"OVS port {name}", have[name])
        if len(have[name]["iface_names"]) <= 2:
            raise SwitchRefused(
                f"switch {self.node.name}: {port} out of {name}: OVS has no bond of one "
                "interface: the port left is a plain port whose LACP says individual (OVS "
                "sets the aggregation bit only with more than one member), so the partner "
                "re-aggregates (measured on the rack: 5.3-5.5 s without traffic); a LAG of "
                "three or more members can lose one", "a bond needs two interfaces",
                capability="lag_member_removal")
        undo = self._undo("ovs_iface_add", [name, port], f"{port} back into {name}")
        defer(undo)
        self.vsctl(f"-- remove Port {qif(name)} interfaces {have[name]['iface_uuids'][port]}")
        return undo

    def ovs_iface_add(self, name, port):
        """Interface ``port`` into OVS port ``name`` (idempotent)."""
        self._port(port)
        have = self._ports()
        if port in have.get(name, {}).get("iface_names", []):
            return
        self.vsctl(f"-- --id=@i create Interface name={qif(port)} "
                   f"-- add Port {qif(name)} interfaces @i")

    def ovs_iface_del(self, name, port):
        """Interface ``port`` out of OVS port ``name`` (idempotent)."""
        u = self._ports().get(name, {}).get("iface_uuids", {}).get(port)
        if u is not None:
            self.vsctl(f"-- remove Port {qif(name)} interfaces {u}")

    def lag_member_add(self, name, port, *, defer):
        self._port(port)
        have = self._ports()
        if name not in have:
            raise SwitchError(f"switch {self.node.name}: no OVS bond {name}")
        self._refuse_unless_ours(f"OVS port {name}", have[name])
        defer(self._undo("ovs_iface_del", [name, port], f"{port} out of {name}"))
        self.ovs_iface_add(name, port)

    # ---- L2
    def bridge_create(self, name, members, *, defer, vlans=()):
        """An OVS bridge (standalone: NORMAL forwarding, MAC learning) over
        ``members``: switch ports are added, LAGs moved in from their holding
        bridges (their Port records kept). ``vlans``: each member a trunk of
        them with VLAN 1 native untagged; none: plain ports."""
        check_ifname(name, "bridge name")
        vl = [_vid(v) for v in vlans]
        have, bridges = self._ports(), self._bridges()
        if name in bridges:
            raise SwitchError(f"switch {self.node.name}: OVS bridge {name} exists: left alone")
        moves, adds = [], []
        for m in members:
            check_ifname(m, "bridge member")
            if m in have:
                self._refuse_unless_ours(f"OVS port {m}", have[m])
                if have[m].get("bridge") != self.hold_bridge(m):
                    raise SwitchError(f"switch {self.node.name}: {m} is in bridge "
                                      f"{have[m].get('bridge')}, not its holding bridge")
                moves.append(m)
            else:
                adds.append(self._port(m))
        defer(self._undo("ovs_bridge_remove", [name, moves], f"delete bridge {name}"))
        vopts = (f"vlan_mode=native-untagged tag=1 trunks={','.join(map(str, vl))}" if vl
                 else "")
        cmd = [f"-- add-br {qif(name)} -- set Bridge {qif(name)} {MARK}"]
        for m in adds:
            cmd.append(f"-- add-port {qif(name)} {qif(m)} {vopts} {MARK}")
        self.vsctl(" ".join(cmd))
        for m in moves:
            self._move(have[m], self.hold_bridge(m), name, vopts)
        self.node.run(f"ip link set dev {qif(name)} up")

    def _move(self, row, src, dst, vopts=""):
        """OVS port ``row`` (a :meth:`_ports` row) from bridge ``src`` to ``dst``,
        its record kept (one transaction)."""
        u = row["_uuid"]
        self.vsctl(f"-- remove Bridge {qif(src)} ports {u} -- add Bridge {qif(dst)} ports {u}"
                   + (f" -- set Port {qif(row['name'])} {vopts}" if vopts else ""))

    def ovs_bridge_remove(self, name, moved):
        """Undo of :meth:`bridge_create` (idempotent): the LAGs ``moved`` in go
        back to their holding bridges (VLAN settings cleared), then the bridge
        goes with the rest of its ports."""
        have, bridges = self._ports(), self._bridges()
        if name not in bridges:
            return
        self._refuse_unless_ours(f"OVS bridge {name}", bridges[name])
        for m in moved:
            if have.get(m, {}).get("bridge") == name and self.hold_bridge(m) in bridges:
                self._move(have[m], name, self.hold_bridge(m))
                self.vsctl(f"-- clear Port {qif(m)} tag trunks vlan_mode")
        self.vsctl(f"-- --if-exists del-br {qif(name)}")

    def bridge_member_remove(self, bridge, member, *, defer):
        """``member`` out of ``bridge``'s L2 domain. OVS has no port outside a
        bridge, and moving a bond to another bridge rebuilds it (its LACP
        restarts: measured 416 ms before traffic resumed once it was back), so a
        LAG leaves the domain as a NOS's port-channel leaves its VLANs: it stays,
        an access port of a VLAN no other port carries (:data:`PARK_VLAN`), its
        MACs flushed by OVS, its LACP untouched. A plain port is deleted. The undo
        (registered first, also returned) puts back exactly the VLANs it had."""
        have = self._ports()
        row = have.get(member)
        if row is None or row.get("bridge") != bridge:
            raise SwitchError(f"switch {self.node.name}: {member} is not a port of {bridge}")
        self._refuse_unless_ours(f"OVS port {member}", row)
        words = _vlan_words(row)
        if self.hold_bridge(member) in self._bridges():
            park = _park_vlan(bridge, have)
            undo = self._undo("ovs_port_vlans", [member, words or ["none"]],
                              f"{member} back into {bridge}'s VLANs")
            defer(undo)
            self.vsctl(f"-- set Port {qif(member)} vlan_mode=access tag={park} "
                       f"-- clear Port {qif(member)} trunks")
        else:
            undo = self._undo("ovs_port_add", [bridge, member, words],
                              f"{member} back into {bridge}")
            defer(undo)
            self.vsctl(f"-- del-port {qif(bridge)} {qif(member)}")
        return undo

    def ovs_port_vlans(self, port, words):
        """Port ``port``'s VLAN settings set to ``words`` ([vlan_mode, tag,
        trunks...], or ["none"]: none), idempotent."""
        check_ifname(port, "OVS port")
        if words == ["none"] or not words:
            self.vsctl(f"-- clear Port {qif(port)} vlan_mode tag trunks")
        else:
            self.vsctl(f"-- clear Port {qif(port)} trunks -- set Port {qif(port)} "
                       f"{_vopts(words)}")

    def ovs_port_add(self, bridge, port, vlan_words):
        """Plain port ``port`` into ``bridge`` with its VLAN words (idempotent)."""
        self._port(port)
        if port in self._ports():
            return
        self.vsctl(f"-- add-port {qif(bridge)} {qif(port)} {_vopts(vlan_words)} {MARK}")

    def bridge_member_add(self, bridge, member, *, defer, vlans=None):
        self._port(member)
        defer(self._undo("ovs_port_del", [bridge, member], f"{member} out of {bridge}"))
        vw = ["native-untagged", "1", *map(str, vlans)] if vlans else []
        self.ovs_port_add(bridge, member, vw)

    def ovs_port_del(self, bridge, port):
        have = self._ports()
        if port in have:
            self._refuse_unless_ours(f"OVS port {port}", have[port])
            self.vsctl(f"-- --if-exists del-port {qif(bridge)} {qif(port)}")

    def lag_delete(self, name, *, defer):
        """Delete bond ``name`` (and with it its place in a bridge and its
        VLANs); the undo (registered first, also returned) rebuilds it with the
        same members, mode, LACP settings and VLANs in the same bridge."""
        have = self._ports()
        row = have.get(name)
        if row is None:
            raise SwitchError(f"switch {self.node.name}: no OVS bond {name}")
        self._refuse_unless_ours(f"OVS port {name}", row)
        oc = row["other_config"] or {}
        spec = [row["bridge"], row["bond_mode"] or "active-backup", row["lacp"] or "off",
                oc.get("lacp-time", "slow"), oc.get("all-members-active", "false"),
                oc.get("lacp-system-id", "none"), *_vlan_words(row)]
        undo = self._undo("ovs_bond_rebuild", [name, row["iface_names"], spec],
                          f"rebuild LAG {name} in {row['bridge']}")
        defer(undo)
        self.vsctl(f"-- del-port {qif(name)}")
        return undo

    def ovs_bond_rebuild(self, name, ifaces, spec):
        """Bond ``name`` over ``ifaces`` again: ``spec`` [bridge, bond_mode, lacp,
        lacp-time, all-members-active, lacp-system-id or "none", vlan words...]
        (idempotent)."""
        if name in self._ports():
            return
        bridge, bond_mode, lacp, lacp_time, all_active, sys_id, *vw = spec
        for w in (bridge, bond_mode, lacp, lacp_time, all_active, *ifaces):
            check_ifname(w, "OVS bond setting")
        sid = "" if sys_id == "none" else f"other_config:lacp-system-id={check_mac(sys_id)} "
        self.vsctl(f"-- add-bond {qif(bridge)} {qif(name)} {' '.join(qif(p) for p in ifaces)} "
                   f"bond_mode={bond_mode} lacp={lacp} other_config:lacp-time={lacp_time} "
                   f"other_config:all-members-active={all_active} {sid}"
                   f"bond_updelay=0 bond_downdelay=0 {_vopts(vw)} {MARK}")

    def fdb(self, bridge):
        """[{"mac", "port", "vlan", "flags"}] learned in ``bridge``: OVS names an
        entry's port by an OpenFlow port number (a bond's: one of its members'),
        given here as the OVS port's name (the bond's), LOCAL as the bridge."""
        out = self.node.run(f"ovs-appctl fdb/show {qif(bridge)}; echo @@; ovs-vsctl "
                            "--format=json --columns=name,ofport list Interface").stdout
        fdb_text, _, of_text = out.partition("@@")
        ofports = {str(r["ofport"]): r["name"] for r in parse_vsctl_list(of_text)}
        owner = {i: p for p, row in self._ports().items() for i in row["iface_names"]}
        return fdb_entries(parse_fdb_show(fdb_text), ofports, owner, bridge, PARK_VLAN)

    def offload_evidence(self, name):
        lag = self.lag_state(name)
        out = self.node.run("ovs-appctl dpctl/dump-flows -m; echo @@HW; "
                            "ovs-vsctl --if-exists get Open_vSwitch . other_config:hw-offload"
                            ).stdout
        flows, _, hw = out.partition("@@HW")
        return offload_from_flows(name, list(lag.members), parse_dump_flows(flows),
                                  hw.strip().strip('"') or None)

    def describe(self):
        out = self.node.run("ovs-vswitchd --version | head -1; uname -r; "
                            "ovs-vsctl --if-exists get Open_vSwitch . other_config:hw-offload"
                            ).stdout.splitlines() + ["", "", ""]
        m = re.search(r"(\d+\.\d+\.\d+)", out[0])
        hw = out[2].strip().strip('"')
        return {"platform": self.platform,
                "version": f"Open vSwitch {m.group(1) if m else out[0].strip()} "
                           f"({'tc offload' if hw == 'true' else 'kernel datapath'}, "
                           f"Linux {out[1].strip()})",
                "lag_limit": ("none: a software LAG (OVS kernel datapath)" if hw != "true" else
                              "unknown: tc flower offload (the NIC's e-switch limits)")}

    # ---- health: the kernel's log and ovs-vswitchd's own
    def log_mark(self):
        out = self.node.run("cat /proc/uptime; wc -c < /var/log/openvswitch/ovs-vswitchd.log"
                            ).stdout.splitlines()
        return (parse_uptime_mark(out[0]), int(out[1].strip()) if len(out) > 1 else 0)

    def kernel_faults(self, since):
        t, offset = since           # log_mark's (dmesg clock, vswitchd log size)
        out = self.node.run(f"dmesg; echo @@OVS; tail -c +{int(offset) + 1} "
                            "/var/log/openvswitch/ovs-vswitchd.log").stdout
        kernel, _, ovs = out.partition("@@OVS")
        return kernel_fault_lines(kernel, t) + ovs_log_errors(ovs)


def ovs_log_errors(text):
    """Lines of an OVS daemon log at level ERR or EMER (``...|bond|ERR|...``)."""
    return [ln for ln in text.splitlines() if re.search(r"\|(ERR|EMER)\|", ln)]


# the VLAN a LAG taken out of the L2 domain is parked in (no other port carries it)
PARK_VLAN = 4094


def _park_vlan(bridge, ports):
    """:data:`PARK_VLAN`, if no port of ``bridge`` carries it (else SwitchError)."""
    for name, row in ports.items():
        if row.get("bridge") != bridge:
            continue
        if row.get("tag") == PARK_VLAN or PARK_VLAN in _set(row.get("trunks")):
            raise SwitchError(f"{bridge}: port {name} carries VLAN {PARK_VLAN}, where a LAG out "
                              "of the domain would be parked")
    return PARK_VLAN


def _vlan_words(row):
    """A port's VLAN settings as journal words: [] or [vlan_mode, tag, vid...]."""
    mode, tag = row.get("vlan_mode"), row.get("tag")
    if not mode:
        return []
    return [mode, str(tag if tag not in (None, []) else 0), *map(str, _set(row.get("trunks")))]


def _vopts(words):
    if not words:
        return ""
    mode, tag, *trunks = words
    check_ifname(mode, "OVS vlan_mode")
    return (f"vlan_mode={mode} tag={_vid(tag)}"
            + (f" trunks={','.join(str(_vid(t)) for t in trunks)}" if trunks else ""))


__all__ = ["OvsSwitch", "parse_bond_show", "parse_lacp_show", "parse_fdb_show",
           "parse_dump_flows", "parse_vsctl_list", "switch_lag_from_ovs", "offload_from_flows",
           "ovs_log_errors"]
