"""How a run's tests are grouped for the people who read it: by use case (from
the test's markers) and by mode or runner (from its parameters), failures and
known defects first. Shared by report.html and the allure labels."""

import re

# marker -> use case, first match wins (a RoCE LAG test is also a bonding test)
USE_CASES = (("roce_lag", "RoCE LAG"), ("sriov_lag", "SR-IOV VF LAG"),
             ("switch_lag", "switch LAG"), ("ib_bond", "IB device bonding"), ("lacp", "LACP"),
             ("team", "team"), ("bonding", "bonding"), ("smoke", "lab health"))
# the order a reader meets them: the LAG itself, then the use cases built on it
ORDER = ["bonding", "team", "LACP", "RoCE LAG", "switch LAG", "SR-IOV VF LAG",
         "IB device bonding", "lab health", "other"]
# verdicts a reader must see first
VERDICT_ORDER = {"failed": 0, "error": 1, "xfailed": 2, "passed": 3, "skipped": 4}


def use_case(markers):
    marks = set(markers or ())
    return next((name for mark, name in USE_CASES if mark in marks), "other")


def mode_of(name):
    """The mode or runner in a test's parameter id: ``test_x[802.3ad-via-switch[miimon=10]]``
    -> ``802.3ad-via-switch``, ``test_y[bond-active-backup]`` -> ``bond-active-backup``."""
    m = re.search(r"\[([^\[\]]+?)(?:\[.*\])?\]$", name or "")
    return m.group(1) if m else ""


def grouped(tests):
    """[(use case, [tests, failures and known defects first])] in ORDER."""
    groups = {}
    for t in tests:
        groups.setdefault(use_case(t.markers), []).append(t)
    return [(g, sorted(groups[g], key=lambda t: VERDICT_ORDER.get(t.verdict, 5)))
            for g in ORDER if g in groups]
