"""What the configuration allows: the bound of a failover figure as a formula of
the LAG's configuration plus the platform's allowance, never a flat number.

    b = gap_bound(case, profile, resolution_ms=1.0)
    b.ms            # 56.0
    b.describe()    # "miimon 10 + downdelay 0 + 1/R 1 + switch-over allowance 45 = 56 ms"

The configuration part is what the protocol needs to see a failure and act
(docs/measurement.md, "Bounds"):

* bond, MII monitor: a carrier drop is seen at the next poll (<= ``miimon``),
  then ``downdelay``;
* bond, ARP monitor: ``arp_interval`` x (``arp_missed_max`` + 1);
* team, ethtool link watch: ``delay_down``; arp_ping: ``interval`` x
  (``missed_max`` + 1);
* fail-back: the same with ``updelay`` / ``delay_up``;
* RoCE over the LAG: the LAG's bound plus one RC local ACK timeout
  (4.096 us x 2^timeout), after which the requester resends;
* a member pulled by its own admin-down (``ip link set down``, the
  ``link_down`` method): the kernel holds RTNL through the NIC driver's stop,
  and neither a bond's monitor (its commit takes RTNL) nor teamd (its
  netlink requests wait for it) can finish a switch-over the stop has begun
  before the command returns. The bound is then the later of the
  configuration's and "the admin-down returned" + 1/R + the switch-over
  allowance (:func:`later_of_admin_down`), with the measured return instant.

The allowance is the platform's: how long the rest takes on healthy hardware
(scheduling, the driver's switch-over, the probe's own jitter). A profile sets
it per mode or runner (``allowances`` in profiles/*.yaml, measured on the
healthy platform); the formula stays the same, so a slower failover than the
configuration and the platform explain fails, whatever its cause.
"""

from dataclasses import dataclass

ARP_MISSED_MAX = 2          # bonding's default arp_missed_max
TEAM_MISSED_MAX = 3         # teamd's arp_ping default missed_max


@dataclass(frozen=True)
class Bound:
    figure: str
    terms: tuple            # ((label, ms), ...): the formula's inputs, in order

    @property
    def ms(self):
        return float(sum(v for _, v in self.terms))

    @property
    def formula(self):
        return " + ".join(label for label, _ in self.terms)

    @property
    def inputs(self):
        return {label: v for label, v in self.terms}

    def describe(self):
        parts = " + ".join(f"{label} {v:g}" for label, v in self.terms)
        return f"{parts} = {self.ms:g} ms"


def _num(options, key, default=0):
    v = options.get(key, default)
    return float(v) if v not in (None, "") else float(default)


def detect_terms(kind, options):
    """The configuration's part of detecting a member failure, as (label, ms) terms."""
    if kind == "bond":
        if _num(options, "arp_interval"):
            ai, mm = _num(options, "arp_interval"), _num(options, "arp_missed_max", ARP_MISSED_MAX)
            return (("arp_interval x (arp_missed_max + 1)", ai * (mm + 1)),)
        return (("miimon", _num(options, "miimon")), ("downdelay", _num(options, "downdelay")))
    lw = options.get("link_watch", "ethtool")
    lwo = options.get("link_watch_opts") or {}
    if lw == "arp_ping":
        iv, mm = _num(lwo, "interval"), _num(lwo, "missed_max", TEAM_MISSED_MAX)
        return (("link_watch.interval x (missed_max + 1)", iv * (mm + 1)),)
    return (("link_watch.delay_down", _num(lwo, "delay_down")),)


def up_terms(kind, options):
    """The configuration's part of taking a member back (fail-back)."""
    if kind == "bond":
        if _num(options, "arp_interval"):
            return (("arp_interval", _num(options, "arp_interval")),)
        return (("miimon", _num(options, "miimon")), ("updelay", _num(options, "updelay")))
    lwo = options.get("link_watch_opts") or {}
    if options.get("link_watch", "ethtool") == "arp_ping":
        return (("link_watch.interval", _num(lwo, "interval")),)
    return (("link_watch.delay_up", _num(lwo, "delay_up")),)


def _allowance(profile, kind, case_key, what):
    return (f"{what} allowance ({profile.label})", profile.allowance(kind, case_key))


def linkdown_terms(profile, driver=""):
    """The platform's link-down allowance of the pulled member's NIC driver
    (``allowances.linkdown_ms``, by driver, else its ``default``): how late the
    driver may report a lost carrier, before any monitor can see it (QEMU's igb:
    its watchdog, bimodal 7-17 or 590-624 ms). No term where it is 0 or the
    profile has no such table (virtio reports at once)."""
    table = profile.allowances.get("linkdown_ms")
    if not isinstance(table, dict):
        return ()
    ms = profile.allowance("linkdown_ms", driver or "default")
    return ((f"link-down allowance of {driver or 'the NIC'} ({profile.label})", ms),) if ms else ()


ADMIN_DOWN = "member admin-down returned (RTNL held through the NIC's stop)"


def later_of_admin_down(bound, admin_down_ms):
    """``bound``, or where the member was pulled by its own admin-down that
    returned ``admin_down_ms`` after the fault instant (None: another method),
    the same bound with the detection part (configuration, link-down allowance)
    replaced by that instant, whichever is later: a switch-over not finished
    before the command took RTNL waits for it (physical racks: the carrier
    only drops inside the driver's stop, so every switch-over waits)."""
    if not admin_down_ms:
        return bound
    rest = tuple((k, v) for k, v in bound.terms
                 if k == "1/R" or "allowance (" in k and not k.startswith("link-down"))
    alt = Bound(bound.figure, ((ADMIN_DOWN, float(admin_down_ms)),) + rest)
    return alt if alt.ms > bound.ms else bound


def gap_bound(case, profile, resolution_ms, driver="", admin_down_ms=None):
    """T_gap of a member pull under a probe of ``resolution_ms`` (1/R);
    ``driver``: the pulled member's NIC driver (its link-down allowance);
    ``admin_down_ms``: see :func:`later_of_admin_down`."""
    return later_of_admin_down(Bound(
        "T_gap", detect_terms(case.kind, case.options) + linkdown_terms(profile, driver)
        + (("1/R", resolution_ms), _allowance(profile, "switchover_ms", case.key,
                                              "switch-over"))), admin_down_ms)


def loss_bound(case, profile, resolution_ms, driver="", admin_down_ms=None):
    """T_loss over the whole trial: what the failover and the fail-back may each lose."""
    up = up_terms(case.kind, case.options)
    b = Bound("T_loss", detect_terms(case.kind, case.options) + linkdown_terms(profile, driver)
              + up + (("1/R", resolution_ms),
                      _allowance(profile, "switchover_ms", case.key, "switch-over"),
                      _allowance(profile, "failback_ms", case.key, "fail-back")))
    if not admin_down_ms:
        return b
    alt = later_of_admin_down(b, admin_down_ms)
    return Bound(alt.figure, alt.terms[:1] + up + alt.terms[1:]) if alt is not b else b


def detection_bound(case, profile, driver="", admin_down_ms=None):
    """The kernel's 'link status definitely down' after the fault instant."""
    return later_of_admin_down(Bound(
        "detection latency", detect_terms(case.kind, case.options)
        + linkdown_terms(profile, driver)
        + (_allowance(profile, "detect_ms", case.key, "detection"),)), admin_down_ms)


def failback_delay_bound(case, profile, driver=""):
    """The restored member back in use after the cable returns (the kernel's
    'link status definitely up', or 'new active' where a primary takes it back):
    the configuration's take-back (miimon + updelay) and the platform's link-up
    allowance of the member's NIC driver (``allowances.linkup_ms``, by driver:
    a PHY that autonegotiates takes its time, e.g. QEMU's igb 500 ms), else its
    ``default``."""
    return Bound("fail-back delay", up_terms(case.kind, case.options)
                 + ((f"link-up allowance of {driver or 'the NIC'} ({profile.label})",
                     profile.allowance("linkup_ms", driver or "default")),))


def reversion_bound(case, profile, resolution_ms):
    """The fail-back disruption after the cable returns."""
    return Bound("reversion", up_terms(case.kind, case.options)
                 + (("1/R", resolution_ms), _allowance(profile, "failback_ms", case.key,
                                                          "fail-back")))


def rc_gap_bound(case, profile, resolution_ms, timeout, driver="", admin_down_ms=None):
    """RDMA T_gap of RC QPs over the LAG: the LAG's bound plus one local ACK timeout."""
    ack = (f"ACK timeout 4.096 us x 2^{timeout}", 4.096e-3 * 2 ** timeout)
    b = Bound("RDMA T_gap", detect_terms(case.kind, case.options)
              + linkdown_terms(profile, driver)
              + (("1/R", resolution_ms), ack,
                 _allowance(profile, "rc_switchover_ms", case.key, "RC switch-over")))
    alt = later_of_admin_down(b, admin_down_ms)
    return Bound(alt.figure, alt.terms[:2] + (ack,) + alt.terms[2:]) if alt is not b else b
