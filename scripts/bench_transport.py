#!/usr/bin/env python3
"""Benchmark of the SSH transport: round trip of `true` in "exec" vs "shell" mode.

Not a test. By default starts a throwaway loopback sshd (tests/sshd.py, needs
root and OpenSSH); or give --host/--port/--key/--known-hosts of a real node.
Prints connect time and median / p95 / max round trip per mode, in ms.

    .venv/bin/python scripts/bench_transport.py -n 200
"""

import argparse
import statistics
import sys
import time
from contextlib import nullcontext
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from laghil.transport.ssh import MODES, SshSession  # noqa: E402
from laghil.transport.target import SshTarget  # noqa: E402


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def bench(target, mode, n):
    """Return (connect_ms, first_command_ms, [round trip ms of the next n commands])."""
    with SshSession(target, mode=mode) as session:
        t0 = time.perf_counter()
        session.connect()                     # TCP + SSH handshake + auth (+ shell start)
        connect_ms = (time.perf_counter() - t0) * 1e3
        t0 = time.perf_counter()
        session.run("true")
        first_ms = (time.perf_counter() - t0) * 1e3
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            session.run("true")
            times.append((time.perf_counter() - t0) * 1e3)
    return connect_ms, first_ms, times


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=200, help="commands per mode (default 200)")
    ap.add_argument("--host", help="node address (default: start a loopback sshd)")
    ap.add_argument("--port", type=int, default=22)
    ap.add_argument("--user", default="root")
    ap.add_argument("--key", help="private key file")
    ap.add_argument("--known-hosts", help="known_hosts file (default ~/.ssh/known_hosts)")
    ap.add_argument("--accept-unknown", action="store_true",
                    help="accept an unknown host key (without writing it)")
    ap.add_argument("--modes", default=",".join(MODES), help="comma-separated (exec,shell)")
    args = ap.parse_args(argv)

    if args.host:
        server = nullcontext(None)
    else:
        from sshd import LoopbackSshd
        server = LoopbackSshd()
    with server as sshd:
        if sshd is not None:
            target = sshd.target(name="bench")
            where = f"loopback sshd 127.0.0.1:{sshd.port}"
        else:
            target = SshTarget(name="bench", address=args.host, port=args.port, user=args.user,
                               key_file=args.key, known_hosts=args.known_hosts,
                               accept_unknown_host_keys=args.accept_unknown)
            where = f"{args.user}@{args.host}:{args.port}"
        print(f"{args.n} x `true` per mode against {where}")
        print(f"{'mode':6} {'connect':>9} {'1st cmd':>9} {'median':>9} {'p95':>9} {'max':>9}  (ms)")
        for mode in args.modes.split(","):
            connect_ms, first_ms, times = bench(target, mode, args.n)
            print(f"{mode:6} {connect_ms:9.1f} {first_ms:9.1f} {statistics.median(times):9.2f} "
                  f"{percentile(times, 95):9.2f} {max(times):9.2f}")


if __name__ == "__main__":
    main()
