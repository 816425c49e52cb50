"""A team's failover settings as teamd runs them, against what they should be:
the runner's (lacp: active, fast_rate, sys_prio, select_policy) and every
port's link watch (ethtool: delay_up, delay_down; arp_ping: interval,
init_wait, missed_max), read from ``teamdctl <team> state dump`` and compared
with the configured value or, where the test set nothing, teamd's default
(runner: read once per runner from a fresh teamd without ports; link watch:
teamd.conf(5)). A setting nobody configured that differs is a mismatch naming
it, the expected and the read value.

The team's kernel options (``teamnl <team> options``: mode, notify_peers_*,
mcast_rejoin_*, lb_tx_method, lb_stats_refresh_interval; per port queue_id,
priority, user_linkup_enabled) are compared the same way: the globals with a
fresh teamd's of the same runner (read in the same run as the runner's
defaults), the ports' with the config's prio / queue_id or the kernel's
defaults.

Parsers are pure (tests/test_team_settings.py, on output captured in the rack).
"""

import json

from ..journal import node_undo
from ..names import q, qif
from ..parsing import parser
from .bond_config import Mismatch, version_of
from .netdev import check_can_create

# lacp runner: config key -> state dump key
RUNNER_KEYS = {"active": "active", "fast_rate": "fast_rate", "sys_prio": "sys_prio",
               "agg_select_policy": "select_policy"}
# link watch settings compared, and teamd's defaults (teamd.conf(5))
LINK_WATCH_KEYS = {"ethtool": ("delay_up", "delay_down"),
                   "arp_ping": ("interval", "init_wait", "missed_max")}
LINK_WATCH_DEFAULTS = {"ethtool": {"delay_up": 0, "delay_down": 0},
                       "arp_ping": {"init_wait": 0, "missed_max": 3}}


# teamnl options that affect failover or distribution
KERNEL_GLOBALS = ("mode", "notify_peers_count", "notify_peers_interval", "mcast_rejoin_count",
                  "mcast_rejoin_interval", "lb_tx_method", "lb_stats_refresh_interval")
# per port: option -> (config key, kernel default)
KERNEL_PORT = {"queue_id": ("queue_id", "0"), "priority": ("prio", "0"),
               "user_linkup_enabled": (None, "false")}
TEAMNL_SEP = "@@LAGHIL-TEAMNL@@"


@parser('teamnl options')
def parse_teamnl_options(text):
    """``teamnl <team> options`` -> ({option: value}, {port: {option: value}})
    (pure): array entries (``arridx``) and binary values (``\\00...``) skipped."""
    glob, ports = {}, {}
    for raw in text.splitlines():
        parts = raw.split()
        if not parts or "(arridx:" in raw:
            continue
        if len(parts) >= 3 and parts[1].startswith("(port:") and parts[1].endswith(")"):
            name, port, value = parts[0], parts[1][6:-1], " ".join(parts[2:])
            if not value.startswith("\\"):
                ports.setdefault(port, {})[name] = value
        elif len(parts) >= 2 and not parts[1].startswith("\\"):
            glob[parts[0]] = " ".join(parts[1:])
    return glob, ports


def kernel_expected(config, fresh_globals):
    """{option key: (value, source)}: globals as a fresh teamd of the runner sets
    them, ports' per :data:`KERNEL_PORT`."""
    out = {f"kernel.{k}": (fresh_globals[k], "teamd default")
           for k in KERNEL_GLOBALS if k in fresh_globals}
    for port, pconf in (config.get("ports") or {}).items():
        for opt, (ck, default) in KERNEL_PORT.items():
            if ck and ck in (pconf or {}):
                out[f"{port}.kernel.{opt}"] = (_s(pconf[ck]), "configured")
            else:
                out[f"{port}.kernel.{opt}"] = (default, "kernel default")
    return out


def kernel_read(text):
    glob, ports = parse_teamnl_options(text)
    out = {f"kernel.{k}": v for k, v in glob.items() if k in KERNEL_GLOBALS}
    for port, opts in ports.items():
        out.update({f"{port}.kernel.{k}": v for k, v in opts.items() if k in KERNEL_PORT})
    return out


def _s(v):
    return str(v).lower() if isinstance(v, bool) else str(v)


@parser('teamdctl config dump')
def parse_settings(text):
    """``teamdctl state dump`` -> {setting: value string} (pure): ``runner.<key>``
    and ``<port>.link_watch.<key>``."""
    d = json.loads(text) if isinstance(text, str) else text
    out = {f"runner.{k}": _s(v) for k, v in (d.get("runner") or {}).items()
           if k in RUNNER_KEYS.values()}
    for port, p in (d.get("ports") or {}).items():
        for lw in ((p.get("link_watches") or {}).get("list") or {}).values():
            for k in LINK_WATCH_KEYS.get(lw.get("name"), ()):
                if k in lw:
                    out[f"{port}.link_watch.{k}"] = _s(lw[k])
    return out


def expected_settings(config, runner_defaults):
    """{setting: (value string, source)} a team with teamd ``config`` must run with."""
    runner = config["runner"]
    out = {}
    for ck, sk in RUNNER_KEYS.items():
        if ck in runner:
            out[f"runner.{sk}"] = (_s(runner[ck]), "configured")
        elif sk in runner_defaults:
            out[f"runner.{sk}"] = (runner_defaults[sk], "teamd default")
    lw = config.get("link_watch") or {}
    name = lw.get("name", "ethtool")
    for port in config.get("ports") or {}:
        for k in LINK_WATCH_KEYS.get(name, ()):
            if k in lw:
                out[f"{port}.link_watch.{k}"] = (_s(lw[k]), "configured")
            elif k in LINK_WATCH_DEFAULTS.get(name, {}):
                out[f"{port}.link_watch.{k}"] = (_s(LINK_WATCH_DEFAULTS[name][k]),
                                                 "teamd default")
    return out


def mismatches(read, expected):
    return [Mismatch(k, want, read[k], source) for k, (want, source) in expected.items()
            if k in read and read[k] != want]


_DEFAULTS = {}      # (teamd version, runner) -> {state key: value string}


def runner_defaults(node, runner, name, *, defer):
    """teamd's runner defaults on ``node``, read from a fresh teamd named ``name``
    without ports (refused if the name is taken; its stop registered first),
    once per teamd version and runner."""
    version = version_of(node, "teamd -v 2>&1 | head -n 1")
    key = (version, runner)
    if key not in _DEFAULTS:
        check_can_create(node, "team", name, [])
        t = qif(name)
        conf = json.dumps({"device": name, "runner": {"name": runner}}, separators=(",", ":"))
        stop = f"teamd -e -t {t} >/dev/null 2>&1 && teamd -k -t {t} >/dev/null 2>&1; true"
        defer(node_undo(node, "team_delete", name=name, what=f"stop teamd {name}"))
        text = node.run(f"teamd -d -t {t} -c {q(conf)} 2>/dev/null && teamdctl {t} state dump "
                        f"&& echo {TEAMNL_SEP} && teamnl {t} options; r=$?; {stop}; "
                        f"exit $r").stdout
        dump, _, nl = text.partition(TEAMNL_SEP)
        d = json.loads(dump)
        _DEFAULTS[key] = {k: _s(v) for k, v in (d.get("runner") or {}).items()
                          if k in RUNNER_KEYS.values()}
        _KERNEL[key] = parse_teamnl_options(nl)[0]
    return dict(_DEFAULTS[key])


_KERNEL = {}        # (teamd version, runner) -> a fresh team's teamnl globals


def kernel_defaults(node, runner, name, *, defer):
    """A fresh teamd's kernel options (globals) for ``runner``, read with its
    runner defaults (:func:`runner_defaults`)."""
    runner_defaults(node, runner, name, defer=defer)
    version = version_of(node, "teamd -v 2>&1 | head -n 1")
    return dict(_KERNEL[(version, runner)])


def team_mismatches(team, *, defer):
    """:func:`mismatches` of a created Team against its config and teamd's
    defaults: teamd's runner and link-watch settings and the kernel's team options."""
    t = qif(team.name)
    dump, _, nl = team.node.run(f"teamdctl {t} state dump && echo {TEAMNL_SEP} && "
                                f"teamnl {t} options").stdout.partition(TEAMNL_SEP)
    defaults = runner_defaults(team.node, team.mode, f"{team.name}d", defer=defer)
    fresh = kernel_defaults(team.node, team.mode, f"{team.name}d", defer=defer)
    return (mismatches(parse_settings(dump), expected_settings(team.config, defaults))
            + mismatches(kernel_read(nl), kernel_expected(team.config, fresh)))
