"""Upper netdevs that laghil makes (bonds, teams, bridges) and the members under
them: save and restore what a test may change on a member (MAC, MTU, admin
state, master, addresses), and refuse, before anything changes, to touch a
netdev laghil did not make.

:class:`UpperDevice` is the one create / destroy for all of them:

* ``_create`` first reads the node (one round trip, :func:`preflight_command`)
  and refuses with :class:`NetdevRefused`, naming the node and the netdev,
  when a netdev of the device's name exists (a production ``bond0``), when a
  member is missing or already enslaved, or when a member is, or carries, the
  management interface the SSH session runs over. Only then are the members'
  states saved and ``destroy`` registered on ``defer``, and the commands run.
* ``destroy`` deletes the device and restores every member; every step is
  tried, then every failure is reported together (:class:`UndoIncomplete`).
"""

import json
from dataclasses import dataclass

from ..errors import LaghilError
from ..journal import Undo, node_record
from ..names import qif
from ..undo_actions import ACTIONS, _member, check_mac, check_prefix, member_restore  # noqa: F401
from ..parsing import parser


class NetdevRefused(LaghilError):
    """laghil will not make or change this netdev: it is not laghil's."""


class UndoIncomplete(LaghilError):
    """An undo ran every step; some failed (each named in the message)."""


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


@parser('ip -j addr show')
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


def member_state(st):
    """A NetdevState as the data of a journal record (laghil.undo_actions)."""
    return {"name": st.name, "master": bool(st.master), "mac": st.mac, "mtu": st.mtu,
            "addrs": list(st.addrs), "up": bool(st.up)}


def restore_command(st):
    """One shell command that puts ``st`` back whatever the netdev's state is now
    (for the undo journal: a later process cannot read the state first).
    Idempotent; a netdev that no longer exists is left alone."""
    return member_restore(_member(member_state(st)))


# ------------------------------------------------------------ what is on the node
SEP = "@@LAGHIL-PREFLIGHT@@"


def preflight_command():
    """Links, addresses and the SSH connection of this session, in one round
    trip. Run WITHOUT sudo: sudo's env_reset drops SSH_CONNECTION."""
    return f'ip -d -j link show; echo {SEP}; ip -j addr show; echo {SEP}; echo "$SSH_CONNECTION"'


@dataclass(frozen=True)
class NodeNetdevs:
    """What :func:`preflight_command` read: every link, and the management
    interfaces (the one holding the session's local address and what it sits on)."""
    links: dict             # ifname -> {"master": str|None, "lower": str|None}
    management: dict        # ifname -> why it is management (address)

    def exists(self, name):
        return name in self.links

    def master_of(self, name):
        return (self.links.get(name) or {}).get("master")


@parser('the preflight (ip -j link/addr, SSH_CONNECTION)')
def parse_preflight(text, management_address=None):
    """Output of :func:`preflight_command` -> NodeNetdevs (pure).

    The management interfaces are those holding the SSH session's local
    address (``$SSH_CONNECTION``'s third field) or the lab's
    ``management_address``, plus, transitively, the devices they sit on (a
    VLAN's lower device, a bond's or bridge's members): taking any of those
    down would cut the session."""
    parts = text.split(SEP)
    if len(parts) != 3:
        raise LaghilError(f"preflight output has {len(parts) - 1} separators, want 2: "
                          f"{text[:120]!r}")
    links_j, addrs_j, ssh = (p.strip() for p in parts)
    links = {}
    for d in json.loads(links_j or "[]"):
        links[d["ifname"]] = {"master": d.get("master"), "lower": d.get("link")}
    local = ssh.split()[2] if len(ssh.split()) >= 4 else None
    wanted = {a for a in (local, management_address) if a}
    management = {}
    for d in json.loads(addrs_j or "[]"):
        for a in d.get("addr_info", []):
            if a.get("local") in wanted:
                management[d["ifname"]] = f"holds {a['local']}, the address this session uses"
    todo = list(management)
    while todo:
        cur = todo.pop()
        below = [links[cur]["lower"]] if links.get(cur, {}).get("lower") else []
        below += [n for n, v in links.items() if v["master"] == cur]
        for b in below:
            if b in links and b not in management:
                management[b] = f"carries {cur}, the management interface ({management[cur]})"
                todo.append(b)
    return NodeNetdevs(links, management)


def read_netdevs(node):
    """NodeNetdevs of ``node`` (one round trip, without sudo)."""
    addr = getattr(getattr(getattr(node, "spec", None), "management", None), "address", None)
    return parse_preflight(node.run(preflight_command(), sudo=False).stdout, addr)


def refusals(netdevs, node_name, kind, name, members):
    """Why laghil must not make ``kind`` ``name`` over ``members`` (pure; [] if it may)."""
    head = f"{node_name}: refusing to create {kind} {name}"
    out = []
    if netdevs.exists(name):
        out.append(f"{head}: a netdev named {name} already exists on {node_name} and laghil "
                   f"did not make it (give laghil's {kind} another name: defaults.devices in "
                   "the lab file)")
    for m in members:
        if m in netdevs.management:
            out.append(f"{head}: member {m} on {node_name} is the management interface "
                       f"({netdevs.management[m]}): laghil never touches it, whatever the lab "
                       "file says")
        elif not netdevs.exists(m):
            out.append(f"{head}: member {m} does not exist on {node_name}")
        elif netdevs.master_of(m):
            out.append(f"{head}: member {m} on {node_name} is already enslaved to "
                       f"{netdevs.master_of(m)}")
    return out


def check_can_create(node, kind, name, members):
    """Raise NetdevRefused (every reason) unless laghil may make this device."""
    why = refusals(read_netdevs(node), node.name, kind, name, members)
    if why:
        raise NetdevRefused("; ".join(why))


def check_not_management(node, ifname, what):
    """Raise NetdevRefused when ``ifname`` is or carries the management interface."""
    mgmt = read_netdevs(node).management
    if ifname in mgmt:
        raise NetdevRefused(f"{node.name}: refusing to {what} {ifname}: it is the management "
                            f"interface ({mgmt[ifname]})")


# ------------------------------------------------------------ the upper device
class UpperDevice:
    """An upper netdev laghil makes over ``members`` (a bond, a team, a bridge).
    Subclasses set ``node``, ``name``, ``members`` and ``kind``, and may
    set :attr:`delete_action` (teamd owns a team's netdev)."""

    kind = "netdev"
    delete_action = "link_delete"        # laghil.undo_actions
    _saved = ()

    def _create(self, cmds, *, defer):
        check_can_create(self.node, self.kind, self.name, self.members)
        self._saved = [read_state(self.node, m) for m in self.members]
        self._read_more()
        defer(self.destroy_undo())
        self.node.run(" && ".join(cmds))
        return self

    def delete_command(self):
        return ACTIONS[self.delete_action][2](self.name)

    def _read_more(self):
        """What else a subclass reads before its undo is registered (its data)."""

    def _member_record(self, st):
        """A member's saved state as journal data (a subclass adds what it changed)."""
        return member_state(st)

    def destroy_undo(self):
        """:meth:`destroy` with its journal record: the delete and every member
        put back as it was (laghil.undo_actions ``netdev_destroy``)."""
        rec = node_record(self.node, "netdev_destroy", name=self.name,
                          team=self.delete_action == "team_delete",
                          members=[self._member_record(st) for st in self._saved],
                          what=f"delete {self.kind} {self.name}, members "
                               f"{', '.join(self.members) or 'none'} as they were")
        return Undo(self.destroy, rec, f"destroy {self.kind} {self.name}")

    def destroy(self):
        """Delete the device and return every member exactly as it was. Every
        step is tried; the failures are reported together afterwards."""
        problems = []
        try:
            self.node.run(self.delete_command())
        except LaghilError as e:
            problems.append(f"delete {self.name}: {e}")
        for st in self._saved:
            try:
                restore_state(self.node, st)
            except LaghilError as e:
                problems.append(f"restore {st.name}: {e}")
        if problems:
            raise UndoIncomplete(f"{self.node.name}: {self.kind} {self.name}: undo incomplete "
                                 f"({len(problems)} of {1 + len(self._saved)} steps failed): "
                                 + "; ".join(problems))
