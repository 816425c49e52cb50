"""NVIDIA Cumulus Linux. Changes through NVUE (``nv set`` / ``nv unset``, then
``nv config apply -y``: the configuration Cumulus keeps), so that the switch's
own configuration stays the source of truth; reads from the kernel, where
NVUE's bond is a Linux bond (the Linux driver's parsers, tested on our
captures)."""

from ...names import q
from .base import MadeLag, SwitchError, check_cli_word
from .linux import LinuxSwitch

APPLY = "nv config apply -y"


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

    def lag_member_remove(self, name, port, *, defer):
        self._cannot("removing a bond member through NVUE")

    def lag_member_add(self, name, port, *, defer):
        self._cannot("adding a bond member through NVUE")

    def lag_delete(self, name, *, defer):
        self._cannot("deleting a bond with uppers through NVUE")

    def bridge_create(self, name, members, *, defer, vlans=()):
        self._cannot("a bridge through NVUE")

    def bridge_member_remove(self, bridge, member, *, defer):
        self._cannot("remastering a bridge member through NVUE")

    def bridge_member_add(self, bridge, member, *, defer, vlans=None):
        self._cannot("remastering a bridge member through NVUE")
