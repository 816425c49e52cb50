"""Team driver: teamd config building and checking, the teamdctl state parser on
output captured from a Debian 12 guest (kernel 6.1, libteam 1.31), and the
create/destroy command sequences on a fake node (undo registered first, members
restored exactly)."""

import json
import shlex
from pathlib import Path

import pytest

from laghil.drivers.netdev import parse_state
from laghil.drivers.team import (LINK_WATCHERS, RUNNERS, Team, TeamError, lacp_state_bits,
                                 parse_port_link, parse_team_state, team_config)
from laghil.errors import BadName
from laghil.drivers.netdev import NetdevRefused, UndoIncomplete, preflight_command

from fake_iproute import FakeNode

CAP = Path(__file__).parent / "data" / "captures"


def cap(name):
    return (CAP / name).read_text()


# ------------------------------------------------------------------ parser

def test_lacp_state_dump_two_ports_current_selected_in_one_aggregator():
    s = parse_team_state(cap("h1-teamdctl-team1-lacp.json"))
    assert (s.device, s.runner_name, s.kernel_mode, s.pid) == ("team1", "lacp", "loadbalance", 257)
    assert s.lacp_active is True and s.lacp_fast_rate is True
    assert s.active_port is None
    assert set(s.ports) == {"eth3", "eth4"}
    for name in ("eth3", "eth4"):
        p = s.ports[name]
        assert p.name == name and p.mac == "52:54:00:00:01:03"
        assert p.up is True and p.link_up is True and p.speed == 10000 and p.down_count == 0
        assert p.selected is True and p.aggregator_id == 5 and p.lacp_state == "current"
        assert p.actor_state == 63 and p.partner_state == 63, f"{name}: {p}"
    assert s.aggregators() == {5: ["eth3", "eth4"]}


def test_lacp_state_63_is_active_fast_aggregatable_in_sync_collecting_distributing():
    assert lacp_state_bits(63) == ("activity", "timeout", "aggregation", "synchronization",
                                   "collecting", "distributing")
    assert lacp_state_bits(0x40 | 0x80) == ("defaulted", "expired")


def test_activebackup_state_dump_names_the_active_port():
    s = parse_team_state(cap("h1-teamdctl-team0-ab.json"))
    assert (s.device, s.runner_name, s.kernel_mode, s.pid) == ("team0", "activebackup",
                                                               "activebackup", 270)
    assert s.active_port == "eth1"
    assert s.lacp_active is None and s.lacp_fast_rate is None
    assert set(s.ports) == {"eth1", "eth2"}
    for p in s.ports.values():
        assert p.up and p.link_up and p.speed == 10000 and p.down_count == 0
        assert p.mac == "52:54:00:00:01:01"
        assert (p.selected, p.aggregator_id, p.lacp_state, p.actor_state, p.partner_state) == \
            (None, None, None, None, None)
    assert s.aggregators() == {}


def test_down_count_is_summed_over_watchers_and_no_active_port_is_none():
    d = json.loads(cap("h1-teamdctl-team0-ab.json"))
    d["runner"]["active_port"] = ""
    eth2 = d["ports"]["eth2"]["link_watches"]
    eth2["up"] = False
    eth2["list"]["link_watch_0"]["down_count"] = 2
    eth2["list"]["link_watch_1"] = {"name": "arp_ping", "up": False, "down_count": 3}
    s = parse_team_state(json.dumps(d))
    assert s.active_port is None
    assert s.ports["eth2"].down_count == 5 and s.ports["eth2"].up is False
    assert s.ports["eth1"].down_count == 0


def test_unselected_lacp_port_is_left_out_of_aggregators():
    d = json.loads(cap("h1-teamdctl-team1-lacp.json"))
    r = d["ports"]["eth4"]["runner"]
    r["selected"], r["state"], r["aggregator"] = False, "defaulted", {"id": 6, "selected": False}
    s = parse_team_state(json.dumps(d))
    assert s.ports["eth4"].selected is False and s.ports["eth4"].lacp_state == "defaulted"
    assert s.aggregators() == {5: ["eth3"]}


@pytest.mark.parametrize("text", ["", "teamdctl: command not found", "{}", "[1]"])
def test_garbage_state_dump_is_a_team_error(text):
    with pytest.raises(TeamError, match="teamdctl state dump"):
        parse_team_state(text)


def test_config_dump_actual_matches_team_config():
    actual = json.loads(cap("h1-teamdctl-team1-config.json"))
    built = team_config("team1", "lacp", ["eth3", "eth4"], active=True, fast_rate=True,
                        tx_hash=["eth", "ipv4", "l4"])
    assert built == actual


def test_ip_link_of_a_team_port():
    text = cap("h1-ip-d-j-eth3-team.json")
    pl = parse_port_link(text)
    assert (pl.name, pl.master, pl.slave_kind, pl.operstate, pl.mac) == \
        ("eth3", "team1", "team", "UP", "52:54:00:00:01:03")
    st = parse_state(text)      # netdev's saved state reads the same fields
    assert st.master == "team1" and st.up and st.mtu == 1500 and st.addrs == ()


# ------------------------------------------------------------------ config

def test_constants():
    assert RUNNERS == ("broadcast", "roundrobin", "random", "activebackup", "loadbalance", "lacp")
    assert LINK_WATCHERS == ("ethtool", "arp_ping")


@pytest.mark.parametrize("runner", RUNNERS)
def test_every_runner_builds_a_minimal_config(runner):
    c = team_config("team0", runner, ["eth1", "eth2"])
    assert c == {"device": "team0", "runner": {"name": runner},
                 "link_watch": {"name": "ethtool"}, "ports": {"eth1": {}, "eth2": {}}}
    json.dumps(c)


RUNNER_OPTS = {
    "broadcast": {},
    "roundrobin": {},
    "random": {},
    "activebackup": {"hwaddr_policy": "by_active"},
    "loadbalance": {"tx_hash": ("eth", "vlan", "ipv4", "ipv6", "ip", "l3", "tcp", "udp",
                                "sctp", "l4"),
                    "tx_balancer": {"name": "basic", "balancing_interval": 20}},
    "lacp": {"active": False, "fast_rate": True, "sys_prio": 100, "min_ports": 2,
             "agg_select_policy": "bandwidth", "tx_hash": ["l3", "l4"]},
}
PORT_OPTS = {
    "broadcast": {"eth1": {"queue_id": 1}},
    "roundrobin": {"eth1": {"prio": 3}},
    "random": {},
    "activebackup": {"eth1": {"prio": -10, "sticky": True}, "eth2": {"prio": 100}},
    "loadbalance": {"eth2": {"queue_id": 0}},
    "lacp": {"eth1": {"lacp_prio": 10, "lacp_key": 7, "prio": 1, "sticky": False}},
}


@pytest.mark.parametrize("runner", RUNNERS)
def test_every_runner_takes_its_own_options(runner):
    c = team_config("team0", runner, ["eth1", "eth2"], port_opts=PORT_OPTS[runner],
                    **RUNNER_OPTS[runner])
    want = {k: list(v) if isinstance(v, tuple) else v for k, v in RUNNER_OPTS[runner].items()}
    assert c["runner"] == {"name": runner, **want}
    assert c["ports"] == {"eth1": {}, "eth2": {}, **PORT_OPTS[runner]}
    json.loads(json.dumps(c))


def test_ethtool_watcher_with_delays():
    c = team_config("team0", "activebackup", ["eth1"], link_watch_opts={"delay_up": 2500,
                                                                        "delay_down": 1000})
    assert c["link_watch"] == {"name": "ethtool", "delay_up": 2500, "delay_down": 1000}


def test_arp_ping_watcher_with_all_options():
    opts = {"interval": 100, "missed_max": 30, "source_host": "192.168.23.2",
            "target_host": "192.168.23.1", "validate_active": True,
            "validate_inactive": False, "send_always": True, "init_wait": 50, "vlanid": 10}
    c = team_config("team0", "activebackup", ["eth1", "eth2"], link_watch="arp_ping",
                    link_watch_opts=opts)
    assert c["link_watch"] == {"name": "arp_ping", **opts}


BAD = [
    # (kwargs, exception, words the message must contain)
    ({"runner": "lacpp"}, TeamError, ["team0", "runner.name", "'lacpp'", "activebackup"]),
    ({"link_watch": "mii"}, TeamError, ["team0", "link_watch.name", "'mii'", "arp_ping"]),
    ({"runner": "roundrobin", "fast_rate": True}, TeamError,
     ["team0", "runner.fast_rate", "unknown option", "roundrobin"]),
    ({"runner": "activebackup", "tx_hash": ["eth"]}, TeamError,
     ["team0", "runner.tx_hash", "unknown option"]),
    ({"runner": "lacp", "tx_hash": ["eth", "ipv5"]}, TeamError,
     ["team0", "runner.tx_hash", "'ipv5'", "l4"]),
    ({"runner": "lacp", "tx_hash": "eth"}, TeamError, ["team0", "runner.tx_hash"]),
    ({"runner": "lacp", "tx_hash": []}, TeamError, ["team0", "runner.tx_hash", "non-empty"]),
    ({"runner": "lacp", "fast_rate": "yes"}, TeamError,
     ["team0", "runner.fast_rate", "true or false"]),
    ({"runner": "lacp", "sys_prio": 70000}, TeamError, ["team0", "runner.sys_prio", "0..65535"]),
    ({"runner": "lacp", "min_ports": 0}, TeamError, ["team0", "runner.min_ports", "1..255"]),
    ({"runner": "lacp", "agg_select_policy": "best"}, TeamError,
     ["team0", "runner.agg_select_policy", "lacp_prio_stable"]),
    ({"runner": "loadbalance", "tx_balancer": {"name": "fancy"}}, TeamError,
     ["team0", "runner.tx_balancer", "basic"]),
    ({"runner": "activebackup", "hwaddr_policy": "random"}, TeamError,
     ["team0", "runner.hwaddr_policy", "same_all"]),
    ({"link_watch_opts": {"interval": 100}}, TeamError,
     ["team0", "link_watch.interval", "unknown option", "ethtool"]),
    ({"link_watch_opts": {"delay_up": -1}}, TeamError, ["team0", "link_watch.delay_up"]),
    ({"link_watch_opts": {"delay_up": True}}, TeamError, ["team0", "link_watch.delay_up"]),
    ({"link_watch": "arp_ping", "link_watch_opts": {"interval": 100}}, TeamError,
     ["team0", "link_watch.target_host", "required"]),
    ({"link_watch": "arp_ping", "link_watch_opts": {"target_host": "10.0.0.1;reboot"}},
     TeamError, ["team0", "link_watch.target_host", "IPv4"]),
    ({"link_watch": "arp_ping", "link_watch_opts": {"target_host": "10.0.0.1",
                                                    "source_host": "fe80::1"}},
     TeamError, ["team0", "link_watch.source_host", "IPv4"]),
    ({"link_watch": "arp_ping", "link_watch_opts": {"target_host": "10.0.0.1",
                                                    "delay_up": 5}},
     TeamError, ["team0", "link_watch.delay_up", "arp_ping"]),
    ({"port_opts": {"eth1": {"sticky": True}}}, TeamError,
     ["team0", "ports.eth1.sticky", "unknown option", "roundrobin"]),
    ({"runner": "activebackup", "port_opts": {"eth1": {"lacp_prio": 1}}}, TeamError,
     ["team0", "ports.eth1.lacp_prio", "unknown option"]),
    ({"runner": "activebackup", "port_opts": {"eth1": {"prio": "high"}}}, TeamError,
     ["team0", "ports.eth1.prio", "integer"]),
    ({"port_opts": {"eth9": {"prio": 1}}}, TeamError, ["team0", "ports.eth9", "not a member"]),
    ({"members": ["eth1", "eth1"]}, TeamError, ["team0", "ports", "eth1", "more than once"]),
    ({"members": "eth1"}, TeamError, ["team0", "ports", "list"]),
    ({"members": ["eth1;reboot"]}, BadName, ["team team0: member", "'eth1;reboot'"]),
    ({"members": ["eth1", "$(reboot)"]}, BadName, ["team team0: member", "'$(reboot)'"]),
    ({"name": "team0 x"}, BadName, ["team name", "'team0 x'"]),
    ({"name": "t;reboot"}, BadName, ["team name", "'t;reboot'"]),
]


@pytest.mark.parametrize("kw,exc,words", BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_config_is_refused_naming_team_and_field(kw, exc, words):
    kw = dict(kw)
    args = (kw.pop("name", "team0"), kw.pop("runner", "roundrobin"),
            kw.pop("members", ["eth1", "eth2"]))
    with pytest.raises(exc) as ei:
        team_config(*args, **kw)
    for w in words:
        assert w in str(ei.value), f"{w!r} missing from: {ei.value}"


# ------------------------------------------------------------------ driver on a fake node

class Undo:
    def __init__(self, node):
        self.node, self.stack, self.at = node, [], []

    def __call__(self, fn, *args):
        self.stack.append((fn, args))
        self.at.append(len(self.node.cmds))     # commands run when the undo was registered

    def run_all(self):
        while self.stack:
            fn, args = self.stack.pop()
            fn(*args)


def _changes(cmd):
    return not (cmd.startswith(("ip -j addr show", "grep -H . /proc/sys/net/ipv6/conf/"))
                or cmd == preflight_command())


def test_create_registers_the_undo_before_changing_anything():
    node = FakeNode()
    undo = Undo(node)
    team = Team(node, "team0", "activebackup", ["eth1", "eth2"],
                port_opts={"eth1": {"prio": 10}}).create(defer=undo, address="192.168.201.1/24")
    assert (team.node, team.name, team.mode, team.members) == \
        (node, "team0", "activebackup", ["eth1", "eth2"])
    assert len(undo.stack) == 1 and undo.stack[0][0].fn == team.destroy
    assert undo.stack[0][0].records[0].args[1]["team"] is True
    first_change = next(i for i, c in enumerate(node.cmds) if _changes(c))
    assert undo.at[0] <= first_change, f"undo registered after: {node.cmds[:undo.at[0]]}"
    assert node.cmds[:first_change] == [preflight_command(),
                                        "ip -j addr show dev eth1", "ip -j addr show dev eth2",
                                        "grep -H . /proc/sys/net/ipv6/conf/eth1/disable_ipv6 "
                                        "/proc/sys/net/ipv6/conf/eth2/disable_ipv6"]
    # all the changes in one round trip, in order
    assert len(node.cmds) == first_change + 1
    parts = node.cmds[-1].split(" && ")
    assert parts[:2] == ["ip link set dev eth1 down", "ip link set dev eth2 down"]
    assert [("disable_ipv6" in x) for x in parts[2:4]] == [True, True]     # IPv6 off first
    parts = parts[:2] + parts[4:]
    assert parts[2].startswith("teamd -d -t team0 -c ")
    conf = json.loads(shlex.split(parts[2])[5])
    assert conf == team.config
    assert conf["runner"] == {"name": "activebackup"} and conf["ports"]["eth1"] == {"prio": 10}
    assert parts[3:] == ["ip link set dev team0 up", "ip addr add 192.168.201.1/24 dev team0"]
    assert node.links["eth1"]["master"] == "team0" and node.links["team0"]["up"]


def test_destroy_stops_teamd_waits_bounded_and_restores_members_exactly():
    node = FakeNode()
    before = {p: dict(node.links[p], addrs=list(node.links[p]["addrs"])) for p in ("eth1", "eth2")}
    undo = Undo(node)
    Team(node, "team0", "activebackup", ["eth1", "eth2"]).create(defer=undo)
    assert node.links["eth2"]["address"] != before["eth2"]["address"]
    n = len(node.cmds)
    undo.run_all()
    cmds = node.cmds[n:]
    kill = cmds[0]
    assert kill.startswith("if teamd -e -t team0 >/dev/null 2>&1; then teamd -k -t team0")
    assert "while [ -e /sys/class/net/team0 ] && [ $i -lt 50 ]; do sleep 0.1" in kill
    assert kill.endswith("if [ -e /sys/class/net/team0 ]; then ip link del dev team0; fi")
    assert "team0" not in node.links and not node.teamd
    # restore_state for every member: read, then put back MAC/admin state
    assert "ip -j addr show dev eth1" in cmds and "ip -j addr show dev eth2" in cmds
    assert any("ip link set dev eth2 address 52:54:00:00:01:02" in c for c in cmds)
    assert cmds[-1].endswith("ip link set dev eth2 up") and "ip link set dev eth1 up" in cmds
    for p in ("eth1", "eth2"):
        assert node.links[p] == before[p], f"{p} not restored: {node.links[p]} != {before[p]}"


def test_destroy_twice_is_harmless():
    node = FakeNode()
    team = Team(node, "team0", "lacp", ["eth1", "eth2"], fast_rate=True).create(defer=lambda *a: None)
    team.destroy()
    team.destroy()
    assert node.links["eth1"]["up"] and node.links["eth1"]["master"] is None


def test_destroy_restores_members_even_when_the_team_cannot_be_deleted():
    node = FakeNode()
    team = Team(node, "team0", "roundrobin", ["eth1", "eth2"]).create(defer=lambda *a: None)
    node.fail = "if teamd -e"
    with pytest.raises(UndoIncomplete, match=r"h1: team team0: undo incomplete"):
        team.destroy()
    assert node.cmds[-1].endswith("ip link set dev eth2 up")
    assert node.links["eth1"]["up"] and node.links["eth2"]["up"]


def test_an_existing_netdev_of_that_name_is_refused_without_registering_an_undo():
    node = FakeNode(ports=("eth1", "eth2", "team0"))
    undo = Undo(node)
    with pytest.raises(NetdevRefused, match="h1: refusing to create team team0: a netdev named "
                                            "team0 already exists"):
        Team(node, "team0", "roundrobin", ["eth1", "eth2"]).create(defer=undo)
    assert undo.stack == [] and node.cmds == [preflight_command()]


def test_bad_address_is_refused_before_anything_runs():
    node = FakeNode()
    undo = Undo(node)
    with pytest.raises(TeamError, match="h1: team team0: address '1.2.3.4/24; reboot'"):
        Team(node, "team0", "roundrobin", ["eth1"]).create(defer=undo, address="1.2.3.4/24; reboot")
    assert node.cmds == [] and undo.stack == []


def test_team_errors_name_the_node():
    node = FakeNode()
    with pytest.raises(TeamError, match=r"^h1: team team0: runner.name 'lacpp'"):
        Team(node, "team0", "lacpp", ["eth1"])
    with pytest.raises(BadName, match=r"^h1: team team0: member 'eth1;reboot'"):
        Team(node, "team0", "lacp", ["eth1;reboot"])
    with pytest.raises(TeamError, match=r"^h1: team team0: runner.tx_hash"):
        Team(node, "team0", "lacp", ["eth1"], tx_hash=["eth", "mac"])
    assert node.cmds == []


def test_state_and_active_port():
    node = FakeNode()
    team = Team(node, "team0", "activebackup", ["eth1", "eth2"])
    assert team.active_member() == "eth1"
    assert node.cmds == ["teamdctl team0 state dump"]
    assert team.state().ports["eth2"].up is True
    with pytest.raises(TeamError, match="h1: team team1: an active port .* runs lacp"):
        Team(node, "team1", "lacp", ["eth1"]).active_member()


def test_team_ports_lose_ipv6_and_get_it_back_as_it_was():
    """A team port keeps IPv6 (it is no IFF_SLAVE): its DAD, RS and MLD leave the
    inactive port with the team's MAC and move a switch's FDB entry there. The
    team turns it off per port, and the undo (journaled) puts each one back."""
    from laghil.drivers.team import parse_ipv6_disabled
    from laghil.undo_actions import ACTIONS, _member
    assert parse_ipv6_disabled("/proc/sys/net/ipv6/conf/eth1/disable_ipv6:0\n"
                               "/proc/sys/net/ipv6/conf/eth2/disable_ipv6:1\n") == \
        {"eth1": 0, "eth2": 1}
    node = FakeNode()
    undo = Undo(node)
    Team(node, "team0", "activebackup", ["eth1", "eth2"]).create(defer=undo)
    run = " && ".join(c for c in node.cmds if "teamd -d" in c)
    for m in ("eth1", "eth2"):
        off = f"echo 1 > /proc/sys/net/ipv6/conf/{m}/disable_ipv6"
        assert off in run and run.index(off) < run.index("teamd -d"), run
    rec = undo.stack[0][0].records[0]
    members = rec.args[1]["members"]
    # the fake has no /proc/sys: IPv6 unknown there, nothing to put back
    assert [m["ipv6_disabled"] for m in members] == [None, None], members
    cmd = ACTIONS["netdev_destroy"][2](name="team0", team=True, members=[
        _member({**members[0], "ipv6_disabled": 0})])
    assert "echo 0 > /proc/sys/net/ipv6/conf/eth1/disable_ipv6" in cmd, cmd
    with pytest.raises(Exception, match="ipv6_disabled|whole number"):
        _member({**members[0], "ipv6_disabled": "0; reboot"})
