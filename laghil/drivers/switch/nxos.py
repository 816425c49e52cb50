"""Cisco NX-OS. Config lines per the NX-OS interfaces guide (channel-group on
the member, ``lacp rate fast``, ``lacp min-links`` on the port-channel);
state from ``show port-channel summary | json`` (NX-OS's structured output),
tested on the vendor's documented NX-API output
(tests/data/samples/cisco-docs--nxos_show_port-channel_summary.json)."""

import json
import re
from dataclasses import replace

from ...parsing import parser
from .base import LagMember, SwitchError, SwitchLag, check_cli_word
from .eos import parse_interfaces_status, parse_mac_table, parse_show_vlan
from .nos import LACP_BITS, NosSwitch, lacp_system_mac


def _rows(table, row):
    """NX-OS gives a one-row table as an object, more rows as a list."""
    v = (table or {}).get(row, [])
    return [v] if isinstance(v, dict) else list(v)


@parser('NX-OS show port-channel summary | json')
def parse_portchannel_summary(text):
    """``show port-channel summary | json`` -> {number: SwitchLag}: a member is
    selected when bundled (port-status P), up unless D; the channel up on U."""
    try:
        d = json.loads(text)
    except ValueError as e:
        raise SwitchError(f"NX-OS show port-channel summary | json: not JSON ({e}): "
                          f"{text[:80]!r}") from None
    out = {}
    for ch in _rows(d.get("TABLE_channel"), "ROW_channel"):
        try:
            num = int(ch["group"])
            name = ch["port-channel"]
        except (KeyError, ValueError, TypeError):
            raise SwitchError(f"NX-OS port-channel row without group/port-channel: {ch}") \
                from None
        members = {}
        for m in _rows(ch.get("TABLE_member"), "ROW_member"):
            st = m.get("port-status", "")
            members[m["port"]] = LagMember(m["port"], st != "D", st == "P")
        mode = "lacp" if str(ch.get("prtcl", "")).upper() == "LACP" else "static"
        out[num] = SwitchLag(name, mode, "U" in str(ch.get("status", "")), members)
    return out


# NX-OS's names of the LACP state bits, in "Actor Oper State=(Ac-1:To-0:...)"
_NX_BITS = {"Ac": "activity", "To": "timeout", "Ag": "aggregation", "Sy": "synchronization",
            "Co": "collecting", "Di": "distributing", "De": "defaulted", "Ex": "expired"}


def _nx_state(text):
    bits = dict(part.split("-") for part in text.split(":"))
    if set(bits) != set(_NX_BITS) or not set(bits.values()) <= {"0", "1"}:
        raise SwitchError(f"NX-OS LACP state ({text}) not understood")
    return sum(LACP_BITS[_NX_BITS[k]] for k, v in bits.items() if v == "1")


@parser('NX-OS show lacp interface ethernet X')
def parse_lacp_interface(text):
    """``show lacp interface ethernet X`` -> (actor oper state, partner oper
    state, partner MAC): the "Actor/Partner Oper State=(Ac-1:To-0:...)" lines,
    the MAC the neighbor section gives (real output quoted on movingpackets.net)."""
    actor = re.search(r"Actor Oper State=\(([^)]*)\)", text or "")
    partner = re.search(r"Partner Oper State=\(([^)]*)\)", text or "")
    if not actor or not partner:
        raise SwitchError(f"NX-OS show lacp interface: no actor/partner oper state in "
                          f"{(text or '')[:80]!r}")
    neighbor = (text or "").split("Neighbor:", 1)
    mac = re.search(r"MAC Address=\s*(\S+)", neighbor[1]) if len(neighbor) == 2 else None
    return (_nx_state(actor.group(1)), _nx_state(partner.group(1)),
            lacp_system_mac(mac.group(1)) if mac else None)


class NxosSwitch(NosSwitch):
    platform = "nxos"
    management_port = r"mgmt\d+"
    device_type = "cisco_nxos"
    version_pattern = r"^\s*(?:NXOS|system):\s+version\s+(\S+)"
    model_pattern = r"^\s*cisco\s+(Nexus\s*\S+(?:\s+\S+)?)\s+[Cc]hassis"
    virtual_model = r"(C9[35]00v|9000v|NX-?OSv)"

    def lag_create_lines(self, number, ports, mode, lacp_rate, min_links):
        lines = []
        for p in ports:
            lines += [f"interface {p}",
                      f"channel-group {int(number)} mode {'active' if mode == 'lacp' else 'on'}"]
            if mode == "lacp" and lacp_rate == "fast":
                lines.append("lacp rate fast")
        if min_links:
            lines += [f"interface port-channel{int(number)}", f"lacp min-links {int(min_links)}"]
        return lines

    def lag_delete_lines(self, number, ports):
        lines = []
        for p in ports:
            lines += [f"interface {p}", "no channel-group", "no lacp rate"]
        return lines + [f"no interface port-channel{int(number)}"]

    def shutdown_lines(self, port, down):
        return [f"interface {port}", "shutdown" if down else "no shutdown"]

    def lags(self):
        return parse_portchannel_summary(self.cli.send("show port-channel summary | json"))

    def parse_vlans(self, text):
        return parse_show_vlan(text, "cisco_nxos")

    status_command = "show interface status"

    def parse_port_status(self, text):
        return parse_interfaces_status(text, "cisco_nxos", self.status_command)

    def parse_fdb(self, text):
        return parse_mac_table(text, "cisco_nxos")

    def lag_state(self, name):
        """The port-channel summary, and for an LACP LAG each member's actor
        state, partner state and partner MAC (``show lacp interface ethernet X``,
        one read per member), as the switch LAG state check needs them."""
        lag = super().lag_state(name)
        if lag.mode != "lacp":
            return lag
        members = {}
        for p, m in lag.members.items():
            port = check_cli_word(p, "NX-OS port")
            actor, partner, mac = parse_lacp_interface(
                self.cli.send(f"show lacp interface {port.replace('Ethernet', 'ethernet ')}"))
            members[p] = replace(m, actor_state=actor, partner_state=partner,
                                 partner_system=mac)
        return replace(lag, members=members)


