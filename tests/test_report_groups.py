"""report.html's grouping: by use case from the markers, by mode from the test's
parameters, failures and known defects first."""

from types import SimpleNamespace

from laghil.report.groups import grouped, mode_of, use_case


def test_use_case_from_markers_the_more_specific_first():
    assert use_case(["roce_lag", "bonding", "ci"]) == "RoCE LAG"
    assert use_case(["bonding", "lacp"]) == "LACP"
    assert use_case(["team"]) == "team" and use_case([]) == "other"


def test_mode_from_the_parameter_id():
    assert mode_of("test_x[802.3ad-via-switch[miimon=10,lacp_rate=fast]]") == "802.3ad-via-switch"
    assert mode_of("test_y[bond-active-backup]") == "bond-active-backup"
    assert mode_of("test_z") == ""


def test_groups_in_reading_order_failures_first():
    t = [SimpleNamespace(name=n, markers=m, verdict=v) for n, m, v in (
        ("a", ["roce_lag", "bonding"], "passed"), ("b", ["bonding"], "passed"),
        ("c", ["bonding"], "failed"), ("d", ["bonding"], "xfailed"), ("e", ["smoke"], "skipped"))]
    g = grouped(t)
    assert [name for name, _ in g] == ["bonding", "RoCE LAG", "lab health"]
    assert [x.name for x in g[0][1]] == ["c", "d", "b"]
