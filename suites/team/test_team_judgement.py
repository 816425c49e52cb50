"""Negative control of the team suite (issue 21, item 3): a cable whose wire dies at
the pull while the sender's carrier drops late (a slow PHY): teamd can only act on
the carrier, so the failover is that much slower, and the judgement must say so."""

import pytest

from laghil.cases import Case
from laghil.measure.figures import failover_figures
from pytest_laghil.lag_checks import failover_problems, run_trials, slow_carrier, slow_phy_ms

pytestmark = [pytest.mark.team, pytest.mark.ci, pytest.mark.requires("team", count=2)]

CASE = Case("team", "loadbalance", {"tx_hash": ["eth", "ipv4", "l4"], "link_watch": "ethtool"},
            "ethtool")


@pytest.mark.failover
@pytest.mark.disruptive
@pytest.mark.requires("virtual_pull")
def test_a_slow_phy_fails_the_team_failover_figure(lag_pair, lab_rt, measure, profile, defer,
                                                  pytestconfig):
    pair = lag_pair("team", CASE.mode, **CASE.options)
    late = slow_phy_ms(CASE, profile, pytestconfig, pair)
    trials = run_trials(lab_rt, pair, CASE, 1, pytestconfig, defer=defer,
                        make_fault=slow_carrier(late_down_ms=late))
    figs = failover_figures(trials, profile, case=CASE, what=f"seeded slow PHY {late:g} ms")
    measure.timeline(trials[0].res.timeline(f"seeded slow PHY: carrier {late:g} ms late",
                                            trials[0].events))
    problems = failover_problems(trials, pair, CASE, figs)
    med = figs.gap_median
    print(f"carrier {late:g} ms late: T_gap {med.value} ms against {med.threshold:g} ms; "
          f"{problems}")
    assert any(p.startswith("T_gap median") for p in problems) and med.value >= 0.9 * late, (
        f"team {CASE.id()}: a carrier {late:g} ms late after its wire died was not judged "
        f"over the bound: T_gap {med.value} ms, bound {med.threshold:g} ms ({med.basis}); "
        f"{problems}")
