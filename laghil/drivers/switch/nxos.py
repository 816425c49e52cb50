"""Cisco NX-OS. Config lines per the NX-OS interfaces guide (channel-group on
the member, ``lacp rate fast``, ``lacp min-links`` on the port-channel);
state from ``show port-channel summary | json`` (NX-OS's structured output),
tested on the vendor's documented NX-API output
(tests/data/samples/cisco-docs--nxos_show_port-channel_summary.json)."""

import json

from ...parsing import parser
from .base import LagMember, SwitchError, SwitchLag
from .eos import parse_interfaces_status, parse_mac_table, parse_show_vlan
from .nos import NosSwitch


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


