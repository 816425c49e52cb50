"""The suite tells a healthy bond from a broken one. A downdelay of 200 ms set on
the bond behind the suite's back (the case configures none; a network manager
or a vendor script can do it) makes a failover 10x slower than healthy. It must
fail the state check, naming downdelay, its expected and its read value, and
the failover judgement, naming the figure and the bound the configuration
allows. The same case, healthy, passes both in test_bond_modes.py."""

import pytest

from laghil.cases import Case
from laghil.measure.figures import failover_figures
from pytest_laghil.lag_checks import check_bond_state, failover_problems, run_trials

pytestmark = [pytest.mark.bonding, pytest.mark.ci, pytest.mark.requires("bonding", count=2)]

CASE = Case("bond", "active-backup", {"miimon": 10, "primary": 0}, "miimon_10")
SEEDED_DOWNDELAY_MS = 200


@pytest.mark.failover
@pytest.mark.disruptive
def test_a_downdelay_set_behind_the_suites_back_fails_state_and_failover(
        lag_pair, lab_rt, measure, profile, defer, pytestconfig):
    pair = lag_pair("bond", CASE.mode, **CASE.options)
    bond = pair.a
    # the seeded fault: on laghil's own bond, after the suite configured it
    bond.node.run(f"ip link set dev {bond.name} type bond downdelay {SEEDED_DOWNDELAY_MS}")

    with pytest.raises(AssertionError) as state:
        check_bond_state(bond, CASE, pair.partner_macs[bond.node.name], defer=defer)
    assert (f"downdelay: read {SEEDED_DOWNDELAY_MS}, expected 0 (driver default)"
            in str(state.value)), f"the state check did not name downdelay: {state.value}"

    trials = run_trials(lab_rt, pair, CASE, 1, pytestconfig, defer=defer)
    # judged, not recorded: these figures are meant to fail; the report keeps
    # only the timeline of the seeded failover
    figs = failover_figures(trials, profile, case=CASE, what=f"seeded downdelay "
                                                            f"{SEEDED_DOWNDELAY_MS} ms")
    measure.timeline(trials[0].res.timeline(
        f"seeded downdelay {SEEDED_DOWNDELAY_MS} ms: {trials[0].member}'s cable pulled",
        trials[0].events))
    problems = failover_problems(trials, pair, CASE, figs)
    med = figs.gap_median
    gap = next((p for p in problems if p.startswith("T_gap median")), None)
    print(f"seeded downdelay {SEEDED_DOWNDELAY_MS} ms: T_gap {med.value} ms against the bound "
          f"{med.threshold:g} ms ({med.basis}); detection {figs.detection_median.value} ms "
          f"against {figs.detection_median.threshold:g} ms; problems: {problems}")
    assert gap is not None and "the configuration allows" in gap and "downdelay 0" in gap, (
        f"a failover slowed by a {SEEDED_DOWNDELAY_MS} ms downdelay was not judged over its "
        f"bound: T_gap {med.value} ms, bound {med.threshold:g} ms; {problems}")
    assert med.value >= SEEDED_DOWNDELAY_MS > 3 * med.threshold / 1.5 > med.threshold, (
        f"T_gap {med.value} ms, bound {med.threshold:g} ms: the seeded downdelay "
        f"{SEEDED_DOWNDELAY_MS} ms must show in the figure and lie well above the bound")
    det = figs.detection_median
    assert det is not None and det.verdict == "fail" and det.value >= SEEDED_DOWNDELAY_MS, (
        f"the kernel's detection latency {det and det.value} ms must show the seeded "
        f"downdelay and fail its bound {det and det.threshold} ms")
