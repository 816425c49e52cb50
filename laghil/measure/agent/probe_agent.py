#!/usr/bin/env python3
"""laghil probe agent: sequence-numbered UDP flows for failover measurement.

(Uploaded to the nodes with flowstats.py, the reduction the controller
imports too, and nodeops.py, the flap command and the priority settings.)

Stdlib only, uploaded to hosts and guests with ``flowstats.py`` (the per-flow
reduction, which the controller imports too) and run with python3 there (it
also runs locally). Three commands, each bounded in time and exiting by itself:

``recv``  UDP receivers, one socket per port. Each datagram's arrival time is
          the kernel's (SO_TIMESTAMPNS) when available, else time.time(). The
          hot loop only appends the header bytes and the timestamp to byte
          buffers; chunks are reduced per flow (keyed by destination port and
          the flow id of the payload) into counts, the top-N inter-arrival
          gaps, loss bursts, out-of-order/duplicate counts and per-bin receive
          counts. Prints ONE JSON object, never per-packet data. Stops after
          --duration, when every port has received an END marker (then a short
          linger), or on SIGTERM/SIGINT.
``send``  N flows on distinct 5-tuples (source port Q+i -> destination port
          P+i), paced on a monotonic schedule at --rate packets/s per flow.
          When late it sends the missed packets as a batch, but never more
          than CATCHUP_S worth: beyond that the schedule slips (counted as an
          overrun). Sequence numbers are never skipped: a packet the kernel
          refuses (link down: ENETUNREACH) counts as sent and lost. Reports
          its stalls (schedule lateness above LATE_S, with their instants).
          Ends with END markers carrying each flow's final count; prints a
          JSON summary (per flow: sent, achieved rate, send errors).
``flap``  Sets an interface down and up again with SIOCSIFFLAGS at a given
          epoch (or after a delay), recording the wall-clock instants just
          before and after each call (the injector for calibration). Always
          leaves the link up.

``--nice N`` and ``--rt`` (SCHED_FIFO 1) are best effort: a busy node's time
slices otherwise stall the sender by milliseconds, which shows as gaps.

Per-flow receive result: flow, dst_port, src (from the END marker), rate_pps
(declared), tx_count (END marker, else highest seq + 1; tx_source says which),
rx_count (unique seqs below tx_count), rx_packets (all arrivals), lost,
first/last (arrival epochs), out_of_order (arrivals below the highest seq
seen), duplicates, gaps (top-N: gap_s, t_before, t_after, seq_before,
seq_after; largest first), loss_gaps (top-N of the arrivals across which
sequence numbers were skipped, most skipped first: the same keys plus
``missing``, how many of the skipped ones never arrived), loss_bursts ([start seq, length], the largest
TOP_BURSTS, by start), loss_burst_count, bins ({t0, bin_ms, counts}, trimmed
to the first and last non-empty bin; bins of all flows share one origin).

Payload (network byte order, 32 bytes, padded to --size): magic "LGP1",
kind (0 data, 1 END), version, flow id (u16), seq (u64; for END: the final
count), rate (u32, the sender's declared packets/s), send time (f64 epoch),
source port (u16), destination port (u16).
"""

import argparse
import errno
import heapq
import json
import math
import os
import select
import signal
import socket
import struct
import sys
import time

try:                                      # run as a script: its modules are beside it
    from flowstats import TOP_GAPS, FlowStats
    from nodeops import (MAX_WAIT_S, Usage, _bufsize, _family, _now_ts, _realtime, _renice,
                         _ts_decoder, cmd_flap)
except ImportError:                       # imported from the laghil package
    from .flowstats import TOP_GAPS, FlowStats
    from .nodeops import (MAX_WAIT_S, Usage, _bufsize, _family, _now_ts, _realtime, _renice,
                          _ts_decoder, cmd_flap)

MAGIC = b"LGP1"
VERSION = 1
KIND_DATA, KIND_END = 0, 1
HDR = struct.Struct("!4sBBHQIdHH")     # magic kind ver flow seq rate t_send sport dport
HDR_LEN = HDR.size                       # 32
PER_PACKET = struct.Struct("!QId")       # seq rate t_send, at offset 8
KEY = struct.Struct("!HQI")              # flow seq rate: bytes 6..20 of a datagram
KEY_SLICE = slice(6, 20)
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)   # asm-generic value
RCVBUF = 32 << 20
SNDBUF = 4 << 20
CHUNK = 32768              # reduce buffered packets past this many
LINGER_S = 0.1             # after the last expected END marker
END_MARKERS = 5            # per flow
END_SPACING_S = 0.002
CATCHUP_S = 0.005          # never burst more than this much of the schedule
LATE_S = 0.001             # sender lateness worth reporting (a stall)
TOP_LATE = 16
MAX_DURATION_S = 3600.0
MAX_BINS = 2_000_000


# ---------------------------------------------------------------------- recv
class _Port:
    """One receiving socket and the raw buffers of its unreduced packets."""

    def __init__(self, sock, port):
        self.sock, self.port = sock, port
        self.keys = bytearray()     # KEY records
        self.tss = bytearray()      # timespec records (ts_len bytes each)
        self.pending = 0
        self.ended = False
        self.stray = 0              # datagrams that are not probe packets
        self.user_ts = 0            # packets without a kernel timestamp (time.time())


def cmd_recv(a):
    """Receive until --duration, all END markers, or a signal; print the JSON result."""
    ports = _ports(a.ports)
    bin_s = a.bin_ms / 1e3
    n_bins = int(math.ceil((a.duration + 1.0) / bin_s)) + 1
    if n_bins > MAX_BINS:
        raise Usage(f"--duration {a.duration:g} s at --bin-ms {a.bin_ms:g} needs {n_bins} bins "
                    f"(max {MAX_BINS}): use a wider bin")
    stop = {"why": None}

    def on_signal(signum, _frame):
        stop["why"] = signal.Signals(signum).name

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    _renice(a.nice)
    sched = _realtime(a.rt)

    socks, kernel_ts = [], True
    ep = select.epoll()
    try:
        for p in ports:
            s = socket.socket(_family(a.bind), socket.SOCK_DGRAM)
            socks.append(s)
            _bufsize(s, getattr(socket, "SO_RCVBUFFORCE", 33), socket.SO_RCVBUF, RCVBUF)
            try:
                s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            except OSError:
                kernel_ts = False
            try:
                s.bind((a.bind, p))
            except OSError as e:
                raise Usage(f"cannot bind UDP {a.bind}:{p}: {e.strerror}") from None
            s.setblocking(False)
        states = {s.fileno(): _Port(s, p) for s, p in zip(socks, ports)}
        for fd in states:
            ep.register(fd, select.EPOLLIN)
        wall0, mono0 = time.time(), time.monotonic()
        flows = {}
        if a.ready_file:
            with open(a.ready_file + ".tmp", "w") as f:
                f.write(f"{os.getpid()} {wall0:.6f}\n")
            os.replace(a.ready_file + ".tmp", a.ready_file)
        why = _recv_loop(a, ep, states, flows, wall0, bin_s, n_bins, mono0, stop)
        wall1 = time.time()
    finally:
        ep.close()
        for s in socks:
            s.close()
    user_ts = sum(st.user_ts for st in states.values())
    clock = "SO_TIMESTAMPNS" if kernel_ts and not user_ts else (
        "SO_TIMESTAMPNS+time.time" if kernel_ts else "time.time")
    out = {"agent": "laghil-probe", "version": VERSION, "mode": "recv", "bind": a.bind,
           "ports": ports, "clock": clock, "user_timestamps": user_ts,
           "start": wall0, "end": wall1, "stopped": why, "bin_ms": a.bin_ms, "nice": os.nice(0),
           "sched": sched,
           "stray": sum(st.stray for st in states.values()),
           "flows": [fs.result() for _, fs in sorted(flows.items())]}
    json.dump(out, sys.stdout, separators=(",", ":"))
    sys.stdout.write("\n")
    return 0


def _recv_loop(a, ep, states, flows, origin, bin_s, n_bins, mono0, stop):
    """The receive loop; returns why it stopped."""
    t_stop = mono0 + a.duration
    done_at = None
    pending = 0
    magic, hdr_len, ks = MAGIC, HDR_LEN, KEY_SLICE
    while True:
        now = time.monotonic()
        if stop["why"]:
            why = "signal " + stop["why"]
            break
        if now >= t_stop:
            why = "duration"
            break
        if done_at is not None and now >= done_at:
            why = "end markers"
            break
        wait = min(0.05, t_stop - now, (done_at - now) if done_at else 1.0)
        try:
            events = ep.poll(max(wait, 0.001))
        except InterruptedError:
            continue
        for fd, _ in events:
            st = states[fd]
            recvmsg, keys, tss = st.sock.recvmsg, st.keys, st.tss
            n = 0
            for _ in range(4096):        # bounded drain, then check the clock again
                try:
                    data, anc, _flags, addr = recvmsg(64, 64)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:
                    st.stray += 1
                    break
                if len(data) < hdr_len or data[:4] != magic:
                    st.stray += 1
                    continue
                if data[4]:
                    _on_end(st, data, addr, flows, origin, bin_s, n_bins, a)
                    continue
                n += 1
                keys += data[ks]
                if anc:
                    tss += anc[0][2]
                else:
                    tss += _now_ts()
                    st.user_ts += 1
            st.pending += n
            pending += n
        if pending >= CHUNK:
            _reduce(states, flows, origin, bin_s, n_bins, a)
            pending = 0
        if done_at is None and all(st.ended for st in states.values()):
            done_at = time.monotonic() + LINGER_S
    _reduce(states, flows, origin, bin_s, n_bins, a)
    return why


def _flow(flows, port, flow, rate, origin, bin_s, n_bins, a):
    fs = flows.get((port, flow))
    if fs is None:
        cap = int(max(rate, 1) * (a.duration + 5.0) * 1.2) + 1000
        fs = flows[(port, flow)] = FlowStats(flow, port, origin, bin_s, n_bins, a.top_gaps,
                                             min(cap, 1 << 28))
        fs.rate = rate
    return fs


def _on_end(st, data, addr, flows, origin, bin_s, n_bins, a):
    _m, kind, _v, flow, count, rate, _t, sport, _dport = HDR.unpack_from(data)
    if kind != KIND_END:
        return
    fs = _flow(flows, st.port, flow, rate, origin, bin_s, n_bins, a)
    fs.tx_count = count
    fs.src = f"{addr[0]}:{sport}"
    st.ended = True


def _reduce(states, flows, origin, bin_s, n_bins, a):
    """Move every port's buffered packets into its flows' statistics."""
    for st in states.values():
        if not st.pending:
            continue
        keys, tss = bytes(st.keys), bytes(st.tss)
        st.keys.clear()
        st.tss.clear()
        n, st.pending = st.pending, 0
        dec = _ts_decoder(len(tss) // n)
        times = [s + ns * 1e-9 for s, ns in dec.iter_unpack(tss)]
        per_flow = {}
        for (flow, seq, rate), t in zip(KEY.iter_unpack(keys), times):
            lst = per_flow.get(flow)
            if lst is None:
                lst = per_flow[flow] = ([], rate)
            lst[0].append((seq, t))
        for flow, (arrivals, rate) in per_flow.items():
            _flow(flows, st.port, flow, rate, origin, bin_s, n_bins, a).add(arrivals)


# ---------------------------------------------------------------------- send
def cmd_send(a):
    """Send --flows paced flows for --duration; print the JSON summary."""
    if a.start_at is not None:
        ahead = a.start_at - time.time()
        if ahead > MAX_WAIT_S:
            raise Usage(f"--start-at is {ahead:.0f} s ahead (max {MAX_WAIT_S:g} s)")
        while ahead > 0:
            time.sleep(min(ahead, 0.5))
            ahead = a.start_at - time.time()
    stop = {"why": None}

    def on_signal(signum, _frame):
        stop["why"] = signal.Signals(signum).name

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    _renice(a.nice)
    a.sched = _realtime(a.rt)
    fam = _family(a.dst)
    socks, bufs = [], []
    try:
        for i in range(a.flows):
            s = socket.socket(fam, socket.SOCK_DGRAM)
            socks.append(s)
            _bufsize(s, getattr(socket, "SO_SNDBUFFORCE", 32), socket.SO_SNDBUF, SNDBUF)
            sport, dport = a.src_base_port + i, a.base_port + i
            try:
                s.bind((a.src or ("::" if fam == socket.AF_INET6 else "0.0.0.0"), sport))
                s.connect((a.dst, dport))
            except OSError as e:
                raise Usage(f"cannot bind source port {sport} / reach {a.dst}:{dport}: "
                            f"{e.strerror}") from None
            buf = bytearray(a.size)
            HDR.pack_into(buf, 0, MAGIC, KIND_DATA, VERSION, i, 0, int(a.rate), 0.0, sport, dport)
            bufs.append(buf)
        if a.ready_file:  # the controller times faults from the first packet, not the launch
            with open(a.ready_file + ".tmp", "w") as f:
                f.write(f"{time.time():.6f}\n")
            os.replace(a.ready_file + ".tmp", a.ready_file)
        return _send_loop(a, socks, bufs, stop)
    finally:
        for s in socks:
            s.close()


def _send_loop(a, socks, bufs, stop):
    rate = float(a.rate)
    total = int(rate * a.duration)
    interval = 1.0 / rate
    max_batch = max(1, int(math.ceil(rate * CATCHUP_S)))
    sends = [s.send for s in socks]
    pairs = list(zip(sends, bufs))
    errors = [{} for _ in socks]
    pack_into, now_wall, mono, sleep = PER_PACKET.pack_into, time.time, time.monotonic, time.sleep
    irate = int(rate)
    wall0 = now_wall()
    t0 = start = mono()
    t_end = start + a.duration
    sent = overruns = 0
    slipped = 0.0
    lates = []                 # (lateness s, wall time the late packet was due)
    why = "count"
    while sent < total:
        now = mono()
        if now >= t_end:
            why = "duration"
            break
        if stop["why"]:
            why = "signal " + stop["why"]
            break
        due = min(total, int((now - t0) * rate) + 1)
        n = due - sent
        if n <= 0:
            sleep(t0 + sent * interval - now)
            continue
        late = now - (t0 + sent * interval)
        if late > LATE_S:             # a stall: keep the worst ones with their instant
            item = (late, wall0 + (now - start) - late)
            if len(lates) < TOP_LATE:
                heapq.heappush(lates, item)
            else:
                heapq.heappushpop(lates, item)
        if n > max_batch:            # late: catch up at most CATCHUP_S, slip the rest
            overruns += 1
            slipped += (n - max_batch) * interval
            t0 += (n - max_batch) * interval
            n = max_batch
        for seq in range(sent, sent + n):
            t = now_wall()
            for j, (send, buf) in enumerate(pairs):
                pack_into(buf, 8, seq, irate, t)
                try:
                    send(buf)
                except OSError as e:
                    name = errno.errorcode.get(e.errno, str(e.errno))
                    errors[j][name] = errors[j].get(name, 0) + 1
        sent += n
    elapsed = mono() - start
    wall1 = now_wall()
    for _ in range(END_MARKERS):
        for j, (send, buf) in enumerate(pairs):
            end = bytearray(buf[:HDR_LEN])
            end[4] = KIND_END
            pack_into(end, 8, sent, irate, now_wall())
            try:
                send(end)
            except OSError:
                pass
        sleep(END_SPACING_S)
    flows = []
    for j, buf in enumerate(bufs):
        _m, _k, _v, flow, _s, _r, _t, sport, dport = HDR.unpack_from(buf)
        flows.append({"flow": flow, "src_port": sport, "dst_port": dport, "sent": sent,
                      "achieved_pps": sent / elapsed if elapsed > 0 else 0.0,
                      "send_errors": errors[j]})
    out = {"agent": "laghil-probe", "version": VERSION, "mode": "send", "dst": a.dst,
           "rate_pps": rate, "duration_s": a.duration, "size": a.size, "start": wall0,
           "end": wall1, "elapsed_s": elapsed, "stopped": why, "sent": sent,
           "planned": total, "overruns": overruns, "slipped_ms": slipped * 1e3,
           "late_events": [{"t": t, "late_ms": late * 1e3} for late, t in
                           sorted(lates, key=lambda x: x[1])],
           "max_late_ms": max((late for late, _ in lates), default=0.0) * 1e3,
           "nice": os.nice(0), "sched": a.sched, "flows": flows}
    json.dump(out, sys.stdout, separators=(",", ":"))
    sys.stdout.write("\n")
    return 0


# ----------------------------------------------------------------------- CLI
def _ports(text):
    try:
        ports = [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise Usage(f"--ports {text!r}: expected comma-separated port numbers") from None
    if not ports or len(ports) > 256 or any(not 0 < p < 65536 for p in ports):
        raise Usage(f"--ports {text!r}: 1-256 ports in 1..65535")
    if len(set(ports)) != len(ports):
        raise Usage(f"--ports {text!r}: duplicate port")
    return ports


def _parser():
    ap = argparse.ArgumentParser(prog="probe_agent", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("recv", help="receive flows and print one JSON result")
    r.add_argument("--bind", default="0.0.0.0")
    r.add_argument("--ports", required=True)
    r.add_argument("--duration", type=float, required=True)
    r.add_argument("--bin-ms", type=float, default=10.0)
    r.add_argument("--ready-file")
    r.add_argument("--top-gaps", type=int, default=TOP_GAPS)
    r.add_argument("--nice", type=int, default=0, help="nice value to run at (best effort)")
    r.add_argument("--rt", action="store_true", help="run SCHED_FIFO 1 (best effort)")
    s = sub.add_parser("send", help="send paced flows and print a JSON summary")
    s.add_argument("--dst", required=True)
    s.add_argument("--src", help="source address (default: any)")
    s.add_argument("--flows", type=int, default=1)
    s.add_argument("--base-port", type=int, required=True)
    s.add_argument("--src-base-port", type=int, required=True)
    s.add_argument("--rate", type=float, required=True, help="packets/s per flow")
    s.add_argument("--duration", type=float, required=True)
    s.add_argument("--start-at", type=float)
    s.add_argument("--ready-file", help="written (with the time) just before the first packet")
    s.add_argument("--size", type=int, default=64)
    s.add_argument("--nice", type=int, default=0, help="nice value to run at (best effort)")
    s.add_argument("--rt", action="store_true", help="run SCHED_FIFO 1 (best effort)")
    f = sub.add_parser("flap", help="set an interface down then up, print the instants")
    f.add_argument("--ifname", required=True)
    f.add_argument("--at", type=float, help="epoch of the first down (default: now)")
    f.add_argument("--after", type=float, help="seconds from now to the first down")
    f.add_argument("--down-ms", type=float, required=True)
    f.add_argument("--count", type=int, default=1)
    f.add_argument("--period-ms", type=float, default=0.0)
    f.add_argument("--rt", action="store_true", help="run SCHED_FIFO 1 (best effort)")
    return ap


def _validate(a):
    if getattr(a, "duration", None) is not None and not 0 < a.duration <= MAX_DURATION_S:
        raise Usage(f"--duration must be in (0, {MAX_DURATION_S:g}] s")
    if getattr(a, "nice", 0) and not -20 <= a.nice <= 19:
        raise Usage("--nice must be in -20..19")
    if a.cmd == "recv":
        if a.bin_ms not in (1.0, 10.0) and not 0.1 <= a.bin_ms <= 10000:
            raise Usage("--bin-ms must be 1 or 10 (or within 0.1..10000)")
        if not 1 <= a.top_gaps <= 1000:
            raise Usage("--top-gaps must be in 1..1000")
    elif a.cmd == "send":
        if not 1 <= a.flows <= 256:
            raise Usage("--flows must be in 1..256")
        if not 0 < a.rate <= 10_000_000:
            raise Usage("--rate must be in (0, 1e7] packets/s")
        if not HDR_LEN <= a.size <= 65507:
            raise Usage(f"--size must be in {HDR_LEN}..65507 bytes")
        for name, base in (("--base-port", a.base_port), ("--src-base-port", a.src_base_port)):
            if not 0 < base or base + a.flows - 1 > 65535:
                raise Usage(f"{name} {base}: ports {base}..{base + a.flows - 1} out of range")
    elif a.cmd == "flap":
        if not 0 < a.down_ms <= 600_000:
            raise Usage("--down-ms must be in (0, 600000]")
        if not 1 <= a.count <= 1000:
            raise Usage("--count must be in 1..1000")


def main(argv=None):
    a = _parser().parse_args(argv)
    try:
        _validate(a)
        return {"recv": cmd_recv, "send": cmd_send, "flap": cmd_flap}[a.cmd](a)
    except Usage as e:
        print(f"probe_agent {a.cmd}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
