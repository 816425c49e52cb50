"""LACP on the wire (802.1AX): LACPDUs captured on a member and decoded with
scapy (periodic rate, actor/partner state bits), and the partner timeout
measured when the partner's LACPDUs stop arriving."""

import statistics

import pytest

from pytest_laghil.measure import record_not_counted
from laghil.lacp import (HEALTHY_FAST, HEALTHY_SLOW, capture_lacpdus, parse_lacpdus,
                         partner_timeout, periods, state_names)
from laghil.measure.model import Measurement

pytestmark = [pytest.mark.lacp, pytest.mark.bonding, pytest.mark.ci, pytest.mark.requires("lacp", count=2)]

L34 = {"xmit_hash_policy": "layer3+4", "miimon": 10}


@pytest.mark.parametrize("rate,period_key,timeout_key,state,seconds", [
    ("fast", "fast_period_s", "short_timeout_s", HEALTHY_FAST, 6.5),
    pytest.param("slow", "slow_period_s", "long_timeout_s", HEALTHY_SLOW, 95,
                 marks=pytest.mark.full_matrix),
])
def test_lacpdus_are_periodic_with_healthy_state_bits(lag_pair, measure, profile, rate,
                                                       period_key, timeout_key, state, seconds):
    pair = lag_pair("bond", "802.3ad", lacp_rate=rate, **L34)
    member = pair.members[0]
    pdus = parse_lacpdus(capture_lacpdus(pair.a.node, member, seconds))
    # the partner is the peer host back to back, the switch's LAG through a switch
    partner = pair.partner_macs[pair.a.node.name]
    mine = [p for p in pdus if p.actor_system == pair.mac_a]
    theirs = [p for p in pdus if p.actor_system == partner]
    want = profile.threshold(f"lacp/{period_key}")
    tol = want * profile.threshold("lacp/period_tolerance")
    timeout = profile.threshold(f"lacp/{timeout_key}")
    for who, sent in (("actor", mine), ("partner", theirs)):
        ps = periods(sent, sent[0].actor_system) if sent else []
        assert len(ps) >= 2, (
            f"{pair.a.node.name}:{member}: {len(sent)} {who} LACPDUs in {seconds:g} s at "
            f"{rate} rate ({len(pdus)} in all): want a period of {want:g} s")
        med = statistics.median(ps)
        measure.record(Measurement(
            f"LACPDU period ({who})", med, "s",
            f"median interval between the {who}'s LACPDUs captured on {member} "
            f"(tcpdump, scapy.contrib.lacp), {len(ps)} intervals", resolution=1e-6, repetitions=ps,
            profile=profile.label, note=f"802.1AX {rate} periodic {want:g} s +- {tol:g} s"))
        print(f"{who}: {len(sent)} PDUs, periods {[round(p, 3) for p in ps]}, states "
              f"{sorted({p.actor_state for p in sent})}")
        assert abs(med - want) <= tol, (
            f"{who} LACPDU periods {[round(p, 3) for p in ps]} s on {member}: median "
            f"{med:.3f} s, want {want:g} +- {tol:g} s ({rate} rate)")
        # single intervals jitter (Linux runs the LACP machines on a 100 ms tick);
        # none may come near the partner's timeout, or the link would flap
        assert max(ps) < timeout * 2 / 3, (
            f"{who} LACPDU interval {max(ps):.3f} s on {member}: two missed PDUs and the "
            f"partner times out at {timeout:g} s ({rate} rate); periods {[round(p, 3) for p in ps]}")
        bad = [(round(p.t, 3), p.actor_state, state_names(p.actor_state)) for p in sent
               if p.actor_state != state]
        assert not bad, f"{who} actor state not {state} ({state_names(state)}): {bad}"
        pb = [p.partner_state for p in sent if p.partner_state != state]
        assert not pb, f"{who}'s view of its partner not {state}: {pb}"


def test_silent_partner_is_timed_out_after_the_short_timeout(lag_pair, measure, profile, defer):
    pair = lag_pair("bond", "802.3ad", lacp_rate="fast", **L34)
    member = pair.members[0]
    for attempt in range(1, 4):     # bounded: a partner PDU inside the rule install is ambiguous
        res, pdus = partner_timeout(pair.a.node, member, pair.partner_macs[pair.a.node.name],
                                    defer=defer)
        if not res.ambiguous:
            break
        record_not_counted(measure.item.config, f"partner timeout trial {attempt}",
                           f"{res.in_drop_window} partner PDU(s) arrived while the drop rule was "
                           f"being installed ({2 * res.drop_uncertainty_s:.3f} s): ambiguous",
                           res.timeout_s, "s")
    assert not res.ambiguous, (
        f"3 trials in a row had a partner PDU inside the drop-rule install "
        f"(last took {2 * res.drop_uncertainty_s:.3f} s): tc too slow on {pair.a.node.name}")
    want = profile.threshold("lacp/short_timeout_s")
    tol = profile.threshold("lacp/timeout_tolerance_s")
    print(f"drop at {res.t_drop:.3f}, last partner PDU {res.t_last_pdu}, sync lost "
          f"{res.t_change}, state {res.state_before} -> {res.state_after}, timeout {res.timeout_s}")
    assert res.t_last_pdu is not None, (
        f"no partner LACPDU captured on {member} before the drop ({len(pdus)} PDUs)")
    assert res.t_change is not None, (
        f"{pair.a.node.name}:{member}: partner state stayed in sync ({res.state_before}) "
        "10 s after its LACPDUs were dropped")
    m = measure.record(Measurement(
        "partner timeout", res.timeout_s, "s",
        "loss of the partner's sync bit (sysfs ad_partner_oper_port_state, polled every 5 ms) "
        "minus the last partner LACPDU seen before the drop rule (tcpdump), one node clock",
        resolution=0.005, threshold=want + tol, comparison="<=", profile=profile.label,
        note=f"802.1AX short timeout {want:g} s"))
    assert want - tol <= m.value <= want + tol, (
        f"partner declared out of sync {m.value:.3f} s after its last LACPDU: want "
        f"{want:g} +- {tol:g} s (short timeout, fast rate); state {res.state_before} -> "
        f"{res.state_after} {state_names(res.state_after or 0)}")
