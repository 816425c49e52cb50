"""Save and restore what a test may change on a netdev (MAC, MTU, admin state,
master, addresses), so that every undo returns a member exactly as it was."""

import json
from dataclasses import dataclass

from ..names import qif


@dataclass(frozen=True)
class NetdevState:
    name: str
    mac: str
    mtu: int
    up: bool
    master: str | None
    addrs: tuple            # ("addr/prefix", ...) global scope only


def read_state(node, ifname):
    """Current NetdevState of ``ifname`` on ``node`` (one round trip)."""
    r = node.run(f"ip -j addr show dev {qif(ifname)}")
    return parse_state(r.stdout)


def parse_state(text):
    d = json.loads(text)[0]
    addrs = tuple(f"{a['local']}/{a['prefixlen']}" for a in d.get("addr_info", [])
                  if a.get("scope") == "global")
    return NetdevState(d["ifname"], d.get("address"), d.get("mtu"), "UP" in d.get("flags", []),
                       d.get("master"), addrs)


def restore_state(node, st):
    """Put ``st`` back: no master, MAC, MTU, addresses, then the admin state."""
    i = qif(st.name)
    cur = read_state(node, st.name)
    cmds = []
    if cur.master and cur.master != st.master:
        cmds.append(f"ip link set dev {i} nomaster")
    if cur.mac != st.mac or cur.mtu != st.mtu:
        cmds.append(f"ip link set dev {i} down")
        if cur.mac != st.mac:
            cmds.append(f"ip link set dev {i} address {st.mac}")
        if cur.mtu != st.mtu:
            cmds.append(f"ip link set dev {i} mtu {int(st.mtu)}")
    for a in set(cur.addrs) - set(st.addrs):
        cmds.append(f"ip addr del {a} dev {i}")
    for a in set(st.addrs) - set(cur.addrs):
        cmds.append(f"ip addr add {a} dev {i}")
    cmds.append(f"ip link set dev {i} {'up' if st.up else 'down'}")
    node.run(" && ".join(cmds))


class UpperDevice:
    """An upper netdev made over ``members`` (a bond, a bridge): ``_create`` saves
    every member's state and registers ``destroy`` on ``defer`` BEFORE anything
    changes; ``destroy`` deletes the device and returns every member exactly as
    it was. Subclasses set ``node``, ``name`` and ``members``."""

    _saved = ()

    def _create(self, defer, cmds):
        self._saved = [read_state(self.node, m) for m in self.members]
        defer(self.destroy)
        self.node.run(" && ".join(cmds))
        return self

    def destroy(self):
        """Delete the device and return every member exactly as it was."""
        self.node.run(f"ip link show dev {qif(self.name)} >/dev/null 2>&1 && "
                      f"ip link del dev {qif(self.name)} || true")
        for st in self._saved:
            restore_state(self.node, st)
