"""SONiC. A PortChannel is a teamd team (its ports the ASIC's ``EthernetN``),
configured with SONiC's own ``config portchannel`` commands over the switch's
shell (SONiC is Linux: laghil's SSH shell session, commands quoted like on any
Linux node). State: ``show interfaces portchannel`` for the summary (pure
parser, tested on sonic-utilities' own test output) and, per PortChannel,
``teamdctl <pc> state dump`` (teamd's JSON: :func:`laghil.drivers.team.
parse_team_state`, tested on our teamd captures) for selected ports and LACP
actor/partner states, as sonic-mgmt's PortChannel tests read it."""

import re

from ...names import q
from ...parsing import parser
from ..team import parse_team_state
from .base import LagMember, MadeLag, SwitchDriver, SwitchError, SwitchLag, check_cli_word
from .nos import lag_number, parse_version

_ROW = re.compile(r"^\s*(\d+)\s+(PortChannel\d+)\s+(\S+)\s*(.*)$")
_PROTO = re.compile(r"^(\w+|N/A)(?:\((\w)\))?(?:\((\w+)\))?$")
_PORT = re.compile(r"^(Ethernet\d+)\((\w)\)(\*?)$")


def pc_name(number):
    return f"PortChannel{int(number):04d}"


@parser('SONiC show interfaces portchannel')
def parse_portchannel_summary(text):
    """``show interfaces portchannel`` -> {number: SwitchLag}: a port selected
    on S (deselected D), the channel up on (Up); "N/A" ports: none."""
    out = {}
    for line in text.splitlines():
        m = _ROW.match(line)
        if not m:
            continue
        num, name, proto, ports = int(m.group(1)), m.group(2), m.group(3), m.group(4).split()
        pm = _PROTO.match(proto)
        if not pm:
            raise SwitchError(f"SONiC portchannel {name}: protocol {proto!r} not understood")
        members = {}
        for tok in ports:
            if tok == "N/A":
                continue
            tm = _PORT.match(tok)
            if not tm:
                raise SwitchError(f"SONiC portchannel {name}: port {tok!r} not EthernetN(S|D)")
            members[tm.group(1)] = LagMember(tm.group(1), True, tm.group(2) == "S" and
                                             not tm.group(3))
        mode = "lacp" if pm.group(1) == "LACP" else "static"
        out[num] = SwitchLag(name, mode, pm.group(3) == "Up", members)
    return out


_CELLS = re.compile(r"^\|(.*)\|\s*$")


@parser('SONiC show vlan brief')
def parse_vlan_brief(text):
    """``show vlan brief`` -> {vid: {port: "tagged"|"untagged"}}: a row with a
    VLAN ID starts a VLAN, the rows under it without one add its ports (the
    table sonic-utilities' tests keep)."""
    out, vid = {}, None
    for line in (text or "").splitlines():
        m = _CELLS.match(line)
        if not m:
            continue
        cells = [c.strip() for c in m.group(1).split("|")]
        if len(cells) < 4 or cells[0] == "VLAN ID":
            continue
        if cells[0]:
            if not cells[0].isdigit():
                raise SwitchError(f"SONiC show vlan brief: VLAN ID {cells[0]!r} not a number")
            vid = int(cells[0])
            out[vid] = {}
        if vid is not None and cells[2]:
            out[vid][cells[2]] = cells[3]
    return out


@parser('SONiC show mac')
def parse_show_mac(text):
    """``show mac`` -> [{"mac", "port", "vlan", "flags"}] (flags: the type, lower case)."""
    out = []
    for line in (text or "").splitlines():
        parts = line.split()
        if len(parts) == 5 and parts[0].isdigit() and parts[1].isdigit():
            out.append({"mac": parts[2].lower(), "port": parts[3], "vlan": int(parts[1]),
                        "flags": [parts[4].lower()]})
    return out


@parser('SONiC show interfaces status')
def parse_interfaces_status(text):
    """``show interfaces status`` -> {interface: oper up}: the columns cut where
    the dashes under the header say (cells may be empty or hold spaces)."""
    lines = (text or "").splitlines()
    dash = next((i for i, ln in enumerate(lines) if ln.strip() and set(ln.strip()) <= {"-", " "}),
                None)
    if dash is None or dash == 0:
        raise SwitchError(f"SONiC show interfaces status: no header: {lines[:1]!r}")
    spans = [m.span() for m in re.finditer(r"-+", lines[dash])]
    head = [lines[dash - 1][a:b].strip() for a, b in spans]
    if "Interface" not in head or "Oper" not in head:
        raise SwitchError(f"SONiC show interfaces status: no Interface / Oper column in {head}")
    i, o = head.index("Interface"), head.index("Oper")
    out = {}
    for ln in lines[dash + 1:]:
        cells = [ln[a:b].strip() for a, b in spans]
        if cells[i]:
            out[cells[i]] = cells[o] == "up"
    return out


def lag_from_teamd(name, text):
    """``teamdctl <pc> state dump`` -> SwitchLag with LACP states and partner."""
    st = parse_team_state(text)
    members = {}
    for p, s in st.ports.items():
        members[p] = LagMember(p, s.link_up, bool(s.selected) and s.up, s.actor_state,
                               s.partner_state, None)
    return SwitchLag(name, "lacp" if st.runner_name == "lacp" else "static",
                     any(m.selected for m in members.values()), members)


class SonicSwitch(SwitchDriver):
    netdev_ports = True
    platform = "sonic"
    management_port = r"eth\d+"        # SONiC: eth0 (front-panel ports are EthernetN)
    # teamd's lacp runner, on a port's removal, does not send a last LACPDU out
    # of sync: the partner notices at its LACP timeout
    lacp_leave_notifies = False
    port_word = "SONiC port"

    @staticmethod
    def lag_create_commands(number, ports, mode, lacp_rate, min_links):
        pc = pc_name(number)
        add = f"sudo config portchannel add {pc}"
        if mode == "lacp" and lacp_rate == "fast":
            add += " --fast-rate true"
        if mode == "static":
            add += " --static true"
        if min_links:
            add += f" --min-links {int(min_links)}"
        return [add] + [f"sudo config portchannel member add {pc} {q(p)}" for p in ports]

    @staticmethod
    def lag_delete_commands(number, ports):
        pc = pc_name(number)
        return ([f"sudo config portchannel member del {pc} {q(p)} 2>/dev/null; true"
                 for p in ports] + [f"sudo config portchannel del {pc} 2>/dev/null; true"])

    def describe(self):
        text = self.node.run("show version").stdout
        return {"platform": self.platform,
                "version": parse_version(text, r"^SONiC Software Version:\s*(\S+)"),
                "lag_limit": "unknown: not read by laghil's driver"}

    def lags(self):
        return parse_portchannel_summary(self.node.run("show interfaces portchannel").stdout)

    def port_shutdown(self, port, *, defer):
        port = self.check_shut_port(port)
        defer(self.port_up_undo(port))
        self.node.run(f"sudo config interface shutdown {q(port)}")

    def lag_remove(self, name, ports):
        self.node.run("; ".join(self.lag_delete_commands(
            self._number(name), [self._port(p) for p in ports])), check=False)

    def port_no_shutdown(self, port):
        self.node.run(f"sudo config interface startup {q(self._port(port))}")

    def lag_create(self, name, ports, mode, *, defer, lacp_rate="fast", min_links=None, **_):
        if mode not in ("static", "lacp"):
            raise SwitchError(f"switch {self.node.name}: LAG mode {mode!r} (static or lacp)")
        number = self._number(name)
        ports = [self._port(p) for p in ports]
        have = self.lags()
        why = [f"{pc_name(number)} already exists and laghil did not make it"] \
            if number in have else []
        why += [f"{p} already in {lag.name}" for lag in have.values() for p in ports
                if p in lag.members]
        if why:
            raise SwitchError(f"switch {self.node.name}: refusing to create LAG {name}: "
                              + "; ".join(why))

        undo = self.lag_remove_undo(name, ports)
        defer(undo)
        for c in self.lag_create_commands(number, ports, mode, lacp_rate, min_links):
            self.node.run(c)
        return MadeLag(self.node.name, name, tuple(ports), mode,
                       lambda: self.lag_remove(name, ports))

    def lag_state(self, name):
        pc = pc_name(self._number(name))
        r = self.node.run(f"teamdctl {pc} state dump", check=False)
        if r.rc != 0:
            raise SwitchError(f"switch {self.node.name}: no {pc} ({name}): "
                              f"{(r.stderr or r.stdout).strip()[:120]}")
        return lag_from_teamd(pc, r.stdout)

    # ---- undo records (laghil.journal SWITCH_UNDOS), each idempotent
    def _number(self, name):
        return lag_number(name, 1, 9999)

    def _member(self, member):
        """The SONiC interface of an L2 member: a port of the lab file, or
        laghil's LAG name as its PortChannel."""
        if member in self.node.spec.ports or member.startswith(("Ethernet", "PortChannel")):
            return self._port(member)
        return pc_name(self._number(member))

    def vlans(self):
        return parse_vlan_brief(self.node.run("show vlan brief").stdout)

    @staticmethod
    def l2_join_commands(vids, iface, tagged):
        return [f"sudo config vlan member add {'' if tagged else '-u '}{int(v)} {q(iface)}"
                for v in vids]

    @staticmethod
    def l2_leave_commands(vids, iface):
        return [f"sudo config vlan member del {int(v)} {q(iface)} 2>/dev/null; true"
                for v in vids]

    def bridge_create(self, name, members, *, defer, vlans=()):
        """laghil's L2 domain: its ``l2_vlan`` with every member untagged in it,
        or the test's ``vlans`` tagged on every member. Refused before any
        change when a VLAN exists or a member is in one."""
        check_cli_word(name, "bridge name")
        vids, tagged = self._domain_vids(vlans)
        ifaces = [self._member(m) for m in members]
        have = self.vlans()
        why = [f"VLAN {v} exists and laghil did not make it" for v in vids if v in have]
        why += [f"{i} is in VLAN {v}" for i in ifaces for v, ports in have.items() if i in ports]
        if why:
            raise SwitchError(f"switch {self.node.name}: refusing the L2 domain {name}: "
                              + "; ".join(why))
        undo = self._undo("sonic_l2_remove", [[str(v) for v in vids], ifaces],
                          f"L2 domain {name} (VLAN {', '.join(map(str, vids))}) removed")
        defer(undo)
        for c in ([f"sudo config vlan add {v}" for v in vids]
                  + [c for i in ifaces for c in self.l2_join_commands(vids, i, tagged)]):
            self.node.run(c)
        return undo

    def sonic_l2_remove(self, vids, ifaces):
        """Undo of bridge_create: every member out of the VLANs, the VLANs deleted."""
        self.node.run("; ".join([c for i in ifaces for c in self.l2_leave_commands(vids, i)]
                                + [f"sudo config vlan del {int(v)} 2>/dev/null; true"
                                   for v in vids]))

    def _domain_of(self, iface):
        have = self.vlans()
        vids = sorted(v for v, ports in have.items() if iface in ports)
        if not vids:
            raise SwitchError(f"switch {self.node.name}: {iface} is in no VLAN")
        tagged = any(have[v][iface] == "tagged" for v in vids)
        return vids, tagged

    def bridge_member_remove(self, bridge, member, *, defer):
        """``member`` out of its VLANs; the undo (registered first, also
        returned) puts it back, tagged or not as it was."""
        iface = self._member(member)
        vids, tagged = self._domain_of(iface)
        undo = self._undo("sonic_l2_join", [iface, ["tagged" if tagged else "untagged",
                                                    *map(str, vids)]],
                          f"{member} back into {bridge}")
        defer(undo)
        self.node.run("; ".join(self.l2_leave_commands(vids, iface)))
        return undo

    def sonic_l2_join(self, iface, spec):
        mode, *vids = spec
        if any(iface in ports for ports in self.vlans().values()):
            return
        for c in self.l2_join_commands(vids, self._member(iface), mode == "tagged"):
            self.node.run(c)

    def bridge_member_add(self, bridge, member, *, defer, vlans=None):
        iface = self._member(member)
        taken = [v for v, ports in self.vlans().items() if iface in ports]
        if taken:
            raise SwitchError(f"switch {self.node.name}: refusing to add {member} to {bridge}: "
                              f"it is in VLAN {taken[0]}")
        vids, tagged = self._domain_vids(vlans)
        undo = self._undo("sonic_l2_remove_member", [iface, [str(v) for v in vids]],
                          f"{member} out of {bridge}")
        defer(undo)
        for c in self.l2_join_commands(vids, iface, tagged):
            self.node.run(c)
        return undo

    def sonic_l2_remove_member(self, iface, vids):
        self.node.run("; ".join(self.l2_leave_commands(vids, self._member(iface))))

    def _pc(self, name):
        number = self._number(name)
        lag = self.lags().get(number)
        if lag is None:
            raise SwitchError(f"switch {self.node.name}: no {pc_name(number)} ({name})")
        alien = [p for p in lag.members if p not in self.node.spec.ports]
        if alien:
            raise SwitchError(f"switch {self.node.name}: refusing to change {pc_name(number)} "
                              f"({name}): {', '.join(alien)} in it are not ports of the lab "
                              "file (laghil did not make it)")
        return pc_name(number), lag

    def lag_member_remove(self, name, port, *, defer):
        port = self._port(port)
        pc, lag = self._pc(name)
        if port not in lag.members:
            raise SwitchError(f"switch {self.node.name}: {port} is not in {pc} (members: "
                              f"{', '.join(lag.members) or 'none'})")
        undo = self._undo("sonic_member_add", [name, port], f"{port} back into {name}")
        defer(undo)
        self.node.run(f"sudo config portchannel member del {pc} {q(port)}")
        return undo

    def sonic_member_add(self, name, port):
        pc, lag = self._pc(name)
        if port not in lag.members:
            self.node.run(f"sudo config portchannel member add {pc} {q(self._port(port))}")

    def lag_member_add(self, name, port, *, defer):
        port = self._port(port)
        pc, _ = self._pc(name)
        taken = [lag.name for lag in self.lags().values() if port in lag.members]
        if taken:
            raise SwitchError(f"switch {self.node.name}: refusing to add {port} to {name}: it "
                              f"is in {taken[0]}")
        undo = self._undo("sonic_member_del", [name, port], f"{port} out of {name}")
        defer(undo)
        self.node.run(f"sudo config portchannel member add {pc} {q(port)}")
        return undo

    def sonic_member_del(self, name, port):
        pc, lag = self._pc(name)
        if port in lag.members:
            self.node.run(f"sudo config portchannel member del {pc} {q(self._port(port))}")

    def lag_delete(self, name, *, defer):
        """Delete the PortChannel with its VLAN memberships; the undo (registered
        first, idempotent, also returned) rebuilds both."""
        pc, lag = self._pc(name)
        ports = [self._port(p) for p in lag.members]
        try:
            vids, tagged = self._domain_of(pc)
            l2 = ["tagged" if tagged else "untagged", *map(str, vids)]
        except SwitchError:
            vids, l2 = [], ["none"]
        undo = self._undo("sonic_lag_rebuild", [name, ports, [lag.mode, *l2]],
                          f"rebuild LAG {name}")
        defer(undo)
        self.node.run("; ".join(self.l2_leave_commands(vids, pc)
                                + self.lag_delete_commands(self._number(name), ports)))
        return undo

    def sonic_lag_rebuild(self, name, ports, spec):
        number = self._number(name)
        if number in self.lags():
            return
        mode, l2, *vids = spec
        for c in self.lag_create_commands(number, [self._port(p) for p in ports], mode, "fast",
                                          None):
            self.node.run(c)
        if l2 != "none":
            for c in self.l2_join_commands(vids, pc_name(number), l2 == "tagged"):
                self.node.run(c)

    def left_behind(self, name, ports):
        lags = self.lags()
        number = self._number(name)
        out = [pc_name(number)] if number in lags else []
        return out + [f"member {p}" for p in ports
                      if any(p in lag.members for lag in lags.values())]

    def fdb(self, bridge):
        """Every entry of the switch's MAC table (laghil's domain is VLANs in it)."""
        return parse_show_mac(self.node.run("show mac").stdout)

    def fdb_on(self, bridge, members):
        ifaces = {self._member(m) for m in members}
        return [e for e in self.fdb(bridge) if e["port"] in ifaces]

    def port_oper_up(self, port):
        port = self._port(port)
        st = parse_interfaces_status(self.node.run("show interfaces status").stdout)
        if port not in st:
            raise SwitchError(f"switch {self.node.name}: {port} is not in `show interfaces "
                              "status`")
        return st[port]

    # SONiC is Linux: its kernel's log is read as on any Linux switch
    def log_mark(self):
        from .linux import parse_uptime_mark
        return parse_uptime_mark(self.node.run("cat /proc/uptime").stdout)

    def kernel_faults(self, since):
        from ...kevents import kernel_fault_lines
        return kernel_fault_lines(self.node.run("sudo dmesg").stdout, since)

