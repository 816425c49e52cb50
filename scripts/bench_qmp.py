#!/usr/bin/env python3
"""The fault instant's precision through QMP: laghil's own client
(laghil.vlab.qmp) against QEMU's (qemu.qmp, its synchronous
QEMUMonitorProtocol), on the running virtual rack.

A cable pull's instant is the middle of the ``set_link`` round trip and its
uncertainty half that round trip (laghil.vlab.qmp.Qmp.set_link), so the
client with the shorter, steadier round trip gives the better fault instant.
Each client, in turn, sends ``--calls`` ``set_link`` commands that change
nothing (a NIC that is up set up again) to one guest's QMP socket; the round
trips are printed (min / median / p90 / max, ms) with the half-width they
give. Bounded: ``--calls`` (at most 10000) per client, one socket each, closed
at the end. Needs the rack up (``laghil vlab up``) and no lab session holding
it (QEMU's QMP socket takes one client at a time).

    .venv/bin/python scripts/bench_qmp.py [--lab virtual] [--node h1] [--port eth1]
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from laghil.lab import load_lab  # noqa: E402
from laghil.vlab.guest import nic_id  # noqa: E402
from laghil.vlab.qmp import Qmp  # noqa: E402
from laghil.vlab.rack import Rack  # noqa: E402


def figures(rtts):
    ms = sorted(x * 1e3 for x in rtts)
    p90 = ms[min(len(ms) - 1, int(0.9 * len(ms)))]
    return (f"min {ms[0]:.3f}  median {statistics.median(ms):.3f}  p90 {p90:.3f}  "
            f"max {ms[-1]:.3f} ms  (half-width median {statistics.median(ms) / 2:.3f} ms)")


def round_trips(call, calls):
    """``calls`` timings (s) of ``call()``."""
    out = []
    for _ in range(calls):
        t0 = time.perf_counter()
        call()
        out.append(time.perf_counter() - t0)
    return out


def ours(sock, name, nic, calls):
    q = Qmp(sock, name)
    try:
        return round_trips(lambda: q.execute("set_link", name=nic, up=True), calls)
    finally:
        q.close()


def qemus(sock, nic, calls):
    from qemu.qmp.legacy import QEMUMonitorProtocol
    q = QEMUMonitorProtocol(str(sock))
    q.connect()
    try:
        return round_trips(lambda: q.cmd("set_link", name=nic, up=True), calls)
    finally:
        q.close()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lab", default="virtual")
    ap.add_argument("--node", default="h1")
    ap.add_argument("--port", default="eth1")
    ap.add_argument("--calls", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args(argv)
    if not 1 <= a.calls <= 10000 or not 1 <= a.rounds <= 10:
        ap.error("--calls 1..10000, --rounds 1..10")
    rack = Rack(load_lab(a.lab))
    if not rack.is_running():
        print(f"the rack of lab {a.lab} is not running: laghil vlab up --lab {a.lab}",
              file=sys.stderr)
        return 2
    sock, nic = rack.guest_dir(a.node) / "qmp.sock", nic_id(a.port)
    for r in range(a.rounds):          # alternate, so that machine load hits both alike
        print(f"round {r + 1}: laghil.vlab.qmp   {figures(ours(sock, a.node, nic, a.calls))}")
        print(f"round {r + 1}: qemu.qmp (legacy) {figures(qemus(sock, nic, a.calls))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
