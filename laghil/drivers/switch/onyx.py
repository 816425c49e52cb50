"""NVIDIA (Mellanox) Onyx. Config lines as Onyx takes them on one line each
(``interface ethernet 1/7 channel-group 22 mode active``, as Ansible's
onyx_linkagg module sends them); state from ``show interfaces port-channel
summary | json-print`` (Onyx's structured output), tested on the sample kept by
Ansible's onyx unit tests (tests/data/samples/ansible--onyx_*)."""

import json
import re

from ...parsing import parser
from .base import LagMember, SwitchError, SwitchLag
from .nos import NosSwitch, iface_key, vlan_members

_HEAD = re.compile(r"^\s*(\d+)\s+Po(\d+)\((\w+)\)\s*$")
_MEMBER = re.compile(r"^(Eth[\d/]+)\((\w+)\)$")


def cli_port(port):
    """The lab's ``Eth1/7`` -> Onyx's ``ethernet 1/7``."""
    m = re.match(r"^Eth(\d+/\d+(?:/\d+)?)$", port)
    if not m:
        raise SwitchError(f"Onyx port {port!r}: expected EthN/M (as `show interfaces` names it)")
    return f"ethernet {m.group(1)}"


def json_print(text, what):
    """Onyx's ``| json-print`` output as one object: newer releases give a list of
    one-key objects instead of one object, and both are read."""
    try:
        d = json.loads(text)
    except ValueError as e:
        raise SwitchError(f"Onyx {what}: not JSON ({e}): {text[:80]!r}") from None
    items = {}
    for part in (d if isinstance(d, list) else [d]):
        items.update(part)
    return items


@parser('Onyx show interfaces port-channel summary | json-print')
def parse_portchannel_summary(text):
    """``show interfaces port-channel summary | json-print`` -> {number:
    SwitchLag}: heads "<n> Po<id>(<U|D>)"; members "Eth1/7(P)", selected on P
    (up in port-channel), up unless D."""
    items = json_print(text, "port-channel summary")
    out = {}
    for head, rows in items.items():
        m = _HEAD.match(head)
        if not m:
            continue
        num, state = int(m.group(2)), m.group(3)
        row = rows[0] if isinstance(rows, list) and rows else (rows or {})
        members = {}
        for tok in str(row.get("Member Ports", "")).split():
            mm = _MEMBER.match(tok)
            if not mm:
                raise SwitchError(f"Onyx port-channel {num}: member {tok!r} not EthN/M(flag)")
            port, flag = mm.groups()
            members[port] = LagMember(port, flag != "D", flag == "P")
        mode = "lacp" if str(row.get("Type", "")).upper() == "LACP" else "static"
        out[num] = SwitchLag(f"Po{num}", mode, state == "U", members)
    return out


@parser('Onyx show vlan | json-print')
def parse_show_vlan(text):
    """``show vlan | json-print`` -> {vid: {iface_key}}: per VLAN id its "Ports",
    comma separated over wrapped lines (Ansible's onyx_vlan fixture)."""
    items = json_print(text, "show vlan")
    rows = []
    for vid, row in items.items():
        if not str(vid).isdigit():
            raise SwitchError(f"Onyx show vlan: {vid!r} is not a VLAN id")
        row = row[0] if isinstance(row, list) and row else (row or {})
        rows.append((vid, [p for p in re.split(r"[,\s]+", str(row.get("Ports", ""))) if p]))
    return vlan_members(rows)


@parser('Onyx show interfaces ethernet status | json-print')
def parse_interfaces_status(text):
    """``show interfaces ethernet status | json-print`` -> {iface_key: up}:
    per port a one-element list whose "Operational state" is Up or Down
    (Ansible's onyx_interface fixture); entries without one (a VLAN's) left out."""
    out = {}
    for port, rows in json_print(text, "interfaces status").items():
        row = rows[0] if isinstance(rows, list) and rows else (rows or {})
        if "Operational state" in row:
            out[iface_key(port)] = str(row["Operational state"]).strip().lower() == "up"
    return out


def cli_iface(iface):
    """A port (``Eth1/7``) or ``port-channel 22`` as Onyx's one-line commands name it."""
    return iface if iface.startswith("port-channel ") else cli_port(iface)


class OnyxSwitch(NosSwitch):
    platform = "onyx"
    management_port = r"mgmt\d+"
    device_type = "mellanox_mlnxos"
    version_pattern = r"^Product release:\s*(\S+)"
    model_pattern = r"^Product model:\s*(\S+)"

    def lag_create_lines(self, number, ports, mode, lacp_rate, min_links):
        if min_links:
            raise SwitchError(f"switch {self.node.name}: min_links on Onyx is not driven by "
                              "laghil yet")
        lines = [f"interface port-channel {int(number)}", "exit"]
        for p in ports:
            lines.append(f"interface {cli_port(p)} channel-group {int(number)} mode "
                         f"{'active' if mode == 'lacp' else 'on'}")
            if mode == "lacp" and lacp_rate == "fast":
                lines.append(f"interface {cli_port(p)} lacp rate fast")
        return lines

    def lag_delete_lines(self, number, ports):
        return ([f"interface {cli_port(p)} no channel-group" for p in ports]
                + [f"no interface port-channel {int(number)}"])

    def shutdown_lines(self, port, down):
        return [f"interface {cli_port(port)} {'shutdown' if down else 'no shutdown'}"]

    def lags(self):
        return parse_portchannel_summary(
            self.cli.send("show interfaces port-channel summary | json-print"))

    vlan_command = "show vlan | json-print"
    status_command = "show interfaces ethernet status | json-print"

    def parse_port_status(self, text):
        return parse_interfaces_status(text)

    def parse_vlans(self, text):
        return parse_show_vlan(text)

    def fdb(self, bridge):
        self._cannot("reading the MAC table (no sample of Onyx's `show mac-address-table` "
                     "to parse it on)")

    # Onyx's one-line forms (Ansible's onyx_vlan / onyx_l2_interface modules)
    def lag_iface(self, number):
        return f"port-channel {int(number)}"

    def vlan_create_lines(self, vid):
        return [f"vlan {int(vid)}", "exit"]

    def l2_member_lines(self, iface, vids, tagged):
        i = cli_iface(iface)
        if tagged:
            return [f"interface {i} switchport mode trunk"] + [
                f"interface {i} switchport trunk allowed-vlan add {int(v)}" for v in vids]
        return [f"interface {i} switchport mode access",
                f"interface {i} switchport access vlan {int(vids[0])}"]

    def l2_member_undo_lines(self, iface):
        i = cli_iface(iface)
        return [f"interface {i} switchport mode access", f"interface {i} switchport access vlan 1"]

    def channel_leave_lines(self, port):
        return [f"interface {cli_port(port)} no channel-group"]
