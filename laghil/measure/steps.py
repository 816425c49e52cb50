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


def run_step(sender, receiver, dst_ip, label, action, *, defer, flows=4, rate_pps=500,
             hold_s=1.5, after_s=4.0, slack_s=1.5):
    """Run ``action()`` (a callable that makes one change) under ``flows`` probe
    flows from ``sender`` to ``dst_ip`` on ``receiver``; :class:`StepResult`."""
    rx = sample_clock(receiver)
    probe = Probe(sender, receiver, dst_ip, flows=flows, rate_pps=rate_pps,
                  duration_s=hold_s + slack_s + after_s, base_port=BASE_PORT,
                  src_base_port=BASE_PORT + SRC_OFFSET)
    defer(probe.stop)
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
