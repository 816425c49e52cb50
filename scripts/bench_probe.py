#!/usr/bin/env python3
"""Benchmark of the probe on this machine (needs root): not a test.

1. Rate ramp: one flow for 2 s at each rate (default 50k, 75k, 100k, 125k
   pkt/s) between two local namespaces on a veth pair; prints sent, achieved,
   received, lost, largest gap, and the highest lossless rate (rx == tx and
   the sender reached 95% of the target).
2. Calibration table (laghil.measure.calibrate, native).

    .venv/bin/python scripts/bench_probe.py [--rates 50000,75000] [--reps 3] [--rt]
"""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from laghil.measure.calibrate import calibrate, format_table  # noqa: E402
from laghil.measure.localns import NsPair, available  # noqa: E402
from laghil.measure.probe import Probe  # noqa: E402


def ramp(rates, duration_s, realtime):
    """[(rate, ProbeResult)] for one flow at each rate."""
    out = []
    with NsPair(noarp=True) as ns:
        for rate in rates:
            res = Probe(ns.nodes["a"], ns.nodes["b"], ns.addr["b"], flows=1, rate_pps=rate,
                        duration_s=duration_s, bin_ms=10, realtime=realtime).run()
            out.append((rate, res))
    return out


def format_ramp(results, duration_s):
    lines = [f"{'target':>8} {'sent':>8} {'achieved':>9} {'received':>9} {'lost':>6} "
             f"{'max gap':>8} {'late max':>8}  sustained  (1 flow, {duration_s:g} s, pkt/s, ms)"]
    best = None
    for rate, res in results:
        f = res.flows[0]
        gap = f["gaps"][0]["gap_s"] * 1e3 if f["gaps"] else 0.0
        lossless = f["lost"] == 0 and f["tx_count"] > 0 and res.achieved_pps >= 0.95 * rate
        if lossless:
            best = rate
        lines.append(f"{rate:8.0f} {f['tx_count']:8d} {res.achieved_pps:9.0f} {f['rx_count']:9d} "
                     f"{f['lost']:6d} {gap:8.2f} {res.sender['max_late_ms']:8.2f}  "
                     f"{'yes' if lossless else 'no':>9}")
    lines.append("sustained: rx == tx and the sender reached 95% of the target")
    lines.append(f"max lossless native rate per flow: "
                 f"{'none of the rates' if best is None else f'{best:.0f} pkt/s'}")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rates", default="50000,75000,100000,125000")
    ap.add_argument("--duration", type=float, default=2.0)
    ap.add_argument("--reps", type=int, default=3, help="calibration repetitions")
    ap.add_argument("--rt", action="store_true",
                    help="run the ramp's sender SCHED_FIFO (holds a core at high rates)")
    ap.add_argument("--no-calibration", action="store_true")
    a = ap.parse_args(argv)
    ok, why = available()
    if not ok:
        print(f"bench_probe: {why}", file=sys.stderr)
        return 2
    rates = [float(r) for r in a.rates.split(",") if r.strip()]
    if not rates or any(not 1 <= r <= 500000 for r in rates) or not 0 < a.duration <= 10:
        ap.error("--rates 1..500000 pkt/s, --duration up to 10 s")
    print(format_ramp(ramp(rates, a.duration, a.rt), a.duration))
    if not a.no_calibration:
        print()
        print(format_table(calibrate(reps=a.reps)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
