"""Linux team over teamd: build and check the JSON config, create, read the state
(``teamdctl state dump``), destroy, with its undo registered before anything
changes.

teamd(8) owns the team netdev: ``teamd -d -t NAME -c JSON`` creates it and adds
the ports, ``teamd -k -t NAME`` removes both. Ports come back administratively
down, so the undo restores every member exactly (MAC, MTU, admin state,
addresses, master) from the state saved before the team was made.
"""

import ipaddress
import json
from dataclasses import dataclass, field

from ..errors import LaghilError
from ..lacp import state_names
from ..names import check_ifname, q, qif
from ..parsing import parser
from ..undo_actions import ipv6_set
from .netdev import UpperDevice, member_state

RUNNERS = ("broadcast", "roundrobin", "random", "activebackup", "loadbalance", "lacp")
LINK_WATCHERS = ("ethtool", "arp_ping")
TX_HASH = ("eth", "vlan", "ipv4", "ipv6", "ip", "l3", "tcp", "udp", "sctp", "l4")
HWADDR_POLICIES = ("same_all", "by_active", "only_active")
AGG_SELECT_POLICIES = ("lacp_prio", "lacp_prio_stable", "bandwidth", "count", "port_config")
TX_BALANCERS = ("basic",)


class TeamError(LaghilError):
    pass


# ------------------------------------------------------------------ config

# A value check returns None when the value is good, else what it should be.
def _bool(v):
    return None if isinstance(v, bool) else "true or false"


def _int(lo=None, hi=None):
    def check(v):
        if isinstance(v, int) and not isinstance(v, bool) \
                and (lo is None or v >= lo) and (hi is None or v <= hi):
            return None
        if lo is not None and hi is not None:
            return f"an integer {lo}..{hi}"
        return f"an integer >= {lo}" if lo is not None else "an integer"
    return check


def _choice(values):
    def check(v):
        return None if isinstance(v, str) and v in values else f"one of {', '.join(values)}"
    return check


def _ipv4(v):
    try:
        ipaddress.IPv4Address(v)
        return None
    except (ipaddress.AddressValueError, ValueError, TypeError):
        return "an IPv4 address such as 192.168.1.1"


def _tx_hash(v):
    want = f"a non-empty list of distinct items from {', '.join(TX_HASH)}"
    if not isinstance(v, (list, tuple)) or not v or len(set(map(str, v))) != len(v):
        return want
    bad = [x for x in v if not isinstance(x, str) or x not in TX_HASH]
    return f"{want}; {', '.join(repr(b) for b in bad)} is not" if bad else None


_TX_BALANCER = {"name": _choice(TX_BALANCERS), "balancing_interval": _int(1)}


def _tx_balancer(v):
    want = "an object {name: basic, balancing_interval: tenths of a second}"
    if not isinstance(v, dict) or "name" not in v:
        return want
    for k, val in v.items():
        check = _TX_BALANCER.get(k)
        if check is None:
            return f"{want}; {k!r} is not a tx_balancer option"
        why = check(val)
        if why:
            return f"{want}; {k} must be {why}"
    return None


_HASHING = {"tx_hash": _tx_hash, "tx_balancer": _tx_balancer}

RUNNER_OPTIONS = {
    "broadcast": {},
    "roundrobin": {},
    "random": {},
    "activebackup": {"hwaddr_policy": _choice(HWADDR_POLICIES)},
    "loadbalance": dict(_HASHING),
    "lacp": {**_HASHING, "active": _bool, "fast_rate": _bool, "sys_prio": _int(0, 65535),
             "min_ports": _int(1, 255), "agg_select_policy": _choice(AGG_SELECT_POLICIES)},
}

LINK_WATCH_OPTIONS = {
    "ethtool": {"delay_up": _int(0), "delay_down": _int(0)},
    "arp_ping": {"interval": _int(1), "init_wait": _int(0), "missed_max": _int(1),
                 "source_host": _ipv4, "target_host": _ipv4, "validate_active": _bool,
                 "validate_inactive": _bool, "send_always": _bool, "vlanid": _int(0, 4095)},
}
_LINK_WATCH_REQUIRED = {"arp_ping": ("target_host",)}

_PORT_COMMON = {"queue_id": _int(0), "prio": _int(-(2 ** 31), 2 ** 31 - 1)}
PORT_OPTIONS = {r: dict(_PORT_COMMON) for r in RUNNERS}
PORT_OPTIONS["activebackup"]["sticky"] = _bool
PORT_OPTIONS["lacp"].update(sticky=_bool, lacp_prio=_int(0, 65535), lacp_key=_int(0, 65535))


def _check_opts(team, path, opts, known, what):
    """Check ``opts`` against ``known`` ({key: check}); TeamError names team and field."""
    if not isinstance(opts, dict):
        raise TeamError(f"team {team}: {path} must be an object of options, not {opts!r}")
    for k, v in opts.items():
        if k not in known:
            allowed = ", ".join(known) if known else "none"
            raise TeamError(f"team {team}: {path}.{k}: unknown option for {what} "
                            f"(known: {allowed})")
        why = known[k](v)
        if why:
            raise TeamError(f"team {team}: {path}.{k} = {v!r}: must be {why}")
    return {k: list(v) if isinstance(v, tuple) else v for k, v in opts.items()}


def team_config(name, runner, members, link_watch="ethtool", link_watch_opts=None,
                port_opts=None, **runner_opts):
    """The teamd JSON config (a dict) for team ``name`` over ``members``.

    ``runner_opts`` go into ``runner`` (e.g. ``tx_hash=["eth", "l4"]``,
    ``fast_rate=True``, ``hwaddr_policy="by_active"``), ``link_watch_opts`` into
    ``link_watch`` (ethtool: delay_up/delay_down; arp_ping: target_host,
    interval, missed_max...), ``port_opts`` is ``{member: {prio, sticky, ...}}``.
    Every name, key and value is checked: TeamError (or BadName for a name) says
    which team and which field."""
    check_ifname(name, "team name")
    if runner not in RUNNERS:
        raise TeamError(f"team {name}: runner.name {runner!r} is not a teamd runner "
                        f"(one of {', '.join(RUNNERS)})")
    if link_watch not in LINK_WATCHERS:
        raise TeamError(f"team {name}: link_watch.name {link_watch!r} is not a supported "
                        f"link watcher (one of {', '.join(LINK_WATCHERS)})")
    if isinstance(members, str) or not isinstance(members, (list, tuple)):
        raise TeamError(f"team {name}: ports must be a list of interface names, not {members!r}")
    members = [check_ifname(m, f"team {name}: member") for m in members]
    dup = sorted({m for m in members if members.count(m) > 1})
    if dup:
        raise TeamError(f"team {name}: ports: {', '.join(dup)} listed more than once")
    if name in members:
        raise TeamError(f"team {name}: ports: the team cannot be its own port")

    run = _check_opts(name, "runner", runner_opts, RUNNER_OPTIONS[runner], f"runner {runner}")
    lw = _check_opts(name, "link_watch", dict(link_watch_opts or {}),
                     LINK_WATCH_OPTIONS[link_watch], f"link watcher {link_watch}")
    for k in _LINK_WATCH_REQUIRED.get(link_watch, ()):
        if k not in lw:
            raise TeamError(f"team {name}: link_watch.{k} is required by {link_watch}")

    port_opts = dict(port_opts or {})
    for p in port_opts:
        if p not in members:
            raise TeamError(f"team {name}: ports.{p}: options given for a port that is not "
                            f"a member ({', '.join(members) or 'no members'})")
    ports = {m: _check_opts(name, f"ports.{m}", port_opts.get(m, {}), PORT_OPTIONS[runner],
                            f"runner {runner} ports") for m in members}
    return {"device": name, "runner": {"name": runner, **run},
            "link_watch": {"name": link_watch, **lw}, "ports": ports}


# ------------------------------------------------------------------ state

@dataclass(frozen=True)
class TeamPort:
    name: str
    mac: str | None
    up: bool                    # link_watches.up: what the runner acts on
    link_up: bool               # carrier as teamd sees it (link.up)
    speed: int | None           # Mb/s
    down_count: int             # summed over the link watchers
    selected: bool | None = None        # lacp: runner.selected; None for other runners
    aggregator_id: int | None = None    # lacp
    lacp_state: str | None = None       # lacp: current, expired, defaulted, disabled
    actor_state: int | None = None      # lacp: actor_lacpdu_info.state
    partner_state: int | None = None    # lacp: partner_lacpdu_info.state


@dataclass(frozen=True)
class TeamState:
    device: str | None
    runner_name: str
    kernel_mode: str | None
    pid: int | None
    active_port: str | None = None      # activebackup; None when no port is active
    lacp_active: bool | None = None     # lacp runner.active
    lacp_fast_rate: bool | None = None  # lacp runner.fast_rate
    ports: dict = field(default_factory=dict)   # {ifname: TeamPort}

    def aggregators(self):
        """lacp: {aggregator id: [selected ports, sorted]}."""
        aggs = {}
        for name in sorted(self.ports):
            p = self.ports[name]
            if p.selected and p.aggregator_id is not None:
                aggs.setdefault(p.aggregator_id, []).append(name)
        return aggs


def lacp_state_bits(state):
    """Names of the LACP state bits set in ``state`` (e.g. 63 -> activity ... distributing)."""
    return tuple(state_names(int(state)))


@parser('teamdctl state dump')
def parse_team_state(text):
    """``teamdctl <team> state dump`` (JSON) -> TeamState."""
    try:
        d = json.loads(text)
        setup = d["setup"]
        runner_name = setup["runner_name"]
    except (ValueError, TypeError, KeyError) as e:
        head = (text or "").strip()[:80]
        raise TeamError(f"teamdctl state dump: not a team state ({type(e).__name__}: {e}): "
                        f"{head!r}") from None
    runner = d.get("runner") or {}
    lacp = runner_name == "lacp"
    ports = {}
    for ifname, p in (d.get("ports") or {}).items():
        lws = p.get("link_watches") or {}
        link = p.get("link") or {}
        pr = p.get("runner") or {}
        ports[ifname] = TeamPort(
            name=ifname,
            mac=(p.get("ifinfo") or {}).get("dev_addr"),
            up=bool(lws.get("up", False)),
            link_up=bool(link.get("up", False)),
            speed=link.get("speed"),
            down_count=sum(int(w.get("down_count", 0))
                           for w in (lws.get("list") or {}).values()),
            selected=pr.get("selected") if lacp else None,
            aggregator_id=(pr.get("aggregator") or {}).get("id") if lacp else None,
            lacp_state=pr.get("state") if lacp else None,
            actor_state=(pr.get("actor_lacpdu_info") or {}).get("state") if lacp else None,
            partner_state=(pr.get("partner_lacpdu_info") or {}).get("state") if lacp else None,
        )
    return TeamState(
        device=((d.get("team_device") or {}).get("ifinfo") or {}).get("ifname"),
        runner_name=runner_name,
        kernel_mode=setup.get("kernel_team_mode_name"),
        pid=setup.get("pid"),
        active_port=(runner.get("active_port") or None) if runner_name == "activebackup" else None,
        lacp_active=runner.get("active") if lacp else None,
        lacp_fast_rate=runner.get("fast_rate") if lacp else None,
        ports=ports,
    )


@dataclass(frozen=True)
class PortLink:
    name: str
    master: str | None
    slave_kind: str | None      # "team" for a team port
    operstate: str | None
    mac: str | None


@parser('ip -d -j link show (team port)')
def parse_port_link(text):
    """``ip -d -j link show dev <port>`` -> PortLink (is it a team port, of which team)."""
    d = json.loads(text)[0]
    return PortLink(d["ifname"], d.get("master"),
                    (d.get("linkinfo") or {}).get("info_slave_kind"),
                    d.get("operstate"), d.get("address"))


@parser('grep -H . /proc/sys/net/ipv6/conf/*/disable_ipv6')
def parse_ipv6_disabled(text):
    """``grep -H . .../conf/<port>/disable_ipv6`` -> {port: 0 or 1} (a port without
    IPv6 has no file: not in the result)."""
    out = {}
    for ln in (text or "").splitlines():
        path, _, v = ln.strip().rpartition(":")
        parts = path.split("/")
        if len(parts) >= 2 and parts[-1] == "disable_ipv6" and v in ("0", "1"):
            out[parts[-2]] = int(v)
    return out


# ------------------------------------------------------------------ driver

class Team(UpperDevice):
    """A teamd team: one of the :mod:`laghil.drivers.lag` LAGs. Its ``mode`` is
    the teamd runner."""

    kind = "team"
    delete_action = "team_delete"

    def __init__(self, node, name, mode, members, link_watch="ethtool",
                 link_watch_opts=None, port_opts=None, **runner_opts):
        try:
            self.config = team_config(name, mode, members, link_watch, link_watch_opts,
                                      port_opts, **runner_opts)
        except LaghilError as e:
            raise type(e)(f"{node.name}: {e}") from None
        self.node, self.name, self.mode = node, name, mode
        self.members = list(self.config["ports"])
        self.link_watch = link_watch

    def __repr__(self):
        return f"<Team {self.node.name}:{self.name} {self.mode} {self.members}>"

    def create_commands(self, address=None):
        t = qif(self.name)
        cmds = [f"ip link set dev {qif(m)} down" for m in self.members]
        # A team port is not a kernel "slave" (IFF_SLAVE, which stops IPv6 addrconf on a
        # bond's members): it keeps its IPv6 link-local, and its DAD, router
        # solicitations and MLD reports go out of the inactive port too, with the
        # team's MAC, so a switch learns that MAC on the port that drops what it gets
        # (activebackup through the twin of rack3's switch: every packet to the team
        # lost). NetworkManager turns IPv6 off on team ports; laghil does so too, and
        # puts each port's setting back (the undo, registered first).
        cmds += [ipv6_set(m, 1) for m in self.members]
        # teamd says "This program is not intended to be run as root." on stderr: harmless
        cmds.append(f"teamd -d -t {t} -c {q(json.dumps(self.config, separators=(',', ':')))}")
        cmds.append(f"ip link set dev {t} up")
        if address is not None:
            cmds.append(f"ip addr add {q(address)} dev {t}")
        return cmds

    def _read_more(self):
        # each port's IPv6 setting before laghil turns it off (the undo's data)
        out = self.node.run("grep -H . " + " ".join(
            q(f"/proc/sys/net/ipv6/conf/{check_ifname(m)}/disable_ipv6") for m in self.members),
            check=False).stdout
        self._ipv6 = {m: None for m in self.members} | parse_ipv6_disabled(out)

    def _member_record(self, st):
        return {**member_state(st), "ipv6_disabled": getattr(self, "_ipv6", {}).get(st.name)}

    def destroy(self):
        try:
            super().destroy()
        finally:
            back = [ipv6_set(m, v) for m, v in getattr(self, "_ipv6", {}).items()
                    if v is not None]
            if back:
                self.node.run("; ".join(back))

    def create(self, *, defer, address=None):
        """Start teamd for the team (members down first, teamd adds them), bring it
        up (and add ``address``). Refused (nothing changed) when the name or a
        member is not laghil's to take; the undo (destroy + restore every
        member) is registered first."""
        if address is not None:
            try:
                ipaddress.ip_interface(address)
            except ValueError:
                raise TeamError(f"{self.node.name}: team {self.name}: address {address!r} "
                                "is not an IP address with prefix (e.g. 192.168.1.1/24)") from None
        return self._create(self.create_commands(address), defer=defer)


    def state(self):
        """TeamState from ``teamdctl <team> state dump``."""
        return parse_team_state(self.node.run(f"teamdctl {qif(self.name)} state dump").stdout)

    def config_actual(self):
        """The config teamd runs with (``teamdctl <team> config dump actual``), as a dict."""
        return json.loads(self.node.run(f"teamdctl {qif(self.name)} config dump actual").stdout)

    def active_member(self):
        """activebackup: the active port's name (None when none is active)."""
        if self.mode != "activebackup":
            raise TeamError(f"{self.node.name}: team {self.name}: an active port is an "
                            f"activebackup notion; this team runs {self.mode}")
        return self.state().active_port

    def set_active_member(self, member):
        """activebackup: make ``member`` the active port (``teamdctl ... state item
        set runner.active_port``), as an operator moves traffic."""
        self.active_member()        # refuses another runner
        if member not in self.members:
            raise TeamError(f"{self.node.name}: team {self.name}: {member!r} is not a port "
                            f"({', '.join(self.members)})")
        self.node.run(f"teamdctl {qif(self.name)} state item set runner.active_port "
                      f"{qif(member)}")

    def ready(self):
        """None when the team is ready for traffic, else what is still missing."""
        return ready_problem(self.state(), self.mode, self.members)

    def port_link(self, member):
        """PortLink of ``member`` from ``ip -d -j link`` (master, slave kind)."""
        return parse_port_link(self.node.run(f"ip -d -j link show dev {qif(member)}").stdout)


def ready_problem(st, mode, members):
    """Why a team in state ``st`` is not ready (pure; None if it is): every port
    up, lacp: one aggregator holding every port, activebackup: an active port."""
    down = [p for p in members if p not in st.ports or not st.ports[p].up]
    if down:
        return f"ports not up: {down}"
    if mode == "lacp":
        aggs = st.aggregators()
        if len(aggs) != 1 or len(next(iter(aggs.values()))) != len(members):
            return f"aggregators {aggs}: want one holding {members}"
    if mode == "activebackup" and not st.active_port:
        return "no active port"
    return None
