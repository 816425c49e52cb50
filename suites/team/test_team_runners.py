"""The team driver with every teamd runner over a back-to-back pair: set up and
state verified from `teamdctl state dump` and netlink, distribution against the
runner's oracle, failover and fail-back under probe traffic judged against the
profile. One case per runner in CI; variants with --full-matrix."""

import pytest

from laghil.cases import TEAM_CASES
from laghil.lacp import healthy_state
from pytest_laghil import params
from pytest_laghil.lag_checks import assert_failover, check_distribution, record_failover, run_trials

pytestmark = [pytest.mark.team, pytest.mark.ci, pytest.mark.requires("team", count=2)]


def _make(lag_pair, case):
    opts = dict(case.options)
    return lag_pair("team", case.mode, via=case.via, **opts)


@pytest.mark.parametrize("case", params(TEAM_CASES))
def test_team_state_matches_configuration(lag_pair, case):
    pair = _make(lag_pair, case)
    for team in (pair.a, pair.b):
        st = team.state()
        where = f"{team.node.name}:{team.name}"
        assert st.runner_name == case.mode, f"{where}: runner {st.runner_name}, configured {case.mode}"
        assert sorted(st.ports) == sorted(team.members), f"{where}: ports {sorted(st.ports)}"
        for p in team.members:
            link = team.port_link(p)
            assert link.master == team.name and link.slave_kind == "team", (
                f"{where}: netlink shows {p} with master {link.master!r} ({link.slave_kind}), "
                "teamd lists it as a port")
            assert st.ports[p].up, f"{where}: port {p} link watch down"
        if case.mode == "activebackup":
            assert st.active_port in team.members, f"{where}: active port {st.active_port!r}"
        if case.mode == "lacp":
            want = healthy_state(case.lacp_fast)
            aggs = st.aggregators()
            assert len(aggs) == 1 and sorted(next(iter(aggs.values()))) == sorted(team.members), (
                f"{where}: aggregators {aggs}: want one holding {team.members}")
            for p in team.members:
                tp = st.ports[p]
                assert tp.lacp_state == "current" and tp.selected, (
                    f"{where}: {p} LACP state {tp.lacp_state}, selected {tp.selected}")
                assert (tp.actor_state, tp.partner_state) == (want, want), (
                    f"{where}: {p} actor/partner state {tp.actor_state}/{tp.partner_state}, want {want}")


@pytest.mark.distribution
@pytest.mark.parametrize("case", params(TEAM_CASES))
def test_team_distribution_follows_runner_oracle(lag_pair, case, measure, profile):
    pair = _make(lag_pair, case)
    check_distribution(pair, case, measure, profile)


@pytest.mark.failover
@pytest.mark.disruptive
@pytest.mark.parametrize("case", params(TEAM_CASES))
def test_team_failover_and_failback_within_profile(lag_pair, lab_rt, case, measure, profile,
                                                   defer, reps, pytestconfig):
    pair = _make(lag_pair, case)
    trials = run_trials(lab_rt, pair, case, reps, pytestconfig, defer=defer)
    figs = record_failover(trials, case, measure, profile)
    assert_failover(trials, pair, case, figs)
