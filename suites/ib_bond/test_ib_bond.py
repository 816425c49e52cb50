"""IB device bonding (marker ``ib_bond``): one logical RDMA device over several,
used unmodified by verbs applications. A contract suite: each host's
``rdma_aggregates`` entry in the lab file says what the aggregate is and claims
(members, mode, hidden members, link layer, affinity, SR-IOV); each claim is
proved here, and each one the lab cannot test is skipped naming it.

The virtual rack's aggregate is a stand-in, Soft-RoCE over a bond of the two
members, labeled as such in every figure's method.
"""

import secrets

import pytest

from laghil.drivers.ibbond import (TOOLS, aggregate_problems, parse_ibv_devinfo,
                                   parse_tool_output, tool_commands)
from laghil.drivers.roce import RoceLag, inventory
from laghil.measure.model import Measurement
from laghil.measure.probe import kill_tagged_command
from pytest_laghil.gating import lacks

pytestmark = [pytest.mark.ib_bond]

ITERS = 100
# the bond a stand-in's mode takes
STAND_IN_BOND = {"active-active": ("802.3ad", {"miimon": 10, "lacp_rate": "fast",
                                               "xmit_hash_policy": "layer3+4"}),
                 "active-passive": ("active-backup", {"miimon": 10})}


def _declared(request, lab):
    hosts = [h for h, s in lab.hosts.items() if s.rdma_aggregates][:2]
    if len(hosts) < 2:
        lacks(request, "rdma aggregate", lab, "two hosts declaring rdma_aggregates")
    return hosts, {h: lab.hosts[h].rdma_aggregates[0] for h in hosts}


@pytest.fixture
def aggregate_pair(request, lab, lag_pair, defer):
    """The declared aggregate on two hosts, made where it is a stand-in (rxe over
    a bond of the members), else brought about by bonding its members (mlx5
    makes mlx5_bond_0 by itself); found by attributes. -> (LagPair, {host: dev},
    {host: declaration})."""
    hosts, decl = _declared(request, lab)
    d = decl[hosts[0]]
    cables = [lab.cable_of(hosts[0], m.netdev) for m in d.members]
    if None in cables or any(not c.touches(hosts[1]) for c in cables):
        lacks(request, "rdma aggregate", lab, f"the members of {d.name} on {hosts[0]} must be "
              f"cabled to {hosts[1]}'s")
    mode, opts = STAND_IN_BOND[d.mode]
    members = {h: [m.netdev for m in decl[h].members] for h in hosts}
    pair = lag_pair("bond", mode, a=hosts[0], b=hosts[1], members=members, cables=cables,
                    **opts)
    devs = {}
    for lag in (pair.a, pair.b):
        r = RoceLag(lag, "rxe" if decl[lag.node.name].stand_in else decl[lag.node.name].provider)
        devs[lag.node.name] = r.create(defer=defer)
    return pair, devs, decl


def _gid_index(node, dev, ip):
    port = inventory(node)[dev].ports[1]
    for g in port.gids:
        if g.type == "RoCE v2" and g.ip == ip:
            return g.index
    raise AssertionError(f"{node.name}: {dev} has no RoCE v2 GID for {ip}: "
                         f"{[(g.index, g.type, g.ip) for g in port.gids]}")


def test_the_aggregate_is_one_device_the_stock_tools_use_by_its_name(aggregate_pair, defer,
                                                                    measure, profile):
    """Item 1: ``ibv_devinfo -d <name>``: one device, one port, ACTIVE, the
    declared link layer; found by attributes under its declared name; the
    members hidden (no RDMA device on a member netdev); ibv_rc_pingpong,
    ibv_ud_pingpong, ib_send_lat and rping between the hosts, unmodified, with
    no flag but the device's name: every iteration completes."""
    pair, devs, decl = aggregate_pair
    a, b = pair.a.node, pair.b.node
    for lag in (pair.a, pair.b):
        n, d = lag.node, decl[lag.node.name]
        assert devs[n.name] == d.name, (f"{n.name}: the aggregate on {lag.name} is "
                                        f"{devs[n.name]}, declared {d.name}")
        info = parse_ibv_devinfo(n.run(f"ibv_devinfo -d {d.name}").stdout)
        problems = aggregate_problems(info, d)
        assert not problems, f"{n.name}: " + "; ".join(problems)
        on_members = {x.name: sorted(x.netdevs & set(lag.members))
                      for x in inventory(n).values() if x.netdevs & set(lag.members)}
        if d.members_hidden:
            assert not on_members, f"{n.name}: RDMA devices on the members: {on_members}"
    gid = {a.name: _gid_index(a, devs[a.name], pair.ip_a),
           b.name: _gid_index(b, devs[b.name], pair.ip_b)}
    kind = "stand-in: Soft-RoCE over a bond" if decl[a.name].stand_in else decl[a.name].provider
    for i, tool in enumerate(TOOLS):
        tag = f"laghil-ib-{secrets.token_hex(4)}"
        server, _ = tool_commands(tool, devs[b.name], gid[b.name], pair.ip_b, ITERS,
                                  port=18600 + i)
        _, client = tool_commands(tool, devs[a.name], gid[a.name], pair.ip_b, ITERS,
                                  port=18600 + i)
        defer(b.run, kill_tagged_command(tag, remove_files=True), check=False)
        b.run(f"LAGHIL_TAG={tag} {server} > /tmp/{tag}.srv 2>&1 &")
        out = None
        for attempt in range(5):
            r = a.run(f"sleep 1; {client}", timeout=90, check=False)
            if r.rc == 0:
                out = r.stdout + r.stderr
                break
        assert out is not None, f"{tool} -d {devs[a.name]} -> {pair.ip_b}: rc {r.rc}: " \
                                f"{(r.stdout + r.stderr)[-600:]}"
        got = parse_tool_output(out, tool)
        assert got["iters"] >= ITERS, f"{tool}: {got['iters']} of {ITERS} iterations: {out[-400:]}"
        if got["usec"] is not None:
            measure.record(Measurement(
                f"{tool} latency", got["usec"], "us",
                f"{tool} client's own figure, {ITERS} iterations over {devs[a.name]} ({kind})",
                resolution=0.01, repetitions=[], threshold=None, profile=profile.label))
        print(f"{tool}: {got['iters']} iterations over {devs[a.name]}"
              + (f", {got['usec']:.1f} us" if got["usec"] is not None else ""))
