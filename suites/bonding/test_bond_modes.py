"""Linux bonding in all seven modes over a back-to-back pair: set up and state
verified from both /proc/net/bonding and netlink, distribution against the mode's
oracle, failover and fail-back under probe traffic judged against the profile.
One case per mode in CI; every option variant with --full-matrix."""

import pytest

from laghil.cases import BOND_CASES, Case
from laghil.measure.model import Measurement
from pytest_laghil import params
from pytest_laghil.lag_checks import (assert_failover, check_bond_state, check_distribution,
                                      record_failover, run_trials)

pytestmark = [pytest.mark.bonding, pytest.mark.ci, pytest.mark.requires("bonding", count=2)]


@pytest.mark.parametrize("case", params(BOND_CASES, needs=("bonding",)))
def test_bond_state_matches_configuration(lag_pair, case, defer):
    """/proc and netlink agree; every failover/distribution option reads back as
    configured or, where the case set nothing, as the driver's default."""
    pair = lag_pair("bond", case.mode, via=case.via, **case.options)
    for bond in (pair.a, pair.b):
        check_bond_state(bond, case, pair.partner_macs[bond.node.name], defer=defer)


@pytest.mark.distribution
@pytest.mark.parametrize("case", params(BOND_CASES, needs=("bonding",)))
def test_bond_distribution_follows_mode_oracle(lag_pair, case, measure, profile):
    pair = lag_pair("bond", case.mode, via=case.via, **case.options)
    check_distribution(pair, case, measure, profile)


@pytest.mark.failover
@pytest.mark.disruptive
@pytest.mark.parametrize("case", params(BOND_CASES, needs=("bonding",)))
def test_bond_failover_and_failback_within_profile(lag_pair, lab_rt, case, measure, profile,
                                                   defer, reps, pytestconfig):
    pair = lag_pair("bond", case.mode, via=case.via, **case.options)
    trials = run_trials(lab_rt, pair, case, reps, pytestconfig, defer=defer)
    figs = record_failover(trials, case, measure, profile)
    assert_failover(trials, pair, case, figs)


@pytest.mark.failover
@pytest.mark.disruptive
@pytest.mark.parametrize("reselect,returns", [
    ("always", True),
    ("failure", False),
    # better: back to the primary only if it is faster than the active member; the
    # rack's members have equal speeds, so the active member stays
    pytest.param("better", False, marks=pytest.mark.full_matrix),
])
def test_active_backup_failback_respects_updelay_and_primary_reselect(
        lag_pair, lab_rt, reselect, returns, measure, profile, defer, pytestconfig):
    updelay = 200
    case = Case("bond", "active-backup", {"miimon": 10, "updelay": updelay, "primary": 0,
                                          "primary_reselect": reselect}, "miimon_10")
    pair = lag_pair("bond", case.mode, via=case.via, **case.options)
    primary, backup = pair.members
    (t,) = run_trials(lab_rt, pair, case, 1, pytestconfig, defer=defer, member=primary)
    measure.timeline(t.res.timeline(f"active-backup primary {primary}, primary_reselect "
                                    f"{reselect}, updelay {updelay} ms", t.events))
    assert t.active_during == backup, f"active {t.active_during} while {primary} was out"
    want = primary if returns else backup
    assert t.active_after == want, (
        f"primary_reselect {reselect}: active {t.active_after} after {primary} came back, "
        f"want {want}")
    assert t.up_latency is not None, f"no 'link status definitely up' event for {primary}"
    up = measure.record(Measurement(
        "link up after restore", t.up_latency.latency_ms, "ms",
        "kernel 'link status definitely up' minus the restore instant (clock offset from SSH "
        "round trips)", resolution=t.up_latency.uncertainty_ms, threshold=updelay - t.up_latency.uncertainty_ms,
        comparison=">=", note=f"updelay {updelay} ms"))
    print(f"reselect {reselect}: active {t.active_before} -> {t.active_during} -> {t.active_after}"
          f"; link up {t.up_latency.latency_ms:.1f} +- {t.up_latency.uncertainty_ms:.1f} ms after "
          f"restore; reversion {t.reversion.reversion_max_ms:.1f} ms")
    assert up.verdict == "pass", (
        f"{primary} was declared up {up.value:.1f} ms after the restore, before updelay "
        f"{updelay} ms (uncertainty {up.resolution:.1f} ms)")
