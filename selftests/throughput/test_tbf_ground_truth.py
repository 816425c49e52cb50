"""Ground truth for the throughput method: members shaped with tbf to a known
rate; the measured aggregate of a LAG with enough flows must match the shaped sum
(profile: throughput/tbf.max_relative_error)."""

import pytest

from laghil.drivers.shaping import shape
from laghil.measure.model import Measurement
from laghil.measure.throughput import run_iperf3

pytestmark = [pytest.mark.throughput, pytest.mark.bonding, pytest.mark.ci,
              pytest.mark.requires("bonding", count=2)]

SHAPED_MBIT = 10.0


def test_lag_aggregate_matches_tbf_shaped_sum(lag_pair, defer, measure, profile):
    pair = lag_pair("bond", "balance-rr", miimon=100)
    bond_a, bond_b = pair.a, pair.b
    client, server = bond_a.node, bond_b.node
    for m in bond_a.members:
        shape(client, m, SHAPED_MBIT, defer=defer)
    speeds = {m: SHAPED_MBIT * 1e6 for m in bond_a.members}
    res = run_iperf3(client, server, "192.168.201.2", bond_a.members, speeds,
                     flows=4, streams=1, duration_s=10, omit_s=3)
    max_err = profile.threshold("throughput/tbf.max_relative_error")
    for m in res.measurements():
        m.profile = profile.label
        measure.record(m)
    shaped = res.capacity_bps
    err = abs(res.counters_bps - shaped) / shaped
    measure.record(Measurement("counter aggregate vs tbf sum", err, "",
                               "|aggregate - shaped sum| / shaped sum", resolution=None,
                               threshold=max_err, comparison="<=", profile=profile.label))
    per = {p: round(r["tx_bps"] / 1e6, 2) for p, r in res.members.items()}
    assert err <= max_err, (
        f"aggregate {res.counters_bps / 1e6:.2f} Mbit/s from counters vs shaped sum "
        f"{shaped / 1e6:.1f} Mbit/s: error {err:.1%} > {max_err:.0%} (members {per})")
    assert res.tool_bps <= shaped * (1 + max_err), (
        f"iperf3 goodput {res.tool_bps / 1e6:.2f} Mbit/s exceeds the shaped sum "
        f"{shaped / 1e6:.1f} Mbit/s by more than {max_err:.0%}: the shaping did not hold")
    # TCP goodput over round-robin members is below the wire rate (reordering,
    # tbf drops): a sanity floor that catches a broken run reported as a number.
    assert res.tool_bps >= 0.5 * shaped, (
        f"iperf3 goodput {res.tool_bps / 1e6:.2f} Mbit/s under half the shaped sum "
        f"{shaped / 1e6:.1f} Mbit/s: the traffic tool did not load the LAG")
    print(f"tbf {SHAPED_MBIT} Mbit/s x {len(bond_a.members)}: counters {res.counters_bps / 1e6:.2f} "
          f"Mbit/s, iperf3 {res.tool_bps / 1e6:.2f} Mbit/s, members {per}, Jain {res.jain:.3f}")
