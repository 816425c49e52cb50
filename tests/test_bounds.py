"""Bounds from the configuration (laghil.bounds) and the profile's allowances."""

import pytest

from laghil.bounds import detection_bound, gap_bound, rc_gap_bound, reversion_bound
from laghil.cases import BOND_CASES, TEAM_CASES, Case, bond, team
from laghil.profile import Profile, ProfileError, load_profile

# a profile with known allowances: the lookup and the formulas, not the numbers
PROFILE = Profile("t", 1, "test", {}, {
    "switchover_ms": {"default": 30, "team-lacp": 90, "802.3ad.miimon_10": 40},
    "detect_ms": {"default": 25}, "failback_ms": {"default": 200},
    "rc_switchover_ms": {"default": 40}, "stall_ms": {"default": 150}})


def test_an_mii_monitored_bond_is_allowed_its_monitor_downdelay_and_the_platform():
    c = bond("active-backup", miimon=10, primary=0)
    b = gap_bound(c, PROFILE, 1.0)
    assert b.inputs == {"miimon": 10.0, "downdelay": 0.0, "1/R": 1.0,
                        f"switch-over allowance ({PROFILE.label})": 30.0}
    assert b.ms == 41.0
    assert b.describe() == (f"miimon 10 + downdelay 0 + 1/R 1 + switch-over allowance "
                            f"({PROFILE.label}) 30 = 41 ms")
    slow = bond("active-backup", miimon=10, downdelay=200, primary=0)
    assert gap_bound(slow, PROFILE, 1.0).ms == 241.0     # what downdelay allows, if configured


def test_a_10x_slower_failover_fails_where_the_healthy_one_passes():
    """Healthy active-backup miimon 10 in the rack: T_gap median about 11-16 ms;
    with a 200 ms downdelay the case did not configure: about 215 ms."""
    b = gap_bound(bond("active-backup", miimon=10, primary=0), load_profile("default"), 1.0)
    assert 16 < b.ms < 215 / 3


def test_arp_monitor_and_team_link_watchers():
    arp = bond("balance-xor", arp_interval=100, arp_ip_target="@peer")
    assert gap_bound(arp, PROFILE, 1.0).inputs["arp_interval x (arp_missed_max + 1)"] == 300
    t = team("activebackup", link_watch="arp_ping",
             link_watch_opts={"interval": 100, "missed_max": 3})
    assert gap_bound(t, PROFILE, 1.0).inputs["link_watch.interval x (missed_max + 1)"] == 400
    t2 = team("lacp", link_watch_opts={"delay_down": 50, "delay_up": 20})
    assert gap_bound(t2, PROFILE, 1.0).inputs["link_watch.delay_down"] == 50
    assert reversion_bound(t2, PROFILE, 1.0).inputs["link_watch.delay_up"] == 20


def test_detection_reversion_and_rc_bounds():
    c = bond("active-backup", miimon=10, updelay=200, primary=0)
    assert detection_bound(c, PROFILE).formula == \
        f"miimon + downdelay + detection allowance ({PROFILE.label})"
    assert reversion_bound(c, PROFILE, 1.0).inputs["updelay"] == 200
    rc = rc_gap_bound(c, PROFILE, 5.0, 14)
    assert rc.inputs["ACK timeout 4.096 us x 2^14"] == pytest.approx(67.108864)


def test_every_case_has_its_allowances_in_the_shipped_profile():
    shipped = load_profile("default")
    for c in BOND_CASES + TEAM_CASES:
        for kind in ("switchover_ms", "detect_ms", "failback_ms", "rc_switchover_ms", "stall_ms"):
            assert shipped.allowance(kind, c.key) >= 0


def test_allowance_lookup_case_then_mode_then_default_and_unknown_kinds_are_errors():
    assert PROFILE.allowance("switchover_ms", "team-lacp.ethtool") == 90
    assert PROFILE.allowance("switchover_ms", "802.3ad.miimon_100") == 30    # default
    shipped = load_profile("default")
    assert "802.3ad.miimon_250" not in shipped.allowances["switchover_ms"]
    assert shipped.allowance("switchover_ms", "802.3ad.miimon_250") == \
        shipped.allowances["switchover_ms"]["802.3ad"]          # the mode has a dot in it
    with pytest.raises(ProfileError, match="no allowances.frobnicate_ms"):
        PROFILE.allowance("frobnicate_ms", "balance-rr.miimon_10")
    assert Case("bond", "balance-rr", {"miimon": 10}, "miimon_10").key == "balance-rr.miimon_10"


def test_a_trial_physics_rules_out_is_invalid():
    from types import SimpleNamespace

    from laghil.measure.analysis import Latency
    from laghil.measure.failover import FailoverTrial

    def trial(det=None, gap=20.0, duration=8.5):
        outage = SimpleNamespace(t_gap_max_ms=gap)
        return FailoverTrial("eth1", "h1-h2-a", "virtual_pull", None, 0.0, 0.0, outage, None,
                             detection=det, duration_s=duration)
    assert trial(Latency(7.0, 12.0)).invalid() is None
    assert trial(Latency(-4.8, 12.0)).invalid() is None           # zero within its uncertainty
    assert "below zero" in trial(Latency(-20.0, 12.0)).invalid()
    assert "longer than the 8.5 s trial" in trial(gap=9000.0).invalid()


def test_a_detection_latency_below_zero_within_its_uncertainty_is_reported_as_zero():
    """Issue 14's -4.8 ms: a latency below zero but inside its uncertainty is 0 ms
    as far as the measurement can tell; the figures say so instead of printing
    a latency that cannot be."""
    from laghil.measure.analysis import Latency
    from laghil.measure.figures import detection_values
    vals, below = detection_values([Latency(7.0, 12.0), Latency(-4.8, 12.0), Latency(5.5, 3.0)])
    assert vals == [7.0, 0.0, 5.5] and below == 1
    assert detection_values([Latency(3.0, 1.0)]) == ([3.0], 0)


def test_allowances_through_a_switch_are_looked_up_first():
    shipped = load_profile("default")
    via = Case("team", "lacp", {"link_watch": "ethtool"}, "ethtool", "switch")
    assert via.key == "team-lacp.ethtool@switch"
    assert shipped.allowance("failback_ms", via.key) == 180
    assert shipped.allowance("failback_ms", "team-lacp.ethtool") == \
        shipped.allowances["failback_ms"]["team-lacp.ethtool"] != 180, "back to back: its own"
    # no @switch entry: the path-less key, the mode, the default, in that order
    assert shipped.allowance("switchover_ms", via.key) == shipped.allowance("switchover_ms",
                                                                            "team-lacp.ethtool")
    from laghil.profile import Profile
    bare = Profile("bare", 1, "bare.yaml", {}, {"failback_ms": {"802.3ad": 5}})
    with pytest.raises(ProfileError, match="'team-lacp.ethtool@switch', 'team-lacp@switch', "
                                           "'team-lacp.ethtool', 'team-lacp', 'default'"):
        bare.allowance("failback_ms", via.key)


def test_the_rc_ack_timeout_is_the_profiles_and_a_bad_one_is_refused():
    assert PROFILE.rc_ack_timeout == 14                       # a profile that does not say
    assert load_profile("default").rc_ack_timeout == 16       # the virtual rack's (measured)
    own = Profile("t", 1, "x.yaml", {}, {}, {"rdma": {"ack_timeout": 18}})
    assert own.rc_ack_timeout == 18
    assert rc_gap_bound(bond("802.3ad", miimon=10), PROFILE, 5.0, own.rc_ack_timeout).inputs[
        "ACK timeout 4.096 us x 2^18"] == pytest.approx(1073.741824)
    for bad in (0, 32, "16", True, 15.5):
        with pytest.raises(ProfileError, match=r"t v1 \(x.yaml\): rdma.ack_timeout"):
            _ = Profile("t", 1, "x.yaml", {}, {}, {"rdma": {"ack_timeout": bad}}).rc_ack_timeout


def test_a_nic_drivers_link_down_allowance_is_a_term_only_where_it_is_not_zero():
    shipped = load_profile("default")
    c = bond("802.3ad", miimon=10)
    virtio = gap_bound(c, shipped, 1.0, "virtio_net")
    assert not any(k.startswith("link-down") for k in virtio.inputs)     # default 0: no term
    igb = rc_gap_bound(c, shipped, 5.0, 16, "igb")
    assert igb.inputs[f"link-down allowance of igb ({shipped.label})"] == 650
    assert igb.ms == pytest.approx(rc_gap_bound(c, shipped, 5.0, 16, "virtio_net").ms + 650)
    assert "link-down allowance of igb" in detection_bound(c, shipped, "igb").describe()
    assert gap_bound(c, PROFILE, 1.0, "igb").ms == gap_bound(c, PROFILE, 1.0).ms  # no table


def test_a_negative_control_is_seeded_past_what_the_members_driver_is_allowed():
    """200 ms on the rack's virtio; on igb ports (a twin) 2.5 x the bound with
    igb's 650 ms link-down allowance, so the seeded defect cannot hide in it."""
    from types import SimpleNamespace

    from laghil.cases import Case
    from laghil.profile import load_profile
    from pytest_laghil import keys
    from pytest_laghil.lag_checks import seeded_delay_ms
    case = Case("bond", "active-backup", {"miimon": 10, "primary": 0}, "miimon_10")
    prof = load_profile("default")

    def seed(driver):
        config = SimpleNamespace(stash={keys.INVENTORY: {"srv1": {"ports": {
            "p0": {"driver": driver}, "p1": {"driver": driver}}}}})
        pair = SimpleNamespace(a=SimpleNamespace(node=SimpleNamespace(name="srv1"),
                                                 members=["p0", "p1"]))
        return seeded_delay_ms(case, prof, config, pair)
    assert seed("virtio_net") == 200.0
    igb = seed("igb")
    bound = gap_bound(case, prof, 1.0, "igb").ms
    assert igb >= 2.5 * bound and igb % 50 == 0 and igb > 1000, (igb, bound)


def test_a_member_admin_down_bounds_a_switch_over_by_when_it_returned():
    """The link_down pull holds RTNL through the NIC's stop: a team on the
    twin's igb switched 20 ms after the carrier in 3 of 5 repetitions and only
    once the admin-down returned (400-880 ms) in the others. The bound is the
    later of the configuration's and that instant + 1/R + the switch-over
    allowance; without an admin-down (None, 0) nothing changes."""
    from laghil.bounds import ADMIN_DOWN, loss_bound
    t = team("activebackup")
    base = gap_bound(t, PROFILE, 2.0)
    for none in (None, 0):
        assert gap_bound(t, PROFILE, 2.0, admin_down_ms=none) == base
    ab = bond("active-backup", miimon=10, primary=0)                 # 10 + 2 + 30
    assert gap_bound(ab, PROFILE, 2.0, admin_down_ms=5.0) == gap_bound(ab, PROFILE, 2.0)
    held = gap_bound(t, PROFILE, 2.0, "igb", admin_down_ms=812.0)
    assert held.inputs == {ADMIN_DOWN: 812.0, "1/R": 2.0,
                           f"switch-over allowance ({PROFILE.label})": 30.0}
    assert held.ms == 844.0
    # the shipped profile: igb's link-down allowance is replaced, not added to
    shipped = load_profile("default")
    plain = gap_bound(t, shipped, 2.0, "igb")
    assert gap_bound(t, shipped, 2.0, "igb", admin_down_ms=plain.ms - 100) == plain
    later = gap_bound(t, shipped, 2.0, "igb", admin_down_ms=900.0)
    assert not any(k.startswith("link-down") for k in later.inputs) and later.ms > 900
    # T_loss keeps the fail-back's terms, RDMA its ACK timeout, detection its allowance
    slow_up = bond("active-backup", miimon=10, updelay=50, primary=0)
    loss = loss_bound(slow_up, PROFILE, 1.0, admin_down_ms=600.0)
    assert loss.inputs["updelay"] == 50 and loss.inputs[ADMIN_DOWN] == 600
    assert loss.ms == 600 + 10 + 50 + 1 + 30 + 200
    rc = rc_gap_bound(slow_up, PROFILE, 5.0, 14, admin_down_ms=600.0)
    assert rc.inputs["ACK timeout 4.096 us x 2^14"] == pytest.approx(67.108864)
    assert rc.ms == pytest.approx(600 + 5 + 67.108864 + 40)
    det = detection_bound(slow_up, PROFILE, admin_down_ms=600.0)
    assert det.formula == f"{ADMIN_DOWN} + detection allowance ({PROFILE.label})"
