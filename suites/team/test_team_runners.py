"""The team driver with every teamd runner over a back-to-back pair: set up and
state verified from `teamdctl state dump` and netlink, distribution against the
runner's oracle, failover and fail-back under probe traffic judged against the
profile. One case per runner in CI; variants with --full-matrix."""

import pytest

from laghil.cases import TEAM_CASES
from pytest_laghil import params
from pytest_laghil.lag_checks import (assert_failover, check_distribution, check_team_state,
                                      record_failover, run_trials)

pytestmark = [pytest.mark.team, pytest.mark.ci, pytest.mark.requires("team", count=2)]


def _make(lag_pair, case):
    opts = dict(case.options)
    return lag_pair("team", case.mode, via=case.via, **opts)


@pytest.mark.parametrize("case", params(TEAM_CASES, needs=("team",)))
def test_team_state_matches_configuration(lag_pair, case, defer):
    """teamd and netlink agree; the runner's and every port's link-watch settings
    read back as configured or, where the case set nothing, as teamd's defaults."""
    pair = _make(lag_pair, case)
    for team in (pair.a, pair.b):
        check_team_state(team, case, defer=defer)


@pytest.mark.distribution
@pytest.mark.parametrize("case", params(TEAM_CASES, needs=("team",)))
def test_team_distribution_follows_runner_oracle(lag_pair, case, measure, profile):
    pair = _make(lag_pair, case)
    check_distribution(pair, case, measure, profile)


@pytest.mark.failover
@pytest.mark.disruptive
@pytest.mark.parametrize("case", params(TEAM_CASES, needs=("team",)))
def test_team_failover_and_failback_within_profile(lag_pair, lab_rt, case, measure, profile,
                                                   defer, reps, pytestconfig):
    pair = _make(lag_pair, case)
    trials = run_trials(lab_rt, pair, case, reps, pytestconfig, defer=defer)
    figs = record_failover(trials, case, measure, profile)
    assert_failover(trials, pair, case, figs)
