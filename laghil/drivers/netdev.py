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
