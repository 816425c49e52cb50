"""One failover trial: a member's cable broken under probe traffic and restored.

    trial = run_failover(rt, lag, receiver_node, "192.168.201.2", member="eth1",
                         defer=defer, flows=4, rate_pps=1000)
    trial.outage.t_gap_max_ms, trial.reversion.reversion_max_ms

The probe starts, traffic runs ``hold_s`` before the fault, the fault is held
``down_s``, restored, and traffic runs ``after_s`` more (fail-back is measured in
that tail). The fault and restore instants are taken on the controller's clock
and moved onto the receiver's clock with an offset estimated from SSH round
trips; kernel bond events of the sender (bonds only) give the detection latency
(docs/measurement.md items 1-5). The cable is pulled the lab's one way
(:func:`laghil.faults.pull_method`, or ``method``); the fault's revert is
registered on ``defer`` before it is injected.
"""

import time
from dataclasses import dataclass, field

from ..errors import LaghilError
from ..faults import injector_for, pull_method
from ..kevents import DOWN, NEW_ACTIVE, UP, bond_events
from .analysis import LagOutage, Reversion, detection_latency
from .model import Event
from .distribution import SRC_OFFSET
from .probe import Probe, sample_clock
from .throughput import read_counters

BASE_PORT = 47000
SENDER_CATCHUP_MS = 5.0     # the probe agent's CATCHUP_S: a later sender slips its schedule


class FailoverError(LaghilError):
    pass


class TrialInvalid(FailoverError):
    """A trial that could not be run as planned (the fault could not land when
    planned under the traffic): nothing was pulled, its probe was stopped; the
    caller discards it and may run another."""


@dataclass
class FailoverTrial:
    member: str
    cable: str
    method: str
    res: object                     # ProbeResult
    fault_t: float                  # receiver clock, epoch s
    restore_t: float                # receiver clock, epoch s
    outage: LagOutage               # around the fault
    reversion: Reversion            # at the restore
    events: list = field(default_factory=list)      # on the receiver clock, for the timeline
    detection: object = None        # analysis.Latency of "link status definitely down"
    up_latency: object = None       # analysis.Latency of "link status definitely up" after restore
    # the restored member back in use, by the kernel (bonds): "making interface the new
    # active one" where the bond has a primary (active-backup takes it back), else its
    # "link status definitely up"; None where no such event was seen (teams: none)
    back_latency: object = None
    back_event: str = ""
    member_driver: str = ""         # the pulled member's kernel driver (its PHY's link-up time)
    admin_down_ms: float = None     # link_down: the admin-down returned this long after the fault
    active_before: str = None
    active_during: str = None
    active_after: str = None
    carried: dict = field(default_factory=dict)     # member -> tx packets over the trial
    to_sender_s: float = 0.0        # add to a receiver-clock instant for the sender's clock

    duration_s: float = 0.0         # the probe's run, from the first packet
    observed: object = None         # what run_failover's ``observe`` saw during the fault
    load: object = None             # the background load during the trial (run_trials --load)

    def lost(self, flow):
        return self.res.flows[flow]["lost"]

    def invalid(self):
        """Why this trial's figures cannot be (physics), or None: a detection
        latency below zero by more than its uncertainty, an outage longer than
        the trial itself. An invalid trial is retried, never counted."""
        for what, lat in (("detection latency", self.detection), ("link-up latency",
                                                                    self.up_latency)):
            if lat is not None and lat.latency_ms + lat.uncertainty_ms < 0:
                return (f"{what} {lat.latency_ms:.1f} +- {lat.uncertainty_ms:.1f} ms is below "
                        "zero: the fault and the kernel event are not on one time line")
        gap = self.outage.t_gap_max_ms
        if self.duration_s and gap is not None and gap > self.duration_s * 1e3:
            return (f"T_gap {gap:.0f} ms is longer than the {self.duration_s:g} s trial: the "
                    "probe did not run across the fault")
        return None

    def sender_slip_ms(self, t, span_ms, margin_s=0.05):
        """How long the probe's sender slipped its schedule (late by more than
        it may catch up: packets due then were sent that much later, not lost)
        inside an outage that began at ``t`` (receiver clock) and lost
        ``span_ms`` worth of packets: T_gap counts the packets that went missing,
        so a slip inside the outage shortens it by the slip; the path's state
        during the slip is unknown, so the figure takes the longer (the slip
        added). Under emulation the guest's own work at a link change stalls
        the sender by 8-26 ms at most faults and restores."""
        if self.res is None or not span_ms or not isinstance(getattr(self.res, "sender", None),
                                                              dict):
            return 0.0
        lo = t + self.to_sender_s - margin_s
        total, hi = 0.0, t + self.to_sender_s + span_ms / 1e3 + margin_s
        for e in sorted(self.res.sender.get("late_events", []), key=lambda e: e["t"]):
            slipped = e["late_ms"] - SENDER_CATCHUP_MS
            if slipped > 0 and lo <= e["t"] + e["late_ms"] / 1e3 and e["t"] <= hi:
                total += slipped
                hi += slipped / 1e3
        return total

    @property
    def gap_ms(self):
        """T_gap of the trial (max over flows) with the sender's slip inside the
        outage added (:meth:`sender_slip_ms`); None when undefined."""
        g = self.outage.t_gap_max_ms
        return None if g is None else g + self.sender_slip_ms(self.fault_t, g)

    @property
    def reversion_ms(self):
        """The fail-back figure (max over flows) with the sender's slip inside it added."""
        r = self.reversion.reversion_max_ms if self.reversion else None
        return None if r is None else r + self.sender_slip_ms(self.restore_t, r)


def member_drivers(node, members):
    """{member: its kernel driver (igb, virtio_net, mlx5_core...)} from sysfs, "" where
    it has none (a veth, a bond); one round trip."""
    from ..names import qif
    cmd = "; ".join(f"echo {qif(m)} $(basename \"$(readlink /sys/class/net/{qif(m)}/device/driver "
                    f"2>/dev/null)\" 2>/dev/null)" for m in members)
    out = {}
    for line in node.run(cmd, check=False).stdout.splitlines():
        name, _, drv = line.strip().partition(" ")
        if name in members:
            out[name] = drv.strip() if drv.strip() not in (".", "") else ""
    return out


def run_failover(rt, lag, receiver, dst_ip, *, defer, method=None, member=None, flows=4,
                 rate_pps=1000, hold_s=2.0, down_s=2.0, after_s=3.0, active=None,
                 slack_s=1.5, make_probe=None, pull_loaded=False, observe=None,
                 make_fault=None):
    """Break a member's cable (of ``lag`` on its node) under probe traffic to
    ``dst_ip`` on ``receiver``, restore it; return a :class:`FailoverTrial`.

    ``member`` None: the active member when ``active`` (a callable giving it) is
    given and ``pull_loaded`` is false, else the LOADED member, the one that transmitted the most probe
    packets during the hold (counters read under load: the probe runs ``slack_s``
    longer so that a slow read cannot push the fault past the traffic).
    ``trial.carried`` is what each member transmitted over the trial.
    ``make_probe(duration_s)`` builds another probe than the UDP one (an
    :class:`~laghil.measure.rdma_probe.RdmaProbe`) that runs that long.
    ``observe(member)``, if given, is called once while the fault is in place
    (after it is visible); what it returns is ``trial.observed``.
    ``make_fault(rt, cable, at)``, if given, builds the injector instead of the
    lab's pull (a seeded defect of a negative control)."""
    sender = lag.node
    members = list(lag.members)
    # a member that is not a lab port (a VF) names the port whose cable carries it
    port_of = getattr(lag, "port_of", None) or {}
    cables = {m: rt.lab.cable_of(sender.name, port_of.get(m, m)) for m in members}
    missing = [m for m, c in cables.items() if c is None]
    if missing:
        raise FailoverError(f"{sender.name}: members {missing} have no cable in lab {rt.lab.name!r}")
    rx_clock, tx_clock = sample_clock(receiver), sample_clock(sender)
    before = active() if active else None
    if member is None and before is not None and not pull_loaded:
        member = before
    c0 = read_counters(sender, members)[1]
    drivers = member_drivers(sender, members)

    def injector(m):
        how = method or pull_method(cables[m], rt.rack is not None)
        return (make_fault(rt, cables[m], sender.name) if make_fault is not None
                else injector_for(rt, cables[m].name, how, at=sender.name))
    # every candidate's injector made (and its refusals checked: the management
    # port, a switch port outside the lab file) before the traffic: on a node
    # busy sending, those reads took 0.8-1.5 s and pushed the fault past its
    # instant (the twin's team loadbalance, whose pulled member is chosen by
    # the counters after the hold: every trial invalid)
    if member is not None and member not in cables:
        raise FailoverError(f"{sender.name}: {member!r} is not a member of {lag.name} {members}")
    faults = {m: injector(m) for m in ([member] if member is not None else members)}
    duration_s = hold_s + slack_s + down_s + after_s
    if make_probe is not None:
        probe = make_probe(duration_s)
    else:
        probe = Probe(sender, receiver, dst_ip, flows=flows, rate_pps=rate_pps,
                      duration_s=duration_s, base_port=BASE_PORT,
                      src_base_port=BASE_PORT + SRC_OFFSET)
    defer(probe.stop_undo())
    t_traffic = probe.start()
    time.sleep(max(0.0, t_traffic + hold_s - time.time()))
    if member is None:
        c1 = read_counters(sender, members)[1]
        member = max(members, key=lambda m: c1[m]["tx_packets"] - c0[m]["tx_packets"])
    cable = cables[member]
    fault = faults[member]
    method = getattr(fault, "method", None) or method or pull_method(cable, rt.rack is not None)
    late = time.time() - (t_traffic + hold_s)
    if late > slack_s:
        probe.stop()            # its ports free for the next trial
        raise TrialInvalid(f"{sender.name}: the fault would land {late:.1f} s after its "
                           f"planned instant (node too slow to answer): not a valid trial")
    t_fault = fault.inject(defer=defer)
    fault.verify(timeout=5)
    during = active() if active else None
    observed = observe(member) if observe else None
    time.sleep(max(0.0, t_fault + down_s - time.time()))
    t_restore = fault.revert()
    fault.verify_reverted(timeout=10)
    res = probe.wait()
    c2 = read_counters(sender, members)[1]
    carried = {m: c2[m]["tx_packets"] - c0[m]["tx_packets"] for m in members}
    after = active() if active else None
    to_rx = rx_clock.offset_s
    events = [Event(e.t + to_rx, e.label, e.kind, clock=receiver.name) for e in fault.events()]
    detection = up_latency = back_latency = None
    back_event = ""
    if lag.kind == "bond":
        kev = bond_events(sender, lag.name, since=t_fault + tx_clock.offset_s - 1.0)
        down = next((e for e in kev if DOWN in e.message and f"(slave {member})" in e.message), None)
        up = next((e for e in kev if UP in e.message and f"(slave {member})" in e.message
                   and e.t >= t_restore + tx_clock.offset_s - tx_clock.uncertainty_s), None)
        if down is not None:
            detection = detection_latency(down.t, t_fault, tx_clock.offset_s,
                                          tx_clock.uncertainty_s, down.uncertainty_s)
        if up is not None:
            up_latency = detection_latency(up.t, t_restore, tx_clock.offset_s,
                                           tx_clock.uncertainty_s, up.uncertainty_s)
        primary = (getattr(lag, "options", None) or {}).get("primary")
        if primary == member:
            back_event = f"{NEW_ACTIVE} (slave {member})"
            back = next((e for e in kev if NEW_ACTIVE in e.message
                         and f"(slave {member})" in e.message
                         and e.t >= t_restore + tx_clock.offset_s - tx_clock.uncertainty_s), None)
            if back is not None:
                back_latency = detection_latency(back.t, t_restore, tx_clock.offset_s,
                                                 tx_clock.uncertainty_s, back.uncertainty_s)
        else:
            back_event, back_latency = f"{UP} (slave {member})", up_latency
        events += [Event(e.t - tx_clock.offset_s + to_rx, f"{sender.name} {e.message}", "kernel",
                         clock=receiver.name) for e in kev if e.kind != "other"]
    return FailoverTrial(
        member=member, cable=cable.name, method=method, res=res, carried=carried,
        fault_t=t_fault + to_rx, restore_t=t_restore + to_rx,
        outage=res.outage(fault_t=t_fault + to_rx, window=(0.5, t_restore - t_fault)),
        reversion=res.reversion(t_restore + to_rx, window_s=after_s),
        events=events, detection=detection, up_latency=up_latency,
        back_latency=back_latency, back_event=back_event,
        member_driver=drivers.get(member, ""), admin_down_ms=getattr(fault, "admin_down_ms", None),
        active_before=before, active_during=during, active_after=after,
        to_sender_s=tx_clock.offset_s - to_rx, duration_s=duration_s, observed=observed)
