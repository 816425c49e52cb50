"""Switch drivers behind one small interface (a later issue grows LAG offload).

``SwitchDriver.port_shutdown(port)`` / ``port_no_shutdown(port)`` /
``port_oper_up(port)``; the partner side of a host's LAG:
``lag_create(name, ports, mode, *, defer, **options)`` (a static or LACP LAG over
switch ports) and ``bridge_create(name, members, *, defer)`` (one L2 domain over
ports and LAGs). Each registers its undo on ``defer`` before it changes anything.
``linux`` drives a Linux switch (the virtual rack's switch guest,
Cumulus/SONiC-style Linux ports) over iproute2: a LAG is a bond, the L2 domain a
bridge.
"""

from ..errors import LaghilError
from ..names import check_ifname, qif
from .bond import Bond
from .netdev import UpperDevice

# the switch side a host's bond mode needs (NVIDIA Onyx manual, server
# configuration: modes 0, 2, 4 need a LAG on the switch; 1, 5, 6 must not have one)
PARTNER_MODE = {"balance-rr": "static", "balance-xor": "static", "802.3ad": "lacp",
                "active-backup": None, "balance-tlb": None, "balance-alb": None,
                "broadcast": None}


class SwitchError(LaghilError):
    pass


class SwitchDriver:
    platform = None

    def __init__(self, node):
        self.node = node

    def port_shutdown(self, port):
        raise NotImplementedError

    def port_no_shutdown(self, port):
        raise NotImplementedError

    def port_oper_up(self, port):
        raise NotImplementedError

    def lag_create(self, name, ports, mode, *, defer, **options):
        """A LAG over ``ports``: ``mode`` "static" or "lacp"."""
        raise SwitchError(f"switch {self.node.name}: driver {self.platform!r} cannot create LAGs yet")

    def bridge_create(self, name, members, *, defer):
        raise SwitchError(f"switch {self.node.name}: driver {self.platform!r} cannot create bridges yet")


class LinuxBridge(UpperDevice):
    """A bridge over ports/LAGs of a Linux switch; its undo restores every member."""

    kind = "bridge"

    def __init__(self, node, name, members):
        self.node, self.name = node, check_ifname(name, "bridge name")
        self.members = [check_ifname(m, "bridge member") for m in members]

    def create(self, *, defer):
        b = qif(self.name)
        cmds = [f"ip link add name {b} type bridge stp_state 0 forward_delay 0"]
        cmds += [f"ip link set dev {qif(m)} master {b}" for m in self.members]
        cmds.append(f"ip link set dev {b} up")
        return self._create(cmds, defer=defer)


class LinuxSwitch(SwitchDriver):
    platform = "linux"

    def port_shutdown(self, port):
        self.node.run(f"ip link set dev {qif(port)} down")

    def port_no_shutdown(self, port):
        self.node.run(f"ip link set dev {qif(port)} up")

    def port_oper_up(self, port):
        r = self.node.run(f"cat /sys/class/net/{qif(port)}/operstate")
        return r.stdout.strip() == "up"

    def lag_create(self, name, ports, mode, *, defer, lacp_rate="fast", miimon=10,
                   xmit_hash_policy="layer3+4"):
        if mode not in ("static", "lacp"):
            raise SwitchError(f"switch {self.node.name}: LAG mode {mode!r} (static or lacp)")
        opts = {"miimon": miimon, "xmit_hash_policy": xmit_hash_policy}
        if mode == "lacp":
            opts["lacp_rate"] = lacp_rate
        bond = Bond(self.node, name, "802.3ad" if mode == "lacp" else "balance-xor", ports, **opts)
        return bond.create(defer=defer)

    def bridge_create(self, name, members, *, defer):
        return LinuxBridge(self.node, name, members).create(defer=defer)


DRIVERS = {"linux": LinuxSwitch}


def switch_driver(node):
    platform = node.spec.platform
    try:
        return DRIVERS[platform](node)
    except KeyError:
        raise SwitchError(f"switch {node.name}: no driver for platform {platform!r} yet "
                          f"(have: {', '.join(sorted(DRIVERS))})") from None
