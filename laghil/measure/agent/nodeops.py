"""What laghil's agents do to the node itself (uploaded beside them, stdlib
only): their sockets' buffers and timestamps, their priority (``--nice``, SCHED_FIFO with ``--rt``, best effort) and
probe_agent's ``flap`` command: an interface set down and up again with
SIOCSIFFLAGS at a given epoch, the wall-clock instants just before and after
each call recorded (the injector of calibration); the link is always left up."""

import fcntl
import json
import os
import signal
import socket
import struct
import sys
import time

MAX_WAIT_S = 300.0         # --start-at / --at at most this far ahead
FLAP_VERSION = 1           # of flap's JSON output
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1


class Usage(Exception):
    """Bad arguments: exit status 2 with the message."""


def _ts_decoder(ts_len):
    if ts_len == 16:
        return struct.Struct("@qq")
    if ts_len == 8:
        return struct.Struct("@ii")
    raise RuntimeError(f"unexpected timestamp size {ts_len}")


def _now_ts():
    ns = time.time_ns()
    return struct.pack("@qq", ns // 1_000_000_000, ns % 1_000_000_000)


def _family(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def _bufsize(sock, opt_force, opt, size):
    try:
        sock.setsockopt(socket.SOL_SOCKET, opt_force, size)
    except OSError:
        try:
            sock.setsockopt(socket.SOL_SOCKET, opt, size)
        except OSError:
            pass


def _renice(nice):
    """Run at nice value ``nice`` (best effort: a lower value needs privileges)."""
    if nice:
        try:
            os.nice(nice - os.nice(0))
        except OSError:
            pass


def _realtime(enable):
    """With ``enable``, switch to SCHED_FIFO priority 1 (best effort, needs
    privileges): CPU-bound neighbours then cannot delay the pacing by a time
    slice. The process sleeps between batches and is bounded in time; the
    kernel's RT throttling still leaves others 5%. Returns the policy name."""
    if enable:
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
        except (OSError, AttributeError):
            pass
    try:
        return "fifo" if os.sched_getscheduler(0) == os.SCHED_FIFO else "other"
    except (OSError, AttributeError):
        return "unknown"


def _set_up(sock, ifname, up):
    """Set IFF_UP of ``ifname``; return (t_before, t_after) epoch seconds."""
    req = struct.pack("16sH22x", ifname.encode(), 0)
    flags = struct.unpack_from("16sH", fcntl.ioctl(sock.fileno(), SIOCGIFFLAGS, req))[1]
    flags = (flags | IFF_UP) if up else (flags & ~IFF_UP)
    req = struct.pack("16sH22x", ifname.encode(), flags)
    t0 = time.time()
    fcntl.ioctl(sock.fileno(), SIOCSIFFLAGS, req)
    return t0, time.time()


def _sleep_until(epoch):
    while True:
        left = epoch - time.time()
        if left <= 0:
            return
        time.sleep(min(left, 0.2) if left > 0.002 else left)


def _interrupt(_signum, _frame):
    raise KeyboardInterrupt


def cmd_flap(a):
    """Down/up --ifname --count times; print the instants as JSON."""
    if len(a.ifname.encode()) > 15:
        raise Usage(f"--ifname {a.ifname!r} is longer than 15 bytes")
    if a.at is not None and a.after is not None:
        raise Usage("give --at or --after, not both")
    at = a.at if a.at is not None else time.time() + (a.after or 0.0)
    if at - time.time() > MAX_WAIT_S:
        raise Usage(f"the first down is more than {MAX_WAIT_S:g} s ahead")
    down_s, period_s = a.down_ms / 1e3, a.period_ms / 1e3
    if a.count > 1 and period_s <= down_s:
        raise Usage("--period-ms must exceed --down-ms")
    signal.signal(signal.SIGTERM, _interrupt)
    sched = _realtime(a.rt)
    events = []
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    is_down = False
    try:
        for k in range(a.count):
            _sleep_until(at + k * period_s)
            d0, d1 = _set_up(s, a.ifname, False)
            is_down = True
            _sleep_until(d0 + down_s)
            u0, u1 = _set_up(s, a.ifname, True)
            is_down = False
            events.append({"down": (d0 + d1) / 2, "down_call_ms": (d1 - d0) * 1e3,
                           "up": (u0 + u1) / 2, "up_call_ms": (u1 - u0) * 1e3,
                           "down_before": d0, "down_after": d1, "up_before": u0, "up_after": u1,
                           "down_ms": ((u0 + u1) - (d0 + d1)) / 2 * 1e3,
                           "uncertainty_ms": ((d1 - d0) + (u1 - u0)) / 2 * 1e3})
    except OSError as e:
        print(f"probe_agent flap: {a.ifname}: {e.strerror or e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("probe_agent flap: interrupted; link restored", file=sys.stderr)
        return 130
    finally:
        if is_down:
            try:
                _set_up(s, a.ifname, True)
            except OSError:
                pass
        s.close()
    json.dump({"agent": "laghil-probe", "version": FLAP_VERSION, "mode": "flap",
               "ifname": a.ifname, "clock": "time.time", "sched": sched, "events": events},
              sys.stdout)
    sys.stdout.write("\n")
    return 0
