"""A team's settings as teamd runs them against the config and teamd's defaults
(laghil.drivers.team_settings), on dumps captured in the rack."""

import json

from fake_iproute import cap
from laghil.drivers.team import team_config
from laghil.drivers.team_settings import expected_settings, mismatches, parse_settings

LACP = cap("h1-teamdctl-team1-lacp.json")
# `teamd -d -t lgteam0d -c '{"device":"lgteam0d","runner":{"name":"lacp"}}' &&
# teamdctl lgteam0d state dump` in the rack: teamd's lacp runner defaults
FRESH = {k: str(v).lower() if isinstance(v, bool) else str(v)
         for k, v in json.loads(cap("h1-teamdctl-fresh-lacp.json"))["runner"].items()}


def _config(**runner):
    ports = sorted(json.loads(LACP)["ports"])
    return team_config("team1", "lacp", ports, **runner)


def test_settings_read_from_a_state_dump():
    s = parse_settings(LACP)
    assert s["runner.active"] == "true" and s["runner.fast_rate"] == "true"
    assert s["runner.sys_prio"] == "65535" and s["runner.select_policy"] == "lacp_prio"
    port = sorted(json.loads(LACP)["ports"])[0]
    assert s[f"{port}.link_watch.delay_down"] == "0"


def test_fresh_teamd_defaults_and_a_healthy_team_has_no_mismatch():
    assert FRESH["fast_rate"] == "false" and FRESH["active"] == "true"
    exp = expected_settings(_config(active=True, fast_rate=True), FRESH)
    assert mismatches(parse_settings(LACP), exp) == []


def test_a_setting_nobody_configured_that_differs_is_named():
    exp = expected_settings(_config(active=True), FRESH)       # fast_rate not configured
    (m,) = mismatches(parse_settings(LACP), exp)
    assert str(m) == "runner.fast_rate: read true, expected false (teamd default)"
    port = sorted(json.loads(LACP)["ports"])[0]
    slow = json.loads(LACP)
    slow["ports"][port]["link_watches"]["list"]["link_watch_0"]["delay_down"] = 200
    wrong = mismatches(parse_settings(json.dumps(slow)),
                       expected_settings(_config(active=True, fast_rate=True), FRESH))
    assert [str(w) for w in wrong] == [
        f"{port}.link_watch.delay_down: read 200, expected 0 (teamd default)"]
