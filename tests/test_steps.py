"""Steps under traffic judge arrival, loss and resumption per flow
(laghil.measure.steps.step_problems), on synthetic probe results."""

from laghil.measure import analysis as an
from laghil.measure.probe import ProbeResult
from laghil.measure.steps import StepResult, step_problems

T0 = 1_700_000_000.0
R = 500.0          # the steps' probe rate


def _flow(i, n=2500, missing=()):
    miss = set(missing)
    f = an.flow_from_packets([(s, T0 + s / R) for s in range(n) if s not in miss], R,
                             tx_count=n, flow=i, dst_port=47200 + i)
    return f


def _step(flows, step_at=1.5, label="swp1 out of lglag1"):
    res = ProbeResult(R, flows, sender={}, receiver={"top_gaps": 16}, bin_ms=1.0)
    t = T0 + step_at
    return StepResult(label, t, 0.05, res, res.outage(fault_t=t, window=(0.5, 3.0)))


def test_a_healthy_step_has_no_problem():
    s = _step([_flow(0, missing=range(750, 760)), _flow(1)])
    assert step_problems(s, bound_ms=60) == []


def test_a_blackholed_flow_is_named_with_the_step():
    # flow 1 hashed onto a member that drops every frame from the step on
    s = _step([_flow(0), _flow(1, missing=range(750, 2500)), _flow(2, missing=range(0, 2500))])
    probs = step_problems(s, bound_ms=60)
    text = "\n".join(probs)
    assert "swp1 out of lglag1: flow 1 (port 47201): stopped at packet 749 and never came back" \
        in text, text
    assert "flow 2 (port 47202): none of its 2500 packets arrived" in text
    assert "flow 0" not in text


def test_loss_over_the_bound_fails_even_without_a_long_gap():
    # 40 packets (80 ms at 500 pkt/s) lost in 8 bursts of 5: no outage over 10 ms
    lost = [b + k for b in range(800, 2400, 200) for k in range(5)]
    s = _step([_flow(0, missing=lost)])
    (p,) = step_problems(s, bound_ms=60)
    assert "lost 40 of 2500 packets, T_loss 80.0 ms > 60 ms" in p


def test_a_flow_that_was_not_flowing_before_the_step_proves_nothing():
    s = _step([_flow(0, missing=range(0, 1000))])
    p = step_problems(s, bound_ms=60)[0]
    assert "first packet arrived 500 ms after the step: no traffic before it" in p


def test_a_restoring_step_is_judged_by_when_traffic_resumes():
    # the LAG put back into the bridge at +1.5 s: nothing before; resumes 20 ms later
    ok = _step([_flow(0, missing=range(0, 760))], label="lglag1 back into br0")
    assert step_problems(ok, bound_ms=60, flowing_before=False) == []
    late = _step([_flow(0, missing=range(0, 850))], label="lglag1 back into br0")
    (p,) = step_problems(late, bound_ms=60, flowing_before=False)
    assert p.startswith("lglag1 back into br0: flow 0 (port 47200): traffic resumed 150 ms after "
                        "the step's commands had run (50 ms)")
