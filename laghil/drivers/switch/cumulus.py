"""NVIDIA Cumulus Linux. Changes through NVUE (``nv set`` / ``nv unset``, then
``nv config apply -y``: the configuration Cumulus keeps), so that the switch's
own configuration stays the source of truth; reads from the kernel, where
NVUE's bond is a Linux bond (the Linux driver's parsers, tested on our
captures). laghil's L2 domain is VLANs in NVUE's one bridge, br_default (as
OpenStack's networking-generic-switch drives it: `nv set bridge domain
br_default vlan V`, `nv set interface P bridge domain br_default access V`)."""

import re

from ...names import q
from .base import MadeLag, SwitchError, check_cli_word
from .linux import LinuxSwitch

APPLY = "nv config apply -y"
BRIDGE = "br_default"        # NVUE's bridge: laghil's L2 domain is VLANs in it
_NVUE_WORD = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


def nvue_words(path):
    """An NVUE path as laghil's undo records keep it (``interface/swp1/bond/member/
    swp2``) -> the words of ``nv set|unset`` (each checked, then quoted)."""
    words = str(path).split("/")
    bad = [w for w in words if not _NVUE_WORD.fullmatch(w)]
    if bad or not words:
        raise SwitchError(f"NVUE path {path!r}: {bad} cannot be put into a command")
    return " ".join(q(w) for w in words)


class CumulusSwitch(LinuxSwitch):
    platform = "cumulus"
    management_port = r"eth\d+"        # Cumulus Linux: eth0, in the mgmt VRF
    # a Cumulus bond is the kernel's bond: a removed member sends a last LACPDU out of sync
    lacp_leave_notifies = True
    port_word = "Cumulus port"

    @staticmethod
    def lag_create_commands(name, ports, mode, lacp_rate, min_links):
        b = q(check_cli_word(name, "bond name"))
        cmds = [f"nv set interface {b} bond member {q(','.join(ports))}",
                f"nv set interface {b} bond mode {'lacp' if mode == 'lacp' else 'static'}"]
        if mode == "lacp":
            cmds.append(f"nv set interface {b} bond lacp-rate {'fast' if lacp_rate == 'fast' else 'slow'}")
        if min_links:
            cmds.append(f"nv set interface {b} bond min-links {int(min_links)}")
        return cmds + [APPLY]

    @staticmethod
    def lag_delete_commands(name):
        return [f"nv unset interface {q(check_cli_word(name, 'bond name'))}", APPLY]

    def port_shutdown(self, port, *, defer):
        port = self.check_shut_port(port)
        defer(self.port_up_undo(port))
        self.node.run(f"nv set interface {q(port)} link state down && {APPLY}")

    def lag_remove(self, name, ports):
        self.node.run(" && ".join(self.lag_delete_commands(name)))

    def port_no_shutdown(self, port):
        self.node.run(f"nv set interface {q(self._port(port))} link state up && {APPLY}")

    def lag_create(self, name, ports, mode, *, defer, lacp_rate="fast", min_links=None, **_):
        if mode not in ("static", "lacp"):
            raise SwitchError(f"switch {self.node.name}: LAG mode {mode!r} (static or lacp)")
        ports = [self._port(p) for p in ports]
        if self.node.run(f"[ -e /sys/class/net/{q(name)} ]", check=False).rc == 0:
            raise SwitchError(f"switch {self.node.name}: refusing to create LAG {name}: a "
                              "netdev of that name exists and laghil did not make it")
        busy = [p for p in ports if self.node.run(
            f"[ -e /sys/class/net/{q(p)}/master ]", check=False).rc == 0]
        if busy:
            raise SwitchError(f"switch {self.node.name}: refusing to create LAG {name}: "
                              f"{', '.join(busy)} already enslaved")
        defer(self.lag_remove_undo(name, ports))
        self.node.run(" && ".join(self.lag_create_commands(name, ports, mode, lacp_rate,
                                                           min_links)))
        return MadeLag(self.node.name, name, tuple(ports), mode,
                       lambda: self.lag_remove(name, ports))

    # ---- undo records (laghil.journal SWITCH_UNDOS): NVUE paths, each one
    #      word "interface/swp1/bridge/domain/br_default/access/3901"; setting a
    #      value it has or unsetting what is not set changes nothing (idempotent)
    def nvue_set(self, paths):
        """``nv set`` each path, then apply."""
        self.node.run(" && ".join([f"nv set {nvue_words(p)}" for p in paths] + [APPLY]))

    def nvue_unset(self, paths):
        """``nv unset`` each path, then apply."""
        self.node.run(" && ".join([f"nv unset {nvue_words(p)}" for p in paths] + [APPLY]))

    def _nvue_undo(self, method, paths, what):
        return self._undo(method, [list(paths)], what)

    # ---- the L2 domain: laghil's VLAN(s) in Cumulus's bridge (NVUE's br_default)
    def _bridge_vlans(self):
        from .linux import parse_bridge_vlans
        return parse_bridge_vlans(self.node.run("bridge -j vlan show").stdout)

    def _l2_paths(self, member, vids, tagged):
        where = f"interface/{member}/bridge/domain/{BRIDGE}"
        return ([f"{where}/vlan/{int(v)}" for v in vids] if tagged
                else [f"{where}/access/{int(vids[0])}"])

    def _member(self, member):
        """``member`` if it is a port of the lab file or a bond laghil names."""
        if member in self.node.spec.ports:
            return self._port(member)
        return check_cli_word(member, "bond name")

    def bridge_create(self, name, members, *, defer, vlans=()):
        """laghil's L2 domain in Cumulus's one bridge: its ``l2_vlan`` with every
        member an access port of it, or the test's ``vlans`` tagged on every
        member. Refused before any change when a VLAN is in the bridge already or
        a member is in a bridge; the undo (registered first, also returned)
        takes the members and the VLANs out again."""
        check_cli_word(name, "bridge name")
        vids, tagged = self._domain_vids(vlans)
        members = [self._member(m) for m in members]
        have = self._bridge_vlans()
        used = {v for port_vlans in have.values() for v, _ in port_vlans}
        why = [f"VLAN {v} is in {BRIDGE} and laghil did not put it there" for v in vids
               if v in used]
        why += [f"{m} is in {self._master_of(m)}" for m in members if self._master_of(m)]
        if why:
            raise SwitchError(f"switch {self.node.name}: refusing the L2 domain {name}: "
                              + "; ".join(why))
        undo = self._nvue_undo("nvue_unset", [f"interface/{m}/bridge/domain/{BRIDGE}"
                                              for m in members]
                               + [f"bridge/domain/{BRIDGE}/vlan/{v}" for v in vids],
                               f"L2 domain {name} (VLAN {', '.join(map(str, vids))}) removed")
        defer(undo)
        self.nvue_set([f"bridge/domain/{BRIDGE}/vlan/{v}" for v in vids]
                      + [p for m in members for p in self._l2_paths(m, vids, tagged)])
        return undo

    def _domain_paths(self, member):
        """The NVUE paths that put ``member`` back where it is in the bridge now."""
        vl = self._bridge_vlans().get(member, [])
        access = [v for v, flags in vl if "PVID" in flags and "Egress Untagged" in flags
                  and v != 1]
        tagged = [v for v, flags in vl if "Egress Untagged" not in flags]
        if access and not tagged:
            return self._l2_paths(member, access, False)
        if tagged:
            return self._l2_paths(member, tagged, True)
        raise SwitchError(f"switch {self.node.name}: {member} is in no VLAN of laghil's in "
                          f"{BRIDGE}")

    def bridge_member_remove(self, bridge, member, *, defer):
        """``member`` out of the L2 domain; the undo (registered first, also
        returned) puts it back into the same VLANs, tagged or not as it was."""
        member = self._member(member)
        undo = self._nvue_undo("nvue_set", self._domain_paths(member),
                               f"{member} back into {bridge}")
        defer(undo)
        self.nvue_unset([f"interface/{member}/bridge/domain/{BRIDGE}"])
        return undo

    def bridge_member_add(self, bridge, member, *, defer, vlans=None):
        member = self._member(member)
        if self._master_of(member):
            raise SwitchError(f"switch {self.node.name}: refusing to add {member} to {bridge}: "
                              f"it is in {self._master_of(member)}")
        vids, tagged = self._domain_vids(vlans)
        undo = self._nvue_undo("nvue_unset", [f"interface/{member}/bridge/domain/{BRIDGE}"],
                               f"{member} out of {bridge}")
        defer(undo)
        self.nvue_set(self._l2_paths(member, vids, tagged))
        return undo

    # ---- bond members and the bond itself
    def lag_member_remove(self, name, port, *, defer):
        """``port`` out of bond ``name`` (NVUE); the undo puts it back."""
        port = self._port(port)
        _, lag = self._read_lag(name)
        if port not in lag.members:
            raise SwitchError(f"switch {self.node.name}: {port} is not in {name} (members: "
                              f"{', '.join(lag.members) or 'none'})")
        path = f"interface/{check_cli_word(name, 'bond name')}/bond/member/{port}"
        undo = self._nvue_undo("nvue_set", [path], f"{port} back into {name}")
        defer(undo)
        self.nvue_unset([path])
        return undo

    def lag_member_add(self, name, port, *, defer):
        port = self._port(port)
        self._read_lag(name)
        if self._master_of(port):
            raise SwitchError(f"switch {self.node.name}: refusing to add {port} to {name}: it "
                              f"is in {self._master_of(port)}")
        path = f"interface/{check_cli_word(name, 'bond name')}/bond/member/{port}"
        undo = self._nvue_undo("nvue_unset", [path], f"{port} out of {name}")
        defer(undo)
        self.nvue_set([path])
        return undo

    def lag_delete(self, name, *, defer):
        """Delete bond ``name`` with its place in the bridge; the undo
        (registered first, idempotent, also returned) sets it up again: its
        members, mode, LACP rate and VLANs."""
        b = check_cli_word(name, "bond name")
        proc, lag = self._read_lag(name)
        paths = [f"interface/{b}/bond/member/{self._port(p)}" for p in lag.members]
        paths.append(f"interface/{b}/bond/mode/{'lacp' if proc.mode == '802.3ad' else 'static'}")
        if proc.mode == "802.3ad":
            rate = proc.options.get("lacp_rate")
            paths.append(f"interface/{b}/bond/lacp-rate/{'fast' if rate == 'fast' else 'slow'}")
        if self._master_of(name):
            paths += self._domain_paths(name)
        undo = self._nvue_undo("nvue_set", paths, f"rebuild LAG {name}")
        defer(undo)
        self.nvue_unset([f"interface/{b}"])
        return undo

    def fdb(self, bridge):
        """The entries of Cumulus's bridge (laghil's domain is VLANs in it)."""
        from .linux import parse_fdb
        return parse_fdb(self.node.run(f"bridge -j fdb show br {BRIDGE}").stdout)
