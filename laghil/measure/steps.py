"""One configuration step under probe traffic: how long the traffic through a
LAG stops when a switch member is taken out or put back, a LAG is remastered,
a VLAN is added (the kernel selftests' "traffic after every step", measured).

    s = run_step(sender, receiver, "192.168.210.2", "remove swp1",
                 lambda: driver.lag_member_remove("lglag1", "swp1", defer=defer),
                 defer=defer, hold_s=1.5, after_s=5.0)
    s.outage.t_gap_max_ms, s.lossless

The probe starts, runs ``hold_s``, the step runs (its instant taken on the
controller's clock just before it, moved to the receiver's clock as in
:mod:`.failover`), then ``after_s`` more; the outage is the gaps that overlap
the step's instant (from 0.5 s before it to ``after_s`` after).
"""

import time
from dataclasses import dataclass

from ..errors import LaghilError
from .analysis import LagOutage
from .distribution import SRC_OFFSET
from .probe import Probe, sample_clock

BASE_PORT = 47200


class StepError(LaghilError):
    pass


@dataclass
class StepResult:
    label: str
    step_t: float               # receiver clock, epoch s
    step_s: float               # how long the step's own commands took
    res: object                 # ProbeResult
    outage: LagOutage
    value: object = None        # what the step returned

    @property
    def lossless(self):
        return self.res.lossless


def step_problems(s, bound_ms, keeps_path=True, flowing_before=True):
    """What is wrong with step ``s`` (a :class:`StepResult`) under a bound of
    ``bound_ms`` (pure): per flow, named by its flow id and destination port,
    and the step's label:

    * a flow that received nothing, or nothing before the step (the traffic
      was not flowing when the step was taken: the step proves nothing);
    * a flow that stopped and never came back (its last packets, up to the
      end, never arrived: longer than the bound at the sender's pace);
    * where the step keeps a path (``keeps_path``): its outage (T_gap on the
      send schedule) or its loss (T_loss, every loss of the flow in the step's
      probe) over the bound;
    * a step that restores a path (``flowing_before`` false: nothing could
      arrive before it, so T_loss is not judged): the first arrival later than
      the bound after the step's commands had run (a NOS applies them first),
      and its outages once resumed.

    A flow that never arrives has no gap; loss and arrival are judged here so
    that it cannot pass."""
    out = []
    for f, o in zip(s.res.flows, s.outage.flows):
        name = f"{s.label}: flow {f.get('flow')} (port {f.get('dst_port')})"
        tx, rx = int(f.get("tx_count") or 0), int(f.get("rx_count") or 0)
        if rx == 0:
            out.append(f"{name}: none of its {tx} packets arrived")
            continue
        first = f.get("first")
        late_ms = (first - s.step_t) * 1e3 if first is not None else None
        # a restoring step's traffic can only resume once its commands have run
        resumed_ms = late_ms - s.step_s * 1e3 if late_ms is not None else None
        if flowing_before and late_ms is not None and late_ms > 0:
            out.append(f"{name}: its first packet arrived {late_ms:.0f} ms after the step: no "
                       "traffic before it")
        if not flowing_before and resumed_ms is not None and resumed_ms > bound_ms:
            out.append(f"{name}: traffic resumed {resumed_ms:.0f} ms after the step's commands "
                       f"had run ({s.step_s * 1e3:.0f} ms) > {bound_ms:g} ms")
        last_seq = f.get("last_seq")
        tail = tx - 1 - last_seq if last_seq is not None and tx else 0
        tail_ms = tail * o.resolution_ms
        if tail > 0 and tail_ms > bound_ms:
            out.append(f"{name}: stopped at packet {last_seq} and never came back (the last "
                       f"{tail} of {tx} never arrived: {tail_ms:.0f} ms > {bound_ms:g} ms)")
        if not keeps_path:
            continue
        if o.t_gap_ms is not None and o.t_gap_ms > bound_ms:
            out.append(f"{name}: outage {o.t_gap_ms:.1f} ms > {bound_ms:g} ms")
        if flowing_before and o.t_loss_ms > bound_ms:
            out.append(f"{name}: lost {o.lost} of {tx} packets, T_loss {o.t_loss_ms:.1f} ms > "
                       f"{bound_ms:g} ms")
    return out


def run_step(sender, receiver, dst_ip, label, action, *, defer, flows=4, rate_pps=500,
             hold_s=1.5, after_s=4.0, slack_s=1.5):
    """Run ``action()`` (a callable that makes one change) under ``flows`` probe
    flows from ``sender`` to ``dst_ip`` on ``receiver``; :class:`StepResult`."""
    rx = sample_clock(receiver)
    probe = Probe(sender, receiver, dst_ip, flows=flows, rate_pps=rate_pps,
                  duration_s=hold_s + slack_s + after_s, base_port=BASE_PORT,
                  src_base_port=BASE_PORT + SRC_OFFSET)
    defer(probe.stop_undo())
    t0 = probe.start()
    time.sleep(max(0.0, t0 + hold_s - time.time()))
    late = time.time() - (t0 + hold_s)
    if late > slack_s:
        probe.stop()
        raise StepError(f"{label}: the step would land {late:.1f} s after its planned instant "
                        "(node too slow to answer): not a valid step")
    t_step = time.time()
    value = action()
    step_s = time.time() - t_step
    res = probe.wait()
    t_rx = t_step + rx.offset_s
    return StepResult(label, t_rx, step_s, res,
                      res.outage(fault_t=t_rx, window=(0.5, after_s + step_s)), value)
