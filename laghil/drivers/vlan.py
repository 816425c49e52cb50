"""An 802.1Q VLAN netdev laghil makes on a LAG (or a port): ``<lower>.<vid>``.

Its name derives from laghil's own LAG name (``lgbond0.100``), so it is never a
node's own device; the create refuses like every :class:`UpperDevice` (a
netdev of the name exists, the lower is missing or the management interface)
and registers its undo (delete, lower restored) before it changes anything.
"""

import ipaddress

from ..errors import LaghilError
from ..names import check_ifname, qif
from .netdev import UpperDevice


class VlanError(LaghilError):
    pass


def check_vid(vid):
    try:
        v = int(vid)
    except (TypeError, ValueError):
        raise VlanError(f"VLAN id {vid!r} is not a number") from None
    if not 1 <= v <= 4094:
        raise VlanError(f"VLAN id {v} out of 1..4094")
    return v


class Vlan(UpperDevice):
    kind = "vlan"

    def __init__(self, node, lower, vid, name=None):
        self.node, self.vid = node, check_vid(vid)
        self.lower = check_ifname(lower, "VLAN lower device")
        self.name = check_ifname(name or f"{lower}.{self.vid}", "VLAN name")
        self.members = [self.lower]

    def __repr__(self):
        return f"<Vlan {self.node.name}:{self.name} id {self.vid} on {self.lower}>"

    def create_commands(self, address=None):
        n = qif(self.name)
        cmds = [f"ip link add link {qif(self.lower)} name {n} type vlan id {self.vid}",
                f"ip link set dev {n} up"]
        if address:
            cmds.append(f"ip addr add {ipaddress.ip_interface(address)} dev {n}")
        return cmds

    def create(self, *, defer, address=None):
        return self._create(self.create_commands(address), defer=defer)
