"""Fixtures shared by the suites: ready-made bonds over the lab's cables."""

import pytest

from fixtures.plugin import lacks
from laghil.drivers.bond import Bond


@pytest.fixture
def b2b_bond(request, lab, node, defer):
    """``b2b_bond(mode, **options)``: bond0 on two hosts over the cables joining them
    back to back, addressed 192.168.201.1/24 and .2/24. Returns (bond_a, bond_b,
    cables). Undone after the test (members restored exactly)."""
    def make(mode, a=None, b=None, **options):
        hosts = list(lab.hosts)
        a, b = a or hosts[0], b or hosts[1]
        cables = lab.cables_between(a, b)
        if len(cables) < 2:
            lacks(request, "back-to-back pair", lab,
                  f"{a} and {b} share {len(cables)} cable(s), need 2")
        ends = {a: [], b: []}
        for c in cables:
            for ref in (c.a, c.b):
                ends[ref.node].append(ref.port)
        bonds = []
        for i, h in enumerate((a, b)):
            bond = Bond(node(h), "bond0", mode, ends[h], **options)
            bond.create(defer, address=f"192.168.201.{i + 1}/24")
            bonds.append(bond)
        return bonds[0], bonds[1], cables
    return make
