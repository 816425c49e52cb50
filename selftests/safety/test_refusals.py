"""laghil never takes what it did not make, on a real node: a netdev that
already has the LAG's name (a server's own bond), a member already enslaved
elsewhere, the management interface the session runs over. Each is refused
before the first change, naming the node and the netdev, and is still there,
unchanged, afterwards."""

import json

import pytest

from laghil.drivers.lag import make_lag
from laghil.drivers.netdev import NetdevRefused
from laghil.journal import node_undo
from pytest_laghil.lag import pick_path

from laghil.pairs import needs_of

pytestmark = [pytest.mark.ci, pytest.mark.requires("bonding", count=2)]


def _link(node, name):
    """(ifindex, master, operstate) of ``name`` on ``node``, None if absent."""
    r = node.run(f"ip -j link show dev {name} 2>/dev/null", check=False)
    if r.rc:
        return None
    d = json.loads(r.stdout)[0]
    return d["ifindex"], d.get("master"), d.get("operstate")


def _where(request, lab, kind="bond", mode=None):
    """(the host a LAG test would start on, its two members): chosen by
    capability and topology as lag_pair chooses them, never a gateway."""
    path = pick_path(request, lab, needs_of(kind, mode))
    return path.a, path.ports[path.a]


def _own(node, name, cmds, *, defer):
    """A netdev the TEST makes to stand for the server's own: raw commands, its
    removal registered first."""
    defer(node_undo(node, "link_delete", name=name))
    node.run(" && ".join(cmds))


@pytest.mark.parametrize("kind,mode", [("bond", "802.3ad"), ("team", "lacp")])
def test_a_netdev_with_the_lags_name_is_refused_and_left_alone(request, lab, node, lag_pair,
                                                                defer, kind, mode):
    host, members = _where(request, lab, kind, mode)
    h = node(host)
    name = getattr(lab.device_names, kind)
    _own(h, name, [f"ip link add name {name} type bond mode active-backup"], defer=defer)
    before = _link(h, name)
    with pytest.raises(NetdevRefused) as e:
        lag_pair(kind, mode)
    msg = str(e.value)
    assert f"{host}: refusing to create {kind} {name}" in msg and "already exists" in msg, msg
    assert _link(h, name) == before, f"{host}:{name} changed: {before} -> {_link(h, name)}"
    assert all(_link(h, m)[1] is None for m in members), "a member was enslaved all the same"


def test_a_member_enslaved_elsewhere_is_refused_and_left_alone(request, lab, node, defer):
    host, (m1, m2) = _where(request, lab)
    h = node(host)
    own = "prodbond9"
    defer(node_undo(h, "link_set", name=m2, up=True))     # runs last: after the delete
    _own(h, own, [f"ip link add name {own} type bond mode active-backup",
                         f"ip link set dev {m2} down", f"ip link set dev {m2} master {own}"],
         defer=defer)
    before = _link(h, m2)
    lag = make_lag(h, "bond", "balance-xor", [m1, m2], name=lab.device_names.bond)
    with pytest.raises(NetdevRefused, match=f"{host}: refusing to create bond "
                                            f"{lab.device_names.bond}: member {m2} on {host} is "
                                            f"already enslaved to {own}"):
        lag.create(defer=defer)
    assert _link(h, m2) == before and _link(h, lab.device_names.bond) is None


def test_the_management_interface_is_refused_whatever_the_lab_says(request, lab, node, defer):
    host, (m1, _) = _where(request, lab, "team")
    h = node(host)
    ssh = h.run('echo "$SSH_CONNECTION"', sudo=False).stdout.split()
    addrs = json.loads(h.run("ip -j addr show").stdout)
    mgmt = next(d["ifname"] for d in addrs
                if any(a.get("local") == ssh[2] for a in d.get("addr_info", [])))
    before = _link(h, mgmt)
    lag = make_lag(h, "team", "activebackup", [m1, mgmt], name=lab.device_names.team)
    with pytest.raises(NetdevRefused, match=f"{host}: refusing to create team "
                                            f"{lab.device_names.team}: member {mgmt} on {host} "
                                            "is the management interface"):
        lag.create(defer=defer)
    assert _link(h, mgmt) == before and _link(h, m1)[1] is None
    assert h.run("true").rc == 0
