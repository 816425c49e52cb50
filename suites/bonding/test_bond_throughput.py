"""Aggregate throughput of the LAG modes: members shaped with tbf to a known
rate, TCP flows chosen (for hash modes, by the kernel's hash) so that every
member is loaded; the aggregate from the members' counters against the sum of
member rates is the efficiency, judged against the profile."""

import pytest

from laghil.drivers.shaping import shape
from laghil.lag_hash import POLICIES, spread_client_ports
from laghil.cases import L34, bond
from laghil.measure.throughput import run_iperf3
from pytest_laghil import params

pytestmark = [pytest.mark.throughput, pytest.mark.bonding, pytest.mark.ci,
              pytest.mark.requires("bonding", count=2)]

SHAPED_MBIT = 10.0
FLOWS = 4
BASE_PORT = 5301

LAG_CASES = [
    bond("balance-rr", miimon=10),
    bond("balance-xor", miimon=10, **L34),
    bond("802.3ad", miimon=10, lacp_rate="fast", **L34),
    bond("balance-tlb", miimon=10, tlb_dynamic_lb=0, **L34),
    bond("balance-alb", miimon=10, tlb_dynamic_lb=0, **L34),
    bond("802.3ad", True, via="switch", miimon=10, lacp_rate="fast", **L34),
]


@pytest.mark.parametrize("case", params(LAG_CASES, needs=("bonding",)))
def test_lag_aggregate_throughput_efficiency(lag_pair, case, defer, measure, profile):
    pair = lag_pair("bond", case.mode, via=case.via, **case.options)
    a = pair.a
    for m in a.members:
        shape(a.node, m, SHAPED_MBIT, defer=defer)
    cports = None
    if case.hash_policy in POLICIES:
        dports = [BASE_PORT + i for i in range(FLOWS)]
        cports = spread_client_ports(case.hash_policy, a.members, dports, pair.packet())
    speeds = {m: SHAPED_MBIT * 1e6 for m in a.members}
    res = run_iperf3(a.node, pair.b.node, pair.ip_b, a.members, speeds, flows=FLOWS, streams=1,
                     duration_s=10, omit_s=3, base_port=BASE_PORT, client_ports=cports)
    floor = profile.threshold("throughput/lag.min_efficiency")
    for m in res.measurements(threshold_efficiency=floor, profile=profile.label):
        measure.record(m)
    per = {p: round(r["tx_bps"] / 1e6, 2) for p, r in res.members.items()}
    print(f"{case.id()}: aggregate {res.counters_bps / 1e6:.2f} Mbit/s of {res.capacity_bps / 1e6:.0f}"
          f" (efficiency {res.efficiency:.3f}), iperf3 {res.tool_bps / 1e6:.2f} Mbit/s, members "
          f"{per}, Jain {res.jain:.3f}, client ports {cports}")
    assert res.efficiency >= floor, (
        f"{case.id()}: aggregate {res.counters_bps / 1e6:.2f} Mbit/s over {len(a.members)} "
        f"members shaped to {SHAPED_MBIT:g} Mbit/s: efficiency {res.efficiency:.3f} < {floor:g} "
        f"({profile.label}); members {per} Mbit/s")
    assert res.tool_bps >= 0.5 * res.capacity_bps, (
        f"iperf3 goodput {res.tool_bps / 1e6:.2f} Mbit/s under half the {res.capacity_bps / 1e6:.0f}"
        " Mbit/s capacity: the traffic tool did not load the LAG")
