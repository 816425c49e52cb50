"""LACPDU decoding (scapy) on a capture from the virtual rack (two 802.3ad bonds
back to back, fast rate), and the partner-timeout arithmetic."""

import json
from pathlib import Path

import pytest

from laghil.lacp import Lacpdu, LacpError, capture_lacpdus, parse_lacpdus, parse_watch, periods, state_names

CAP = Path(__file__).parent / "data" / "captures" / "h1-eth1-lacp-fast.pcap"
H1, H2 = "52:54:00:00:01:01", "52:54:00:00:02:01"


def test_lacpdus_decoded_from_a_real_capture():
    pdus = parse_lacpdus(CAP.read_bytes())
    assert [p.actor_system for p in pdus] == [H2, H1, H2, H1, H2, H1]
    assert {(p.actor_state, p.partner_state, p.actor_key, p.actor_port) for p in pdus} == {(63, 63, 15, 1)}
    assert pdus[1].partner_system == H2 and pdus[0].partner_system == H1
    assert pdus[0].t == pytest.approx(1795831331.220426)


def test_periods_per_sender():
    pdus = parse_lacpdus(CAP.read_bytes())
    assert periods(pdus, H1) == pytest.approx([0.935400, 0.936078], abs=1e-5)
    assert periods(pdus, H2) == pytest.approx([0.934501, 0.935949], abs=1e-5)
    assert periods(pdus, "00:00:00:00:00:00") == []


def test_state_bits_named():
    assert state_names(63) == ["activity", "timeout", "aggregation", "synchronization",
                               "collecting", "distributing"]
    assert state_names(61) == ["activity", "aggregation", "synchronization", "collecting",
                               "distributing"]
    assert state_names(0x87) == ["activity", "timeout", "aggregation", "expired"]
    assert state_names(0x47)[-1] == "defaulted"


def pdu(t, actor):
    return Lacpdu(t, actor, actor, 15, 1, 63, H1, 15, 1, 63)


def test_partner_timeout_is_from_the_last_accepted_pdu():
    pdus = [pdu(100.0, H2), pdu(100.9, H1), pdu(101.0, H2), pdu(102.0, H2)]   # 102.0: dropped
    line = json.dumps({"t_drop_before": 101.50, "t_drop_after": 101.52, "t_change": 104.05,
                       "state_before": 63, "state_after": 7})
    res = parse_watch("noise\n" + line, pdus, H2)
    assert res.t_last_pdu == 101.0 and res.timeout_s == pytest.approx(3.05)
    assert res.t_drop == pytest.approx(101.51) and res.drop_uncertainty_s == pytest.approx(0.01)


def test_pdu_during_the_rule_install_makes_the_trial_ambiguous():
    # CI, fresh guest: the filter add took 2 s (module load); the partner PDU at
    # 776.58 arrived inside it, was accepted, and sync was lost 3.02 s after it,
    # 4.02 s after the last PDU before the window
    pdus = [pdu(775.5855, H2), pdu(776.58, H2), pdu(777.58, H2)]
    line = json.dumps({"t_drop_before": 775.607, "t_drop_after": 777.607, "t_change": 779.6065,
                       "state_before": 63, "state_after": 55})
    res = parse_watch(line, pdus, H2)
    assert res.ambiguous and res.in_drop_window == 2 and res.timeout_s is None
    assert not parse_watch(line.replace("777.607", "775.609"), pdus, H2).ambiguous


def test_no_change_means_no_figure():
    line = json.dumps({"t_drop_before": 1.0, "t_drop_after": 1.1, "t_change": None,
                       "state_before": 63, "state_after": None})
    assert parse_watch(line, [pdu(0.5, H2)], H2).timeout_s is None


def test_capture_is_bounded():
    with pytest.raises(LacpError, match="0-120 s"):
        capture_lacpdus(object(), "eth1", 500)
