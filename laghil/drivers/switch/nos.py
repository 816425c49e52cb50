"""Switches with a vendor CLI (a NOS), not a POSIX shell: the CLI channel, the
checks every command word passes, and the base of the NOS drivers.

A vendor CLI is not a shell: nothing is quoted or wrapped; instead every word
laghil puts into a command (a port, a LAG number) must match :data:`CLI_WORD`,
so that no input can add a command. The channel is netmiko's (a maintained
library that knows each NOS's prompts, paging and config mode) over the lab's
SSH target, through its jump host when it has one; the password comes from the
lab's ``password_env`` and is redacted from every log like every other secret.

A NOS driver is builders (pure: the config lines of one change and of its
undo) and parsers (pure: the NOS's output -> :class:`~.base.SwitchLag`),
tested on sample output; this base runs them: it reads the switch first and
refuses a LAG number or a port that is not laghil's, registers the undo, sends
the change, and turns a CLI error line into :class:`~.base.SwitchRefused`.
"""

import os
import re
import shutil
import tempfile

from ...parsing import parser
from ...transport.connect import verified_host_key
from .base import (CLI_WORD, MadeLag, OffloadEvidence, SwitchDriver, SwitchError,  # noqa: F401
                   SwitchRefused, check_cli_word)

# lines with which a NOS says a command failed (EOS/NX-OS/Onyx "% ...", Onyx
# '% Unrecognized command "..."', NX-OS "ERROR:")
ERROR_LINE = re.compile(r"^\s*(% ?(Invalid|Incomplete|Ambiguous|Unrecognized|Error|Cannot|Port"
                        r"|Interface)"
                        r"|ERROR:|Error:)", re.M)


def lag_number(name, low=1, high=4096):
    """laghil's LAG name (``lglag2``) -> the NOS's port-channel number (2)."""
    m = re.search(r"(\d+)$", name or "")
    n = int(m.group(1)) if m else None
    if n is None or not low <= n <= high:
        raise SwitchError(f"LAG name {name!r}: needs a trailing number in {low}..{high} for "
                          "the switch's port-channel")
    return n


def iface_key(name):
    """One key per interface, whatever the NOS's spelling: ``Ethernet3`` /
    ``Et3`` / ``Eth3`` -> ``eth3``, ``ethernet 1/3`` -> ``eth1/3``,
    ``Port-Channel1`` / ``port-channel 1`` / ``Po1`` -> ``po1``."""
    n = re.sub(r"\s+", "", name or "").lower()
    m = re.match(r"^(?:ethernet|eth|et)(\d.*)$", n)
    if m:
        return f"eth{m.group(1)}"
    m = re.match(r"^(?:port-channel|portchannel|po)(\d.*)$", n)
    return f"po{m.group(1)}" if m else n


# LACP port state bits by the names NOS JSON gives them (802.1AX actor/partner state)
LACP_BITS = {"activity": 0x01, "timeout": 0x02, "aggregation": 0x04, "synchronization": 0x08,
             "collecting": 0x10, "distributing": 0x20, "defaulted": 0x40, "expired": 0x80}


def lacp_state(flags):
    """{"activity": true, "timeout": false, ...} -> the state byte (absent bits 0)."""
    if not isinstance(flags, dict):
        raise SwitchError(f"LACP port state {flags!r}: expected an object of named bits")
    unknown = set(flags) - set(LACP_BITS)
    if unknown:
        raise SwitchError(f"LACP port state: unknown bits {sorted(unknown)}")
    return sum(bit for name, bit in LACP_BITS.items() if flags.get(name))


def colon_mac(text):
    """``0012.3694.03ec`` / ``00-12-36-94-03-EC`` / ``0:12:...`` -> ``00:12:36:94:03:ec``."""
    octets = re.split(r"[-:.]", str(text).strip())
    if len(octets) == 3:                        # Cisco's and Arista's 0012.3694.03ec
        octets = [o[i:i + 2] for o in octets for i in (0, 2)]
    if len(octets) != 6 or not all(re.fullmatch(r"[0-9a-fA-F]{1,2}", o) for o in octets):
        raise SwitchError(f"{text!r}: not a MAC address")
    return ":".join(o.lower().zfill(2) for o in octets)


def lacp_system_mac(system_id):
    """A NOS's LACP system id, ``8000,76-83-ef-ed-66-5d`` (EOS) or
    ``32768,5e-2-0-1-0-7`` (NX-OS, octets unpadded), -> ``76:83:ef:ed:66:5d``."""
    try:
        return colon_mac(str(system_id).split(",")[-1])
    except SwitchError:
        raise SwitchError(f"LACP system id {system_id!r}: no MAC in it") from None


def vlan_members(rows):
    """[(vlan id, [interface as the NOS prints it])] -> {vid: {iface_key}}."""
    return {int(v): {iface_key(i) for i in ifaces} for v, ifaces in rows}


@parser('show version')
def parse_version(text, pattern):
    """The NOS version out of ``show version`` (group 1 of ``pattern``), or None."""
    m = re.search(pattern, text or "", re.M) if pattern else None
    return m.group(1).strip() if m else None


def cli_error(output):
    """The first line of ``output`` with which the NOS refused a command, or None."""
    m = ERROR_LINE.search(output or "")
    if not m:
        return None
    start = output.rfind("\n", 0, m.start()) + 1
    end = output.find("\n", m.start())
    return output[start:end if end >= 0 else None].strip()


class NetmikoChannel:
    """A CLI session to a NOS (netmiko ``device_type``) over the node's SSH
    target; connected on first use. ``send`` runs one show command,
    ``config`` a list of configuration lines in config mode."""

    def __init__(self, session, device_type):
        self.session, self.device_type = session, device_type
        self._conn = None

    def _connect(self):
        try:
            from netmiko import ConnectHandler
        except ImportError:
            raise SwitchError(f"switch {self.session.name}: the NOS drivers need netmiko "
                              "(pip install laghil[nos])") from None
        t = self.session.target
        kw = dict(device_type=self.device_type, host=t.address, port=t.port, username=t.user,
                  timeout=t.connect_timeout, conn_timeout=t.connect_timeout)
        if t.password:
            kw["password"] = t.password
        if t.key_file:
            kw.update(use_keys=True, key_file=t.key_file)
        # the host key checked as laghil's own sessions check it (HostKeyError
        # naming the node otherwise); netmiko is then given that key and no other,
        # strictly (it would accept any key by default: a password to whoever answers)
        hostname, key = verified_host_key(self.session)
        folder = tempfile.mkdtemp(prefix="laghil-known-")          # 0700, this user's
        known = os.path.join(folder, "known_hosts")
        with open(known, "w") as f:
            f.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")
        kw.update(ssh_strict=True, system_host_keys=False, alt_host_keys=True,
                  alt_key_file=known)
        if t.jump is not None and self.session.jump is not None:
            kw["sock"] = self.session.jump.open_tunnel(t.address, t.port, t.connect_timeout,
                                                       t.name)
        try:
            conn = ConnectHandler(**kw)
            if not conn.check_enable_mode():     # a NOS that logs in unprivileged
                conn.enable()
            self._conn = conn
        except Exception as e:  # noqa: BLE001 - netmiko's many connection errors
            msg = self.session.redactor.redact(str(e)) if self.session.redactor else str(e)
            raise SwitchError(f"switch {t.name}: CLI session ({self.device_type}) to "
                              f"{t.address}:{t.port} failed: {msg}") from None
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return self._conn

    def send(self, command):
        conn = self._conn or self._connect()
        return conn.send_command(command)

    def config(self, lines):
        conn = self._conn or self._connect()
        return conn.send_config_set(list(lines))

    def close(self):
        if self._conn is not None:
            self._conn.disconnect()
            self._conn = None


class NosSwitch(SwitchDriver):
    """Base of the NOS drivers: subclasses give ``device_type`` and the
    builders / parsers; the flow (read, refuse, undo first, change, check) is here."""

    device_type = None
    has_shell = False

    def __init__(self, node, channel=None):
        super().__init__(node)
        self.cli = channel or NetmikoChannel(node.session, self.device_type)

    # ---- builders (pure), per platform
    def lag_create_lines(self, number, ports, mode, lacp_rate, min_links):
        raise NotImplementedError

    def lag_delete_lines(self, number, ports):
        raise NotImplementedError

    def shutdown_lines(self, port, down):
        raise NotImplementedError

    # the L2 domain and member changes, in the CLI EOS and NX-OS share (Onyx
    # overrides): ``iface`` is the NOS's interface name, a port or lag_iface()
    def lag_iface(self, number):
        """The port-channel interface of LAG ``number`` as the config lines name it."""
        return f"port-channel{int(number)}"

    def vlan_create_lines(self, vid):
        return [f"vlan {int(vid)}"]

    def vlan_delete_lines(self, vid):
        return [f"no vlan {int(vid)}"]

    def l2_member_lines(self, iface, vids, tagged):
        if tagged:
            return [f"interface {iface}", "switchport", "switchport mode trunk",
                    f"switchport trunk allowed vlan {','.join(str(int(v)) for v in vids)}"]
        return [f"interface {iface}", "switchport", "switchport mode access",
                f"switchport access vlan {int(vids[0])}"]

    def l2_member_undo_lines(self, iface):
        return [f"interface {iface}", "no switchport trunk allowed vlan",
                "no switchport access vlan", "no switchport mode"]

    def channel_leave_lines(self, port):
        return [f"interface {port}", "no channel-group"]

    vlan_command = "show vlan"

    def parse_vlans(self, text):
        """``vlan_command``'s output -> {vid: {iface_key}} (per platform)."""
        raise NotImplementedError

    version_command = "show version"
    version_pattern = None          # a regex whose group 1 is the NOS version

    # the switch's model in ``show version`` (group 1), and the models that are a
    # virtual image of the NOS (its LAGs in software): per platform
    model_pattern = None
    virtual_model = None

    def offload_evidence(self, name):
        """What the NOS shows about LAG ``name`` being in hardware. A virtual
        image of the NOS (vEOS, cEOS, Nexus 9000v...) forwards in software: a
        software LAG. On a hardware model the port-channel's members bundled
        are read, but not the NOS's hardware LAG table: no verdict ("unknown",
        naming it missing), never an offload pass laghil did not see."""
        text = self.cli.send(self.version_command)
        model = parse_version(text, self.model_pattern) or "unknown"
        _, lag = self._lag(name)            # the summary: which members are bundled
        signals = {"model (show version)": model,
                   "members bundled": ", ".join(lag.selected) or "none"}
        if self.virtual_model and re.search(self.virtual_model, model, re.I):
            signals["virtual image"] = "the NOS forwards in software"
            return OffloadEvidence(name, "not_offloaded", signals)
        return OffloadEvidence(name, "unknown", signals,
                               (f"the {self.platform} hardware LAG table (not read by laghil's "
                                "driver)",))

    def describe(self):
        text = self.cli.send(self.version_command)
        return {"platform": self.platform, "version": parse_version(text, self.version_pattern),
                "lag_limit": "unknown: not read by laghil's driver"}

    # ---- reads, per platform
    def lags(self):
        """{number: SwitchLag} of every LAG on the switch."""
        raise NotImplementedError

    def snapshot(self):
        lags = {f"port-channel{n}": {"members": sorted(lag.members), "mode": lag.mode}
                for n, lag in sorted(self.lags().items())}
        return {"lags": lags, "unread": [f"port admin state, VLANs and addresses (not read by "
                                         f"laghil's {self.platform} driver)"]}

    # ---- the flow
    def _config(self, lines, what):
        out = self.cli.config(lines)
        err = cli_error(out)
        if err:
            raise SwitchRefused(f"switch {self.node.name}: {what}: {err}", err)
        return out

    def port_shutdown(self, port, *, defer):
        port = self.check_shut_port(port)
        defer(self.port_up_undo(port))
        self._config(self.shutdown_lines(port, True), f"shutdown {port}")

    def lag_remove(self, name, ports):
        """Remove port-channel ``name`` laghil made over ``ports``: nothing when it is
        gone already (the undo is idempotent), else the removal, its CLI reply
        checked (SwitchRefused naming the switch and the NOS's error)."""
        number = lag_number(name)
        ports = [self._port(p) for p in ports]
        if number not in self.lags():
            return
        self._config(self.lag_delete_lines(number, ports), f"remove LAG {name}")

    def port_no_shutdown(self, port):
        self._config(self.shutdown_lines(self._port(port), False), f"no shutdown {port}")

    def lag_create(self, name, ports, mode, *, defer, lacp_rate="fast", min_links=None, **_):
        if mode not in ("static", "lacp"):
            raise SwitchError(f"switch {self.node.name}: LAG mode {mode!r} (static or lacp)")
        number = lag_number(name)
        ports = [self._port(p) for p in ports]
        have = self.lags()
        why = []
        if number in have:
            why.append(f"port-channel {number} already exists and laghil did not make it")
        for n, lag in have.items():
            taken = sorted(set(ports) & set(lag.members))
            if taken:
                why.append(f"{', '.join(taken)} already in port-channel {n}")
        if why:
            raise SwitchError(f"switch {self.node.name}: refusing to create LAG {name} over "
                              f"{', '.join(ports)}: " + "; ".join(why))

        undo = self.lag_remove_undo(name, ports)
        defer(undo)
        try:
            self._config(self.lag_create_lines(number, ports, mode, lacp_rate, min_links),
                         f"LAG {name} ({mode}) over {', '.join(ports)}")
        except SwitchRefused as e:
            undo()
            left = [f"port-channel {number}"] if number in self.lags() else []
            raise SwitchRefused(str(e), e.reason, left) from None
        return MadeLag(self.node.name, name, tuple(ports), mode,
                       lambda: self.lag_remove(name, ports))

    def lag_state(self, name):
        return self._lag(name)[1]

    # ---- the L2 domain and members: each undo a journal record (laghil.journal
    #      SWITCH_UNDOS), idempotent, so a later process may replay it
    def vlans(self):
        """{vid: {iface_key}} of every VLAN on the switch."""
        return self.parse_vlans(self.cli.send(self.vlan_command))

    def _member(self, member, lags=None):
        """(the NOS's interface for L2 member ``member``: a port of the lab file or
        laghil's LAG name, its iface_key); None for a LAG that is not there."""
        if member in self.node.spec.ports or iface_key(member).startswith(("eth", "po")):
            p = self._port(member)          # (a port's name not in the lab file: refused)
            return p, iface_key(p)
        number = lag_number(check_cli_word(member, "LAG name"))
        if lags is not None and number not in lags:
            return None
        return self.lag_iface(number), f"po{number}"

    def _in_vlans(self, key, have):
        return sorted(v for v, ifaces in have.items() if v != 1 and key in ifaces)

    def bridge_create(self, name, members, *, defer, vlans=()):
        """The L2 domain ``name`` (a NOS has no bridge): the lab's ``l2_vlan``
        with every member an access port of it, or with ``vlans`` every member
        a trunk of them. Refused, before any change, when a VLAN exists or a
        member is in a VLAN other than 1 (not laghil's); the undo (members back
        to default, the VLANs deleted) registered first and returned."""
        check_cli_word(name, "bridge name")
        vids, tagged = self._domain_vids(vlans)
        lags = self.lags()
        got = {m: self._member(m, lags) for m in members}
        ifaces = [g for g in got.values() if g is not None]
        have = self.vlans()
        # (a NOS would make a port-channel that is not there: `interface Po5` creates it)
        why = [f"LAG {m} is not on the switch" for m, g in got.items() if g is None]
        why += [f"VLAN {v} exists and laghil did not make it" for v in vids if v in have]
        why += [f"{i} is in VLAN {', '.join(map(str, self._in_vlans(k, have)))}"
                for i, k in ifaces if self._in_vlans(k, have)]
        if why:
            raise SwitchError(f"switch {self.node.name}: refusing the L2 domain {name} (VLAN "
                              f"{', '.join(map(str, vids))}): " + "; ".join(why))
        undo = self._undo("nos_l2_remove", [[str(v) for v in vids], list(members)],
                          f"L2 domain {name} (VLAN {', '.join(map(str, vids))}) removed")
        defer(undo)
        lines = [x for v in vids for x in self.vlan_create_lines(v)]
        lines += [x for i, _ in ifaces for x in self.l2_member_lines(i, vids, tagged)]
        self._config_or_undo(lines, f"L2 domain {name} over {', '.join(members)}", undo)
        return undo

    def _config_or_undo(self, lines, what, undo):
        try:
            return self._config(lines, what)
        except SwitchRefused:
            undo()
            raise

    def nos_l2_remove(self, vids, members):
        """Undo of :meth:`bridge_create`: every member still there back to the
        default switchport, the VLANs that are there deleted (idempotent)."""
        lags, have = self.lags(), self.vlans()
        lines = []
        for m in members:
            got = self._member(m, lags)
            if got is not None:
                lines += self.l2_member_undo_lines(got[0])
        for v in vids:
            if int(v) in have:
                lines += self.vlan_delete_lines(int(v))
        if lines:
            self._config(lines, f"remove VLAN {', '.join(vids)}")

    def _domain_of(self, member):
        """(vids, tagged) of laghil's L2 domain that ``member`` is in, read from
        the switch; SwitchError when it is in none."""
        vids = self._in_vlans(self._member(member)[1], self.vlans())
        if not vids:
            raise SwitchError(f"switch {self.node.name}: {member} is in no VLAN of laghil's")
        return vids, vids != [getattr(self.node.spec, "l2_vlan", None)]

    def bridge_member_remove(self, bridge, member, *, defer):
        """``member`` out of the L2 domain; the undo (registered first, also
        returned) puts it back into the same VLANs, tagged or not as it was."""
        vids, tagged = self._domain_of(member)
        undo = self._undo("nos_l2_join", [member, ["tagged" if tagged else "access",
                                                   *map(str, vids)]],
                          f"{member} back into {bridge}")
        defer(undo)
        self._config(self.l2_member_undo_lines(self._member(member)[0]),
                     f"{member} out of {bridge}")
        return undo

    def nos_l2_join(self, member, spec):
        """``member`` into VLANs ``spec`` ["tagged"|"access", vid...] (idempotent)."""
        mode, *vids = spec
        got = self._member(member, self.lags())
        if got is None or self._in_vlans(got[1], self.vlans()):
            return
        self._config(self.l2_member_lines(got[0], [int(v) for v in vids], mode == "tagged"),
                     f"{member} into VLAN {', '.join(vids)}")

    def bridge_member_add(self, bridge, member, *, defer, vlans=None):
        """``member`` into the L2 domain (``vlans`` tagged, else the lab's l2_vlan
        untagged); refused when it is in a VLAN already."""
        got = self._member(member, self.lags())
        if got is None:
            raise SwitchError(f"switch {self.node.name}: refusing to add {member} to {bridge}: "
                              "no such LAG on the switch")
        i, k = got
        inv = self._in_vlans(k, self.vlans())
        if inv:
            raise SwitchError(f"switch {self.node.name}: refusing to add {member} to {bridge}: "
                              f"it is in VLAN {', '.join(map(str, inv))}")
        vids, tagged = self._domain_vids(vlans)
        undo = self._undo("nos_l2_leave", [member], f"{member} out of {bridge}")
        defer(undo)
        self._config_or_undo(self.l2_member_lines(i, vids, tagged),
                             f"{member} into {bridge}", undo)
        return undo

    def nos_l2_leave(self, member):
        """``member`` back to the default switchport, if it is still there."""
        got = self._member(member, self.lags())
        if got is not None and self._in_vlans(got[1], self.vlans()):
            self._config(self.l2_member_undo_lines(got[0]), f"{member} out of its VLANs")

    def left_behind(self, name, ports):
        lags = self.lags()
        number = lag_number(name)
        out = [f"port-channel {number}"] if number in lags else []
        return out + [f"member {p}" for p in ports
                      if any(p in lag.members for lag in lags.values())]

    status_command = "show interfaces status"

    def parse_port_status(self, text):
        """``status_command``'s output -> {iface_key: oper up} (per platform)."""
        raise NotImplementedError

    def port_oper_up(self, port):
        """Is ``port`` (a port of the lab file) operationally up, as the NOS says."""
        port = self._port(port)
        st = self.parse_port_status(self.cli.send(self.status_command))
        if iface_key(port) not in st:
            raise SwitchError(f"switch {self.node.name}: {port} is not in `{self.status_command}`")
        return st[iface_key(port)]

    fdb_command = "show mac address-table"

    def parse_fdb(self, text):
        """``fdb_command``'s output -> [{"mac", "port", "vlan", "flags"}] (per platform)."""
        raise NotImplementedError

    def fdb(self, bridge):
        """Every entry of the switch's MAC table: a NOS keeps one for all its
        VLANs, laghil's L2 domain among them (``port`` as the NOS names it:
        :meth:`fdb_on` maps laghil's names)."""
        return self.parse_fdb(self.cli.send(self.fdb_command))

    def fdb_on(self, bridge, members):
        keys = set()
        for m in members:
            got = self._member(m)
            keys.add(got[1])
        return [e for e in self.fdb(bridge) if iface_key(e["port"]) in keys]

    def _lag(self, name):
        number = lag_number(name)
        lag = self.lags().get(number)
        if lag is None:
            raise SwitchError(f"switch {self.node.name}: no port-channel {number} ({name})")
        return number, lag

    def _own_lag(self, name, what):
        """(number, SwitchLag) of LAG ``name`` if laghil may change it: every
        member a port of the lab file. A port-channel with another port in it
        is not one laghil made (its number may be a production port-channel's):
        refused, naming the ports, before any change."""
        number, lag = self._lag(name)
        alien = [p for p in lag.members if p not in self.node.spec.ports]
        if alien:
            raise SwitchError(f"switch {self.node.name}: refusing to {what} LAG {name}: "
                              f"{', '.join(alien)} in it are not ports of the lab file "
                              "(laghil did not make it)")
        return number, lag

    def lag_member_remove(self, name, port, *, defer):
        """``port`` out of LAG ``name``; the undo (registered first, also
        returned) puts it back with the LAG's mode."""
        port = self._port(port)
        number, lag = self._own_lag(name, "take a member out of")
        if port not in lag.members:
            raise SwitchError(f"switch {self.node.name}: {port} is not in port-channel {number} "
                              f"(members: {', '.join(lag.members) or 'none'})")
        undo = self._undo("nos_channel_join", [name, port, lag.mode], f"{port} back into {name}")
        defer(undo)
        self._config(self.channel_leave_lines(port), f"{port} out of {name}")
        return undo

    def nos_channel_join(self, name, port, mode):
        """``port`` into LAG ``name`` (mode "lacp"|"static"), unless it is in it."""
        number = lag_number(name)
        lags = self.lags()
        if number not in lags or port in lags[number].members:
            return
        self._config(self.lag_create_lines(number, [self._port(port)], mode, "fast", None),
                     f"{port} into {name}")

    def lag_member_add(self, name, port, *, defer):
        """``port`` into LAG ``name``; refused when it is in a LAG already."""
        port = self._port(port)
        number, lag = self._own_lag(name, "add a member to")
        taken = [n for n, other in self.lags().items() if port in other.members]
        if taken:
            raise SwitchError(f"switch {self.node.name}: refusing to add {port} to {name}: it is "
                              f"in port-channel {taken[0]}")
        undo = self._undo("nos_channel_leave", [name, port], f"{port} out of {name}")
        defer(undo)
        self._config_or_undo(self.lag_create_lines(number, [port], lag.mode, "fast", None),
                             f"{port} into {name}", undo)
        return undo

    def nos_channel_leave(self, name, port):
        lag = self.lags().get(lag_number(name))
        if lag is not None and port in lag.members:
            self._config(self.channel_leave_lines(self._port(port)), f"{port} out of {name}")

    def lag_delete(self, name, *, defer):
        """Delete LAG ``name`` with its place in laghil's L2 domain; the undo
        (registered first, idempotent, also returned) rebuilds it over the same
        ports, in the same mode, into the same VLANs."""
        number, lag = self._own_lag(name, "delete")
        ports = [self._port(p) for p in lag.members]
        try:
            vids, tagged = self._domain_of(name)
            l2 = ["tagged" if tagged else "access", *map(str, vids)]
        except SwitchError:
            l2 = ["none"]
        undo = self._undo("nos_lag_rebuild", [name, ports, [lag.mode, *l2]],
                          f"rebuild LAG {name}")
        defer(undo)
        self._config(self.lag_delete_lines(number, ports), f"delete LAG {name}")
        return undo

    def nos_lag_rebuild(self, name, ports, spec):
        """LAG ``name`` over ``ports`` again: ``spec`` [mode, "none"|"tagged"|
        "access", vid...] (idempotent)."""
        number = lag_number(name)
        if number in self.lags():
            return
        mode, l2, *vids = spec
        lines = self.lag_create_lines(number, [self._port(p) for p in ports], mode, "fast", None)
        if l2 != "none":
            lines += self.l2_member_lines(self.lag_iface(number), [int(v) for v in vids],
                                          l2 == "tagged")
        self._config(lines, f"rebuild LAG {name}")
