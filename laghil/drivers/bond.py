"""Linux bonding over iproute2: create, read, destroy, with its undo registered
before anything changes. (The full mode/option matrix grows on this.)"""

import json
import re

from ..errors import LaghilError
from ..names import check_ifname, qif
from .netdev import read_state, restore_state

MODES = ("balance-rr", "active-backup", "balance-xor", "broadcast", "802.3ad",
         "balance-tlb", "balance-alb")


_OPT_KEY = re.compile(r"^[a-z_]{1,32}$")
_OPT_VALUE = re.compile(r"^[A-Za-z0-9_.:,+-]{1,64}$")


class BondError(LaghilError):
    pass


class Bond:
    def __init__(self, node, name, mode, members, **options):
        if mode not in MODES:
            raise BondError(f"{node.name}: unknown bond mode {mode!r} (one of {', '.join(MODES)})")
        self.node, self.name, self.mode = node, check_ifname(name, "bond name"), mode
        self.members = [check_ifname(m, "bond member") for m in members]
        for k, v in options.items():
            if not _OPT_KEY.match(str(k)) or not _OPT_VALUE.match(str(v)):
                raise BondError(f"{node.name}: bond {name}: option {k}={v!r} is not valid "
                                "(letters, digits and _ . : , + - only)")
        self.options = options
        self._saved = []

    def __repr__(self):
        return f"<Bond {self.node.name}:{self.name} {self.mode} {self.members}>"

    def create(self, defer, address=None):
        """Create the bond, enslave members, bring it up (and add ``address``).
        The undo (destroy + restore every member) is registered first."""
        self._saved = [read_state(self.node, m) for m in self.members]
        defer(self.destroy)
        opts = " ".join(f"{k} {v}" for k, v in self.options.items())
        b = qif(self.name)
        cmds = [f"ip link add name {b} type bond mode {self.mode} {opts}".strip()]
        for m in self.members:
            cmds += [f"ip link set dev {qif(m)} down", f"ip link set dev {qif(m)} master {b}"]
        cmds.append(f"ip link set dev {b} up")
        if address:
            cmds.append(f"ip addr add {address} dev {b}")
        self.node.run(" && ".join(cmds))
        return self

    def destroy(self):
        """Delete the bond and return every member exactly as it was."""
        self.node.run(f"ip link show dev {qif(self.name)} >/dev/null 2>&1 && "
                      f"ip link del dev {qif(self.name)} || true")
        for st in self._saved:
            restore_state(self.node, st)

    def info(self):
        """`ip -d -j link show <bond>` linkinfo data (mode, miimon, active slave...)."""
        d = json.loads(self.node.run(f"ip -d -j link show dev {qif(self.name)}").stdout)[0]
        return d.get("linkinfo", {}).get("info_data", {})

    def active_slave(self):
        return self.info().get("active_slave")
