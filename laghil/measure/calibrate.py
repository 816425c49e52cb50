"""Calibration: does the probe measure an outage of known length correctly?

On a plain, non-bonded path the link is set down and up again by an injector
process (the probe agent's ``flap``: SIOCSIFFLAGS, with the wall-clock instants
just before and after each call, on the sender's own clock) while the probe
runs; the injected outage is the time between the midpoints of the down and
the up calls. Each row compares the probe's T_gap (max over flows) with it.

Allowed error: max(2/R, 2 ms) natively (a veth pair between two local
namespaces, ARP off so that no neighbour resolution follows the flap), max(2/R,
10 ms) on a rack path (a plain port of a node pair, whose carrier and
neighbour set-up are part of what is measured). A row passes when both the
T_gap and the T_loss errors are within it; ``note`` names sender stalls
(schedule lateness above 1 ms) within 50 ms of the down or up instant, which
widen the gap on either side.
"""

import argparse
import json
import sys
from dataclasses import asdict, dataclass

from ..names import q, qif
from . import analysis
from .probe import Probe, ProbeError, ensure_agent

NATIVE_ALLOWED_MS, RACK_ALLOWED_MS = 2.0, 10.0
STALL_NEAR_S = 0.05


@dataclass
class CalRow:
    """One injected outage and what the probe measured (ms)."""
    injected_ms: float
    t_gap_ms: float
    t_loss_ms: float
    error_ms: float            # T_gap - injected
    loss_error_ms: float       # T_loss - injected
    allowed_ms: float
    ok: bool
    rep: int = 0
    rate_pps: float = 0.0
    inject_uncertainty_ms: float = 0.0
    note: str = ""

    def to_dict(self):
        return asdict(self)


@dataclass
class RackPath:
    """A plain (non-bonded) path of the rack: ``ifname`` on ``sender`` is flapped;
    ``dst_addr`` is the receiver's address on that path."""
    sender: object
    receiver: object
    dst_addr: str
    ifname: str


def allowed_error_ms(rate_pps, native=True):
    """max(2/R, 2 ms) natively, max(2/R, 10 ms) on a rack."""
    return max(2e3 / rate_pps, NATIVE_ALLOWED_MS if native else RACK_ALLOWED_MS)


def _stalls_near(res, instants):
    near = [e["late_ms"] for e in res.sender_stalls(instants, STALL_NEAR_S)]
    if not near:
        return ""
    return f"{len(near)} sender stall(s) near the flap, max {max(near):.1f} ms"


def trial(sender, receiver, dst_addr, ifname, outage_ms, rate_pps=10000, flows=1,
          native=True, lead_s=0.3, tail_s=0.3, rep=0, base_port=47100, realtime=True):
    """Inject one outage of ``outage_ms`` on ``ifname`` of ``sender`` while the
    probe runs; return a :class:`CalRow`. ``realtime``: sender and injector run
    SCHED_FIFO (best effort) so that other load does not stall them."""
    probe = Probe(sender, receiver, dst_addr, flows=flows, rate_pps=rate_pps,
                  duration_s=lead_s + outage_ms / 1e3 + tail_s, bin_ms=1, base_port=base_port,
                  realtime=realtime)
    agent = ensure_agent(sender)
    with probe:
        probe.start()
        flap = (f"{q(probe.python)} {q(agent)} flap --ifname {qif(ifname)} "
                f"--after {lead_s:g} --down-ms {outage_ms:g}" + (" --rt" if realtime else ""))
        r = sender.run(flap, timeout=lead_s + outage_ms / 1e3 + 30, check=False)
        if r.rc != 0:
            probe.stop()
            raise ProbeError(f"{sender.name}: flap of {ifname} failed: {r.stderr.strip()}")
        ev = json.loads(r.stdout)["events"][0]
        res = probe.wait()
    # Natively the receiver shares the injector's clock: look around the down
    # instant only. On a rack, clocks differ: the trial holds a single fault.
    fault_t = ev["down"] if native else None
    lag = analysis.lag_outage(res.flows, rate_pps, fault_t, (0.2, 10.0) if native else None)
    allowed = allowed_error_ms(rate_pps, native)
    gap, loss = lag["t_gap_max_ms"], lag["t_loss_max_ms"]
    err = None if gap is None else gap - ev["down_ms"]
    lerr = loss - ev["down_ms"]
    ok = err is not None and abs(err) <= allowed and abs(lerr) <= allowed
    notes = [_stalls_near(res, (ev["down"], ev["up"]))]
    notes += [n for n in res.notes if not n.startswith("sender stalled")]   # stalls: near only
    notes = [n for n in notes if n]
    return CalRow(ev["down_ms"], gap, loss, err, lerr, allowed, ok, rep, float(rate_pps),
                  ev["uncertainty_ms"], "; ".join(notes))


def calibrate(outages_ms=(50, 200, 1000), where="native", rate_pps=10000, reps=3, flows=1,
              progress=None):
    """Rows for each outage length x ``reps``. ``where``: "native" (two local
    namespaces, needs root) or a :class:`RackPath`. ``progress(row)`` is called
    after each trial."""
    rows = []

    def run_all(sender, receiver, dst, ifname, native):
        for rep in range(reps):
            for ms in outages_ms:
                row = trial(sender, receiver, dst, ifname, ms, rate_pps, flows, native, rep=rep)
                rows.append(row)
                if progress:
                    progress(row)

    if where == "native":
        from .localns import NsPair
        with NsPair(noarp=True) as ns:
            run_all(ns.nodes["a"], ns.nodes["b"], ns.addr["b"], ns.ifname["a"], True)
    elif isinstance(where, RackPath):
        run_all(where.sender, where.receiver, where.dst_addr, where.ifname, False)
    else:
        raise ValueError(f"where must be 'native' or a RackPath, not {where!r}")
    return rows


def _f(v, w=8, p=2):
    return f"{'n/a':>{w}}" if v is None else f"{v:{w}.{p}f}"


def format_table(rows):
    """A fixed-width text table of calibration rows, with a summary line."""
    head = (f"{'injected':>9} {'T_gap':>8} {'T_loss':>8} {'err gap':>8} {'err loss':>8} "
            f"{'allowed':>8} {'rate':>7} {'result':>6}  note")
    lines = [head + "  (ms; rate pkt/s per flow)", "-" * len(head)]
    for r in rows:
        lines.append(f"{r.injected_ms:9.2f} {_f(r.t_gap_ms)} {_f(r.t_loss_ms)} {_f(r.error_ms)} "
                     f"{_f(r.loss_error_ms)} {_f(r.allowed_ms)} {r.rate_pps:7.0f} "
                     f"{'pass' if r.ok else 'FAIL':>6}  {r.note}")
    errs = [abs(r.error_ms) for r in rows if r.error_ms is not None]
    if rows:
        lines.append(f"{sum(r.ok for r in rows)}/{len(rows)} within the allowed error; "
                     f"|T_gap error| max {max(errs, default=float('nan')):.2f} ms, "
                     f"median {analysis.percentile(errs, 50) if errs else float('nan'):.2f} ms")
    return "\n".join(lines)


def main_calibrate(argv=None):
    """``laghil measure calibrate``: native calibration table; exit 0 if all pass."""
    ap = argparse.ArgumentParser(prog="laghil measure calibrate",
                                 description="Measure known outages on a plain path "
                                             "and compare with the probe's figures.")
    ap.add_argument("--native", action="store_true", default=True,
                    help="two local network namespaces on a veth pair (default; needs root)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--rate", type=float, default=10000, help="packets/s per flow")
    ap.add_argument("--flows", type=int, default=1)
    ap.add_argument("--outages", default="50,200,1000", help="outage lengths, ms")
    ap.add_argument("--json", action="store_true", help="print the rows as JSON too")
    a = ap.parse_args(argv)
    try:
        outages = tuple(float(x) for x in a.outages.split(",") if x.strip())
    except ValueError:
        ap.error(f"--outages {a.outages!r}: comma-separated numbers expected")
    if not 1 <= a.reps <= 100 or not 10 <= a.rate <= 200000 or not outages \
            or any(not 1 <= o <= 60000 for o in outages):
        ap.error("--reps 1..100, --rate 10..200000, --outages 1..60000 ms")
    from .localns import available
    ok, why = available()
    if not ok:
        print(f"laghil measure calibrate: native calibration {why}", file=sys.stderr)
        return 2
    rows = calibrate(outages, "native", a.rate, a.reps, a.flows)
    print(format_table(rows))
    if a.json:
        print(json.dumps([r.to_dict() for r in rows], indent=1))
    return 0 if all(r.ok for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main_calibrate())
