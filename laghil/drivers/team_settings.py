"""A team's failover settings as teamd runs them, against what they should be:
the runner's (lacp: active, fast_rate, sys_prio, select_policy) and every
port's link watch (ethtool: delay_up, delay_down; arp_ping: interval,
init_wait, missed_max), read from ``teamdctl <team> state dump`` and compared
with the configured value or, where the test set nothing, teamd's default
(runner: read once per runner from a fresh teamd without ports; link watch:
teamd.conf(5)). A setting nobody configured that differs is a mismatch naming
it, the expected and the read value.

Parsers are pure (tests/test_team_settings.py, on dumps captured in the rack).
"""

import json

from ..names import q, qif
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


def _s(v):
    return str(v).lower() if isinstance(v, bool) else str(v)


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
        defer(node.run, stop, check=False)
        text = node.run(f"teamd -d -t {t} -c {q(conf)} 2>/dev/null && teamdctl {t} state dump; "
                        f"r=$?; {stop}; exit $r").stdout
        d = json.loads(text)
        _DEFAULTS[key] = {k: _s(v) for k, v in (d.get("runner") or {}).items()
                          if k in RUNNER_KEYS.values()}
    return dict(_DEFAULTS[key])


def team_mismatches(team, *, defer):
    """:func:`mismatches` of a created Team against its config and teamd's defaults."""
    read = parse_settings(team.node.run(f"teamdctl {qif(team.name)} state dump").stdout)
    defaults = runner_defaults(team.node, team.mode, f"{team.name}d", defer=defer)
    return mismatches(read, expected_settings(team.config, defaults))
