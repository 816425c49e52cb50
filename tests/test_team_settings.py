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


# `teamnl lgteam0 options` in the rack: an activebackup team, a lacp team (no
# partner yet: no port enabled), a fresh lacp teamd without ports
def test_kernel_options_parsed_from_teamnl():
    from laghil.drivers.team_settings import parse_teamnl_options
    glob, ports = parse_teamnl_options(cap("h1-teamnl-options-ab.txt"))
    assert glob["mode"] == "activebackup" and glob["notify_peers_count"] == "1"
    assert ports["eth1"]["enabled"] == "true" and ports["eth2"]["enabled"] == "false"
    glob, ports = parse_teamnl_options(cap("h1-teamnl-options-lacp.txt"))
    assert glob["mode"] == "loadbalance" and glob["lb_tx_method"] == "hash"
    assert "bpf_hash_func" not in glob and "lb_tx_hash_to_port_mapping" not in glob
    assert "lb_port_stats" not in ports["eth1"], "binary values are not options to compare"


def test_kernel_options_against_a_fresh_teamd():
    from laghil.drivers.team_settings import (kernel_expected, kernel_read,
                                              parse_teamnl_options)
    fresh = parse_teamnl_options(cap("h1-teamnl-options-fresh-lacp.txt"))[0]
    conf = team_config("lgteam0", "lacp", ["eth1", "eth2"], active=True, fast_rate=True,
                       tx_hash=["eth", "ipv4", "l4"])
    text = cap("h1-teamnl-options-lacp.txt")
    assert mismatches(kernel_read(text), kernel_expected(conf, fresh)) == []
    # a peer notification count nobody set, and a port priority the config did not give
    wrong = text.replace(" notify_peers_count 0 ", " notify_peers_count 5 ").replace(
        " priority (port:eth1) 0 ", " priority (port:eth1) 7 ")
    assert sorted(str(m) for m in mismatches(kernel_read(wrong), kernel_expected(conf, fresh))) \
        == ["eth1.kernel.priority: read 7, expected 0 (kernel default)",
            "kernel.notify_peers_count: read 5, expected 0 (teamd default)"]
    # an activebackup team's kernel mode is not lacp's
    ab = kernel_read(cap("h1-teamnl-options-ab.txt"))
    assert "kernel.mode: read activebackup, expected loadbalance (teamd default)" in \
        [str(m) for m in mismatches(ab, kernel_expected(conf, fresh))]
