"""Arista EOS. Config lines per the EOS manual (channel-group on the member,
``lacp timer fast``, ``port-channel min-links``); state from ``show
port-channel summary`` parsed with ntc-templates' TextFSM template (a
maintained template library), tested on real output from that project's
tests (tests/data/samples/ntc-templates--arista_eos_*.raw)."""

import json
import re
from dataclasses import replace

from ...parsing import parser
from .base import LagMember, SwitchError, SwitchLag
from .nos import NosSwitch, colon_mac, iface_key, lacp_state, lacp_system_mac, vlan_members

ABBREV = {"Et": "Ethernet", "Po": "Port-Channel"}


def canonical(name):
    """``Et5`` / ``Ethernet5`` -> ``Ethernet5``; ``Po105`` -> ``Port-Channel105``."""
    m = re.match(r"^([A-Za-z-]+?)(\d[\d/]*)$", name)
    if not m:
        return name
    word, num = m.groups()
    return f"{ABBREV.get(word, word)}{num}"


@parser('EOS show port-channel summary')
def parse_portchannel_summary(text):
    """``show port-channel summary`` -> {number: SwitchLag}. A member is
    selected when bundled in the port-channel (flag P), up unless D."""
    try:
        from ntc_templates.parse import parse_output
    except ImportError:
        raise SwitchError("parsing EOS output needs ntc-templates (pip install laghil[nos])") \
            from None
    out = {}
    for row in parse_output(platform="arista_eos", command="show port-channel summary",
                            data=text):
        num = int(re.sub(r"\D", "", row["bundle_name"]))
        members = {}
        for port, flags in zip(row["member_interface"], row["member_interface_status"]):
            p = canonical(port)
            members[p] = LagMember(p, "D" not in flags, "P" in flags)
        mode = "lacp" if row["bundle_protocol"].upper().startswith("LACP") else "static"
        out[num] = SwitchLag(canonical(row["bundle_name"]), mode, "U" in row["bundle_status"],
                             members)
    return out


@parser('show vlan (EOS, NX-OS)')
def parse_show_vlan(text, platform):
    """``show vlan`` -> {vid: {iface_key}}, parsed with ntc-templates' TextFSM
    template for ``platform`` (arista_eos, cisco_nxos); tested on that project's
    real output (tests/data/samples/ntc-templates--*_show_vlan.raw)."""
    try:
        from ntc_templates.parse import parse_output
    except ImportError:
        raise SwitchError("parsing NOS output needs ntc-templates (pip install laghil[nos])") \
            from None
    return vlan_members((row["vlan_id"], row["interfaces"])
                        for row in parse_output(platform=platform, command="show vlan", data=text))


def _lacp_ports(text, what):
    try:
        d = json.loads(text)
    except ValueError as e:
        raise SwitchError(f"EOS {what} | json: not JSON ({e}): {text[:80]!r}") from None
    for pc in (d.get("portChannels") or {}).values():
        yield from (pc.get("interfaces") or {}).items()


@parser('EOS show lacp interface detailed | json')
def parse_lacp_actor(text):
    """``show lacp interface detailed | json`` -> {port: actor state byte}
    (the named bits of ``actorPortState``; ANTA's fixtures of it)."""
    return {canonical(p): lacp_state(d.get("actorPortState") or {})
            for p, d in _lacp_ports(text, "show lacp interface detailed")}


@parser('EOS show lacp neighbor | json')
def parse_lacp_partner(text):
    """``show lacp neighbor | json`` -> {port: (partner state byte, partner
    system MAC)} (a real capture kept by the NANOG 77 NRFU tutorial)."""
    return {canonical(p): (lacp_state(d.get("partnerPortState") or {}),
                           lacp_system_mac(d["partnerSystemId"]) if d.get("partnerSystemId")
                           else None)
            for p, d in _lacp_ports(text, "show lacp neighbor")}


@parser('EOS/NX-OS show interface(s) status')
def parse_interfaces_status(text, platform, command):
    """``show interfaces status`` (EOS) / ``show interface status`` (NX-OS) ->
    {iface_key: up}: up when "connected" (ntc-templates' TextFSM templates,
    tested on that project's real output)."""
    try:
        from ntc_templates.parse import parse_output
    except ImportError:
        raise SwitchError("parsing NOS output needs ntc-templates (pip install laghil[nos])") \
            from None
    return {iface_key(r["port"]): r["status"] == "connected"
            for r in parse_output(platform=platform, command=command, data=text)}


@parser('EOS/NX-OS show mac address-table')
def parse_mac_table(text, platform):
    """``show mac address-table`` -> [{"mac", "port", "vlan", "flags"}], one per
    entry and port, ntc-templates' TextFSM for ``platform`` (arista_eos: the
    unicast and multicast tables, a list of ports each; cisco_nxos: one port,
    "Po10", "sup-eth1(R)", "Drop"): flags the entry's type in lower case
    ("dynamic", "static"); a row whose address is not a MAC is left out."""
    try:
        from ntc_templates.parse import parse_output
    except ImportError:
        raise SwitchError("parsing NOS output needs ntc-templates (pip install laghil[nos])") \
            from None
    out = []
    for r in parse_output(platform=platform, command="show mac address-table", data=text):
        try:
            mac = colon_mac(r["mac_address"])
        except SwitchError:         # not an address (ntc-templates' sample has one such row)
            continue
        ports = r.get("destination_port", r.get("ports"))
        for port in ports if isinstance(ports, list) else [ports]:
            out.append({"mac": mac, "port": port,
                        "vlan": int(r["vlan_id"]), "flags": [r["type"].lower()]})
    return out


class EosSwitch(NosSwitch):
    platform = "eos"
    management_port = r"Management\d+(/\d+)*|Ma\d+(/\d+)*"
    device_type = "arista_eos"
    version_pattern = r"^Software image version:\s*(\S+)"
    model_pattern = r"^Arista\s+(\S+)"
    virtual_model = r"^(vEOS|cEOS)"

    def lag_create_lines(self, number, ports, mode, lacp_rate, min_links):
        lines = []
        for p in ports:
            lines += [f"interface {p}",
                      f"channel-group {int(number)} mode {'active' if mode == 'lacp' else 'on'}"]
            if mode == "lacp":
                lines.append(f"lacp timer {'fast' if lacp_rate == 'fast' else 'normal'}")
        if min_links:
            lines += [f"interface Port-Channel{int(number)}",
                      f"port-channel min-links {int(min_links)}"]
        return lines

    def lag_delete_lines(self, number, ports):
        lines = []
        for p in ports:
            lines += [f"interface {p}", "no channel-group", "no lacp timer"]
        return lines + [f"no interface Port-Channel{int(number)}"]

    def shutdown_lines(self, port, down):
        return [f"interface {port}", "shutdown" if down else "no shutdown"]

    def lags(self):
        return parse_portchannel_summary(self.cli.send("show port-channel summary"))

    def lag_iface(self, number):
        return f"Port-Channel{int(number)}"

    def parse_vlans(self, text):
        return parse_show_vlan(text, "arista_eos")

    def parse_port_status(self, text):
        return parse_interfaces_status(text, "arista_eos", self.status_command)

    def parse_fdb(self, text):
        return parse_mac_table(text, "arista_eos")

    def lag_state(self, name):
        """The port-channel summary, and for an LACP LAG each member's actor
        state (``show lacp interface detailed``), partner state and partner
        system (``show lacp neighbor``), as the switch LAG state check needs them."""
        lag = super().lag_state(name)
        if lag.mode != "lacp":
            return lag
        actor = parse_lacp_actor(self.cli.send("show lacp interface detailed | json"))
        partner = parse_lacp_partner(self.cli.send("show lacp neighbor | json"))
        members = {p: replace(m, actor_state=actor.get(p), partner_state=partner.get(p, (None,))[0],
                              partner_system=partner.get(p, (None, None))[1])
                   for p, m in lag.members.items()}
        return replace(lag, members=members)
