"""How a run's tests are grouped for the people who read it: by use case (from
the test's markers) and by mode or runner (from its parameters), failures and
known defects first. Shared by report.html and the allure labels."""

import re

# The use cases, one row each, the one source of their markers (the plugin
# registers them from here) and titles: marker, title in the reports, the
# marker's help, rank (a test with several is the most specific one's, the
# lowest rank: a RoCE LAG test is also a bonding test). In the order a reader
# meets them: the LAG itself, then the use cases built on it.
USE_CASES = (
    ("bonding", "bonding", "Linux bonding tests", 6),
    ("team", "team", "teamd tests", 5),
    ("lacp", "LACP", "LACP protocol checks", 4),
    ("roce_lag", "RoCE LAG", "RoCE LAG: one RDMA port over a bond", 0),
    ("switch_lag", "switch LAG", "LAG offloaded to a switch driver", 2),
    ("sriov_lag", "SR-IOV VF LAG", "SR-IOV VF LAG", 1),
    ("ib_bond", "IB device bonding", "IB device bonding", 3),
    ("smoke", "lab health", "quick health check of the lab", 7),
)
ORDER = [title for _, title, _, _ in USE_CASES] + ["other"]
_BY_RANK = sorted(USE_CASES, key=lambda u: u[3])
# verdicts a reader must see first
VERDICT_ORDER = {"failed": 0, "error": 1, "xfailed": 2, "passed": 3, "skipped": 4}


def use_case(markers):
    marks = set(markers or ())
    return next((title for mark, title, _, _ in _BY_RANK if mark in marks), "other")


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
