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
from .base import LagMember, MadeLag, SwitchDriver, SwitchError, SwitchLag

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
        from .nos import parse_version
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
        from .nos import lag_number
        self.node.run("; ".join(self.lag_delete_commands(
            lag_number(name, 1, 9999), [self._port(p) for p in ports])), check=False)

    def port_no_shutdown(self, port):
        self.node.run(f"sudo config interface startup {q(self._port(port))}")

    def lag_create(self, name, ports, mode, *, defer, lacp_rate="fast", min_links=None, **_):
        from .nos import lag_number
        if mode not in ("static", "lacp"):
            raise SwitchError(f"switch {self.node.name}: LAG mode {mode!r} (static or lacp)")
        number = lag_number(name, 1, 9999)
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
        from .nos import lag_number
        pc = pc_name(lag_number(name, 1, 9999))
        r = self.node.run(f"teamdctl {pc} state dump", check=False)
        if r.rc != 0:
            raise SwitchError(f"switch {self.node.name}: no {pc} ({name}): "
                              f"{(r.stderr or r.stdout).strip()[:120]}")
        return lag_from_teamd(pc, r.stdout)
