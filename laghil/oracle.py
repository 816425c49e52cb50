"""What each bond mode / team runner must do with a set of flows (the oracle the
distribution and failover suites judge against).

``expected_tx_share(...)`` gives, per member of the SENDING side, the share of
the probe's packets that member must transmit: a fraction of all packets sent
(1.0 on every member for broadcast, which duplicates). ``survivors(...)`` gives
the flows that must not lose a packet when one member fails: those the oracle
places on the other members, in modes that place flows by a hash.
"""

from .lag_hash import POLICIES, predict

# modes (bond) and runners (team) by how they place a flow
ROUND_ROBIN = {"balance-rr", "roundrobin"}
ONE_ACTIVE = {"active-backup", "activebackup"}
DUPLICATE = {"broadcast"}
HASHED = {"balance-xor", "802.3ad", "loadbalance", "lacp"}
PER_DESTINATION = {"balance-tlb", "balance-alb"}     # with tlb_dynamic_lb=1
RANDOM = {"random"}


class NoOracle(ValueError):
    pass


def placement(mode, options):
    """'round_robin' | 'one_active' | 'duplicate' | 'hash' | 'per_destination' | 'random'."""
    if mode in ROUND_ROBIN:
        return "round_robin"
    if mode in ONE_ACTIVE:
        return "one_active"
    if mode in DUPLICATE:
        return "duplicate"
    if mode in HASHED:
        return "hash"
    if mode in PER_DESTINATION:
        return "hash" if str(options.get("tlb_dynamic_lb", "1")) == "0" else "per_destination"
    if mode in RANDOM:
        return "random"
    raise NoOracle(f"no oracle for mode/runner {mode!r}")


def expected_tx_share(mode, options, members, flows, packet, active=None, hash_policy=None):
    """{member: expected share of the sent packets} or None where the mode only
    fixes that ONE member carries everything (per-destination balancing: which one
    depends on the load the driver saw). ``flows`` [(sport, dport)], ``packet``
    the src/dst MAC and IP (see :func:`laghil.lag_hash.predict`), ``active`` the
    active member (active-backup), ``hash_policy`` the bond's xmit_hash_policy."""
    how = placement(mode, options)
    n = len(members)
    if how in ("round_robin", "random"):
        return {m: 1.0 / n for m in members}
    if how == "duplicate":
        return {m: 1.0 for m in members}
    if how == "one_active":
        if active not in members:
            raise NoOracle(f"active member {active!r} is not one of {members}")
        return {m: 1.0 if m == active else 0.0 for m in members}
    if how == "hash":
        if hash_policy not in POLICIES:
            raise NoOracle(f"no hash oracle for policy {hash_policy!r}")
        placed = predict(hash_policy, members, flows, **packet)
        return {m: len(placed[m]) / len(flows) for m in members}
    return None


def survivors(mode, options, members, failed, flows, packet, hash_policy=None, active=None):
    """Flow indexes that must lose nothing when member ``failed`` goes down, or
    None when the mode gives no such promise (round-robin spreads every flow over
    every member; active-backup moves all of them; in tlb/alb the loss of the
    ACTIVE member moves the bond's MAC onto a survivor, which disturbs its flows
    too: a promise only when ``active`` is known and is not ``failed``)."""
    how = placement(mode, options)
    if mode in PER_DESTINATION and (active is None or failed == active):
        return None
    if how == "duplicate":
        return list(range(len(flows)))
    if how == "hash" and hash_policy in POLICIES:
        placed = predict(hash_policy, members, flows, **packet)
        return sorted(i for m, idx in placed.items() if m != failed for i in idx)
    return None
