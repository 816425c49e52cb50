#!/usr/bin/env python3
"""laghil RDMA probe agent: sequence-numbered messages over RC queue pairs.

(One script uploaded to the nodes, stdlib and pyverbs only.)

Runs with the host's python3 and pyverbs (Debian's python3-pyverbs or the PyPI
package); uploaded next to ``flowstats.py``, whose per-flow reduction it
reuses, so a QP's result has the very shape of a UDP probe flow (gaps, loss
bursts, bins) and the same analysis applies. Two commands, each bounded in
time and exiting by itself:

``recv``  Listens with rdma_cm on --bind:--port, accepts --qps RC connections
          (one QP each, external QPs on one shared CQ), keeps --depth receives
          posted per QP and polls the CQ; each receive completion is
          timestamped (time.time() right after the poll that returned it; the
          poll interval POLL_S bounds the timestamp resolution) and its
          immediate data is the message's sequence number. Stops after
          --duration, or once every QP has delivered its END message (then a
          short linger). Prints ONE JSON object: per QP the reduced flow
          (see flowstats), its error completions and its QP state.
``send``  Connects --qps RC QPs to the receiver with rdma_cm, with --retry-cnt
          and --timeout (local ACK timeout exponent) set on each QP, and posts
          signalled SEND_WITH_IMM messages (imm = sequence number) at --rate
          messages/s per QP on a monotonic schedule. A message that cannot be
          posted because the send queue is full waits (the schedule slips,
          counted as ``sq_full``): RC never drops, so an outage shows as a gap
          at the receiver, not as loss. Error completions (notably
          IBV_WC_RETRY_EXC_ERR, status 12) are recorded with their instant;
          a QP in error stops sending. After --duration it waits (bounded) for
          outstanding completions, sends an END message carrying the count,
          queries each QP's state and prints one JSON object.

``--ud`` (both sides) runs UD QPs instead, without rdma_cm: ``recv --ud
--device D --gid-index N`` makes the QPs on RDMA device D and writes their
numbers and its GID (index N, the RoCE v2 GID of its address) into the ready
file as JSON; ``send --ud --device D --gid-index N --remote-qpns A,B
--remote-gid G`` sends to them through one address handle. A UD message lost in
an outage is lost (no retransmission): the outage shows as loss, measured as
for the UDP probe; the END message is sent UD_END_COPIES times.

``send --lag-port-every S`` (mlx5 only: the call reads mlx5 private QP
state) samples every S seconds, per QP, the port the device's LAG uses for
it (``mlx5dv_query_qp_lag_port``: desired and active port), to see the
per-QP remap of a hardware RoCE LAG at a failover.

Both sides report, per QP: qp_num, state ("RTS" when the connection
survived), the QP's retry_cnt and timeout as the device reports them, and
error completions {status, name, t, count}.
"""

import argparse
import faulthandler
import json
import os
import signal
import struct
import sys
import time

try:                                      # uploaded side by side
    from flowstats import TOP_GAPS, FlowStats
    from verbs import UD_QKEY, _on_alarm, _Verbs, wc_error
except ImportError:                       # imported from the laghil package
    from .flowstats import TOP_GAPS, FlowStats
    from .verbs import UD_QKEY, _on_alarm, _Verbs, wc_error

MSG = 64                      # bytes per message
END_IMM = 0xFFFFFFFF          # immediate data of the END message; payload: !Q count
POLL_S = 0.0005               # idle poll interval (timestamp resolution)
LINGER_S = 0.1
DRAIN_S = 5.0                 # longest wait for outstanding send completions
CQ_BATCH = 64
HANG_S = 20.0               # past --duration: dump the stacks and exit
GRH = 40                    # a UD receive buffer starts with the 40-byte GRH
UD_END_COPIES = 3           # a UD END can be lost like any message
UD_END_GAP_S = 0.05

class Usage(Exception):
    """Bad arguments: exit status 2 with the message."""


def survival_bound_s(retry_cnt, timeout):
    """(retry_cnt + 1) x 4.096 us x 2^timeout: the longest outage an RC QP
    rides out (IB spec local ACK timeout; docs/measurement.md item 6)."""
    return (retry_cnt + 1) * 4.096e-6 * 2 ** timeout


def _stop_on(signals, flag):
    def handler(_signum, _frame):
        flag[0] = True
    for s in signals:
        signal.signal(s, handler)


# ---------------------------------------------------------------------- recv
def cmd_recv(a):
    v = _Verbs()
    stop = [False]
    _stop_on((signal.SIGTERM, signal.SIGINT), stop)
    t_begin = time.monotonic()
    deadline = t_begin + a.duration
    if a.ud:
        return _recv_ud(v, a, stop, t_begin, deadline)
    ce, e = v.ce, v.e
    ch = v.CMEventChannel()
    lid = v.CMID(creator=ch, port_space=ce.RDMA_PS_TCP)
    lid.bind_addr(v.AddrInfo(src=a.bind, src_service=str(a.port), port_space=ce.RDMA_PS_TCP,
                             flags=ce.RAI_PASSIVE))
    lid.listen()
    if a.ready_file:
        with open(a.ready_file, "w") as f:
            f.write(str(os.getpid()))
    cq = None
    qps, mrs, children = [], [], []
    for i in range(a.qps):
        left = deadline - time.monotonic()
        if left <= 0 or stop[0]:
            raise RuntimeError(f"only {i} of {a.qps} QPs connected before the deadline")
        ev = v.event(ch, ce.RDMA_CM_EVENT_CONNECT_REQUEST, f"QP {i} connect request",
                     min(left, a.duration))
        child = v.CMID(creator=ev, listen_id=lid)
        ev.ack_cm_event()
        if cq is None:
            cq = v.CQ(child.context, a.qps * (a.depth + 8), None, None, 0)
        qp = v.qp(child, cq, 8, a.depth)
        mr = v.MR(child.pd, a.depth * MSG, e.IBV_ACCESS_LOCAL_WRITE)
        for slot in range(a.depth):
            qp.post_recv(v.RecvWR(slot, 1, [v.SGE(mr.buf + slot * MSG, MSG, mr.lkey)]))
        child.accept(v.ConnParam(qp_num=qp.qp_num, retry=7, rnr_retry=7))
        v.to_rts(child, qp)
        v.event(ch, ce.RDMA_CM_EVENT_ESTABLISHED, f"QP {i} established").ack_cm_event()
        qps.append(qp)
        mrs.append(mr)
        children.append(child)
    out = _receive(v, a, stop, t_begin, deadline, cq, qps, mrs, MSG, 0)
    for child in children:
        try:
            child.disconnect()
        except Exception:                # noqa: BLE001 - peer gone already
            pass
    return out


def _recv_ud(v, a, stop, t_begin, deadline):
    """UD QPs on --device, their numbers and our GID in the ready file."""
    e = v.e
    ctx, pd = v.ud_resources(a.device)
    slot_b = GRH + MSG
    cq = v.CQ(ctx, a.qps * (a.depth + 8), None, None, 0)
    qps, mrs = [], []
    for _ in range(a.qps):
        qp = v.ud_qp(pd, cq, 8, a.depth)
        mr = v.MR(pd, a.depth * slot_b, e.IBV_ACCESS_LOCAL_WRITE)
        for slot in range(a.depth):
            qp.post_recv(v.RecvWR(slot, 1, [v.SGE(mr.buf + slot * slot_b, slot_b, mr.lkey)]))
        qps.append(qp)
        mrs.append(mr)
    gid = str(ctx.query_gid(1, a.gid_index))
    if a.ready_file:
        with open(a.ready_file, "w") as f:
            json.dump({"pid": os.getpid(), "qpns": [qp.qp_num for qp in qps], "gid": gid,
                       "gid_index": a.gid_index}, f)
    return _receive(v, a, stop, t_begin, deadline, cq, qps, mrs, slot_b, GRH, ud=True)


def _receive(v, a, stop, t_begin, deadline, cq, qps, mrs, slot_b, offset, ud=False):
    """Poll ``cq`` until the deadline or every QP's END; timestamp each receive
    completion, its immediate data the sequence number; repost. A message's
    payload is at ``offset`` in its slot of ``slot_b`` bytes (UD: after the GRH)."""
    flow_of = {qp.qp_num: i for i, qp in enumerate(qps)}
    origin = time.time()
    bin_s = a.bin_ms / 1e3
    n_bins = int((deadline - time.monotonic()) / bin_s) + 2
    stats = [FlowStats(i, a.port, origin, bin_s, n_bins, a.top_gaps) for i in range(a.qps)]
    for st in stats:
        st.rate = a.rate
    errors = [{} for _ in qps]
    ended = [False] * a.qps
    pending = [[] for _ in qps]
    end_t = None
    while not stop[0]:
        now_m = time.monotonic()
        if now_m >= deadline or (end_t is not None and now_m >= end_t):
            break
        n, wcs = cq.poll(CQ_BATCH)
        if n <= 0:
            time.sleep(POLL_S)
            continue
        t = time.time()
        for wc in wcs:
            i = flow_of.get(wc.qp_num)
            if i is None:
                continue
            if wc.status != 0:
                wc_error(errors[i], wc, t)
                continue
            slot = wc.wr_id
            if wc.imm_data == END_IMM:
                count = struct.unpack("!Q", mrs[i].read(8, slot * slot_b + offset))[0]
                stats[i].tx_count = count
                ended[i] = True
            else:
                pending[i].append((wc.imm_data, t))
            try:
                qps[i].post_recv(v.RecvWR(slot, 1, [v.SGE(mrs[i].buf + slot * slot_b, slot_b,
                                                          mrs[i].lkey)]))
            except Exception as ex:      # noqa: BLE001 - QP in error: recorded below
                errors[i].setdefault(-1, {"status": -1, "name": "POST_RECV_FAILED", "t": t,
                                          "count": 0, "error": str(ex)})["count"] += 1
        for i, p in enumerate(pending):
            if len(p) >= 1024:
                stats[i].add(p)
                p.clear()
        if end_t is None and all(ended):
            end_t = time.monotonic() + LINGER_S
    for i, p in enumerate(pending):
        stats[i].add(p)
    flows = []
    for i, qp in enumerate(qps):
        r = stats[i].result()
        r.update(v.qp_info(qp, ud))
        r["errors"] = sorted(errors[i].values(), key=lambda x: x["t"])
        r["ended"] = ended[i]
        flows.append(r)
    return {"role": "recv", "qps": a.qps, "port": a.port, "poll_s": POLL_S, "ud": ud,
            "elapsed_s": time.monotonic() - t_begin, "flows": flows}


# ---------------------------------------------------------------------- send
def _connect(v, a, i):
    ce = v.ce
    ch = v.CMEventChannel()
    cmid = v.CMID(creator=ch, port_space=ce.RDMA_PS_TCP)
    ai = v.AddrInfo(src=a.src, dst=a.dst, dst_service=str(a.port), port_space=ce.RDMA_PS_TCP)
    cmid.resolve_addr(ai)
    v.event(ch, ce.RDMA_CM_EVENT_ADDR_RESOLVED, f"QP {i} address").ack_cm_event()
    cmid.resolve_route()
    v.event(ch, ce.RDMA_CM_EVENT_ROUTE_RESOLVED, f"QP {i} route").ack_cm_event()
    return ch, cmid


def cmd_send(a):
    v = _Verbs()
    ce, e = v.ce, v.e
    stop = [False]
    _stop_on((signal.SIGTERM, signal.SIGINT), stop)
    conns, qps, mrs, cqs = [], [], [], []
    ah, rqpns = None, []
    if a.ud:
        ctx, pd = v.ud_resources(a.device)
        ah = v.ud_ah(pd, a.remote_gid, a.gid_index)
        rqpns = [int(x) for x in a.remote_qpns.split(",")]
        if len(rqpns) != a.qps:
            raise Usage(f"--remote-qpns gives {len(rqpns)} QPs, --qps {a.qps}")
        for _ in range(a.qps):
            cq = v.CQ(ctx, a.sq_depth + 16, None, None, 0)
            qps.append(v.ud_qp(pd, cq, a.sq_depth, 8))
            mrs.append(v.MR(pd, a.sq_depth * MSG, e.IBV_ACCESS_LOCAL_WRITE))
            cqs.append(cq)
    for i in range(0 if a.ud else a.qps):
        ch, cmid = _connect(v, a, i)
        cq = v.CQ(cmid.context, a.sq_depth + 16, None, None, 0)
        qp = v.qp(cmid, cq, a.sq_depth, 8)
        mr = v.MR(cmid.pd, a.sq_depth * MSG, e.IBV_ACCESS_LOCAL_WRITE)
        cmid.connect(v.ConnParam(qp_num=qp.qp_num, retry=a.retry_cnt, rnr_retry=7))
        v.event(ch, ce.RDMA_CM_EVENT_CONNECT_RESPONSE, f"QP {i} connect").ack_cm_event()
        v.to_rts(cmid, qp, a.retry_cnt, a.timeout)
        cmid.establish()
        conns.append((ch, cmid))
        qps.append(qp)
        mrs.append(mr)
        cqs.append(cq)
    n = a.qps
    sent = [0] * n
    done = [0] * n
    errors = [{} for _ in range(n)]
    dead = [False] * n
    sq_full = [0] * n
    post_errors = [0] * n
    interval = 1.0 / a.rate
    if a.ready_file:
        with open(a.ready_file, "w") as f:
            f.write(str(os.getpid()))
    lag_ports, lag_error = [], None
    query_lag_port = None
    if a.lag_port_every:
        try:
            from pyverbs.providers.mlx5.mlx5dv import Mlx5QP
            query_lag_port = Mlx5QP.query_lag_port
        except ImportError as ex:
            lag_error = f"pyverbs has no mlx5dv query_lag_port: {ex}"

    def sample_lag_ports():
        nonlocal query_lag_port, lag_error
        t = time.time()
        try:
            got = [query_lag_port(qp) for qp in qps]
        except Exception as ex:          # noqa: BLE001 - EOPNOTSUPP: reported once
            lag_error, query_lag_port = str(ex), None
            return
        lag_ports.append({"t": t, "desired": [int(x[0]) for x in got],
                          "active": [int(x[1]) for x in got]})

    t0 = time.monotonic()
    t_wall0 = time.time()
    end = t0 + a.duration
    next_lag = t0
    nxt = [t0 + i * interval / n for i in range(n)]    # staggered over one interval

    def reap():
        for i, cq in enumerate(cqs):
            while True:
                k, wcs = cq.poll(CQ_BATCH)
                if k <= 0:
                    break
                t = time.time()
                for wc in wcs:
                    if wc.status != 0:
                        wc_error(errors[i], wc, t)
                        dead[i] = True
                    done[i] += 1

    def post(i, imm, payload=None):
        slot = sent[i] % a.sq_depth
        if payload is not None:
            mrs[i].write(payload, len(payload), slot * MSG)
        wr = v.SendWR(wr_id=sent[i], opcode=e.IBV_WR_SEND_WITH_IMM, num_sge=1,
                      sg=[v.SGE(mrs[i].buf + slot * MSG, MSG, mrs[i].lkey)],
                      send_flags=e.IBV_SEND_SIGNALED)
        wr.imm_data = imm
        if ah is not None:
            wr.set_wr_ud(ah, rqpns[i], UD_QKEY)
        qps[i].post_send(wr)

    while not stop[0]:
        now = time.monotonic()
        if now >= end:
            break
        reap()
        if query_lag_port is not None and now >= next_lag:
            sample_lag_ports()
            next_lag = now + a.lag_port_every
        for i in range(n):
            if dead[i] or nxt[i] > now:
                continue
            if sent[i] - done[i] >= a.sq_depth - 1:
                sq_full[i] += 1
                continue
            try:
                post(i, sent[i] & 0x7FFFFFFF)
            except Exception:            # noqa: BLE001 - QP left RTS
                post_errors[i] += 1
                dead[i] = True
                continue
            sent[i] += 1
            nxt[i] = max(nxt[i] + interval, now - 0.005)   # never burst more than 5 ms
        wake = min([x for i, x in enumerate(nxt) if not dead[i]] or [end])
        time.sleep(max(0.0, min(POLL_S, wake - time.monotonic())))
    elapsed = time.monotonic() - t0
    drain_end = time.monotonic() + min(DRAIN_S, survival_bound_s(a.retry_cnt, a.timeout) + 1.0)
    while any(sent[i] > done[i] and not dead[i] for i in range(n)) and time.monotonic() < drain_end:
        reap()
        time.sleep(POLL_S)
    for i in range(n):
        for copy in range(UD_END_COPIES if a.ud else 1):
            if dead[i]:
                break
            if copy:
                time.sleep(UD_END_GAP_S)
            try:
                post(i, END_IMM, struct.pack("!Q", sent[i]))
                sent_end = True
            except Exception:            # noqa: BLE001
                sent_end = False
            if sent_end:
                lim = time.monotonic() + 2.0
                while done[i] < sent[i] + 1 + copy and not dead[i] and time.monotonic() < lim:
                    reap()
                    time.sleep(POLL_S)
    reap()
    flows = []
    for i, qp in enumerate(qps):
        f = {"flow": i, "sent": sent[i], "completed": min(done[i], sent[i]),
             "achieved_pps": sent[i] / elapsed if elapsed > 0 else 0.0,
             "sq_full": sq_full[i], "post_errors": post_errors[i],
             "errors": sorted(errors[i].values(), key=lambda x: x["t"])}
        f.update(v.qp_info(qp, a.ud))
        flows.append(f)
    for _ch, cmid in conns:
        try:
            cmid.disconnect()
        except Exception:                # noqa: BLE001
            pass
    return {"role": "send", "qps": n, "rate_pps": a.rate, "t_start": t_wall0, "ud": a.ud,
            "elapsed_s": elapsed, "retry_cnt": a.retry_cnt, "timeout": a.timeout,
            "survival_bound_s": survival_bound_s(a.retry_cnt, a.timeout), "flows": flows,
            "lag_ports": lag_ports, "lag_port_error": lag_error}


# ---------------------------------------------------------------------- main
def _parser():
    p = argparse.ArgumentParser(prog="rdma_agent", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("recv")
    r.add_argument("--bind", required=True)
    r.add_argument("--port", type=int, default=18515)
    r.add_argument("--qps", type=int, default=1)
    r.add_argument("--rate", type=float, default=0.0, help="declared per-QP rate (for the result)")
    r.add_argument("--duration", type=float, required=True)
    r.add_argument("--depth", type=int, default=512)
    r.add_argument("--bin-ms", type=float, default=10.0)
    r.add_argument("--top-gaps", type=int, default=TOP_GAPS)
    r.add_argument("--ready-file")
    r.add_argument("--ud", action="store_true", help="UD QPs, no rdma_cm (needs --device)")
    r.add_argument("--device")
    r.add_argument("--gid-index", type=int, default=0)
    s = sub.add_parser("send")
    s.add_argument("--dst", required=True)
    s.add_argument("--src")
    s.add_argument("--port", type=int, default=18515)
    s.add_argument("--qps", type=int, default=1)
    s.add_argument("--rate", type=float, required=True)
    s.add_argument("--duration", type=float, required=True)
    s.add_argument("--retry-cnt", type=int, default=7)
    s.add_argument("--timeout", type=int, default=14)
    s.add_argument("--sq-depth", type=int, default=1024)
    s.add_argument("--lag-port-every", type=float, default=0.0,
                   help="mlx5 only: sample each QP's LAG port every this many s (0: off)")
    s.add_argument("--ready-file")
    s.add_argument("--ud", action="store_true", help="UD QPs, no rdma_cm")
    s.add_argument("--device")
    s.add_argument("--gid-index", type=int, default=0)
    s.add_argument("--remote-qpns", help="UD: the receiver's QP numbers, comma-separated")
    s.add_argument("--remote-gid", help="UD: the receiver's GID")
    return p


def _validate(a):
    if a.ud:
        if not a.device:
            raise Usage("--ud needs --device (UD runs without rdma_cm)")
        if not 0 <= a.gid_index <= 255:
            raise Usage(f"--gid-index must be 0..255, not {a.gid_index}")
        if a.cmd == "send" and not (a.remote_qpns and a.remote_gid):
            raise Usage("send --ud needs --remote-qpns and --remote-gid")
    if not 1 <= a.qps <= 64:
        raise Usage(f"--qps must be 1..64, not {a.qps}")
    if not 0 < a.duration <= 3600:
        raise Usage(f"--duration must be in (0, 3600] s, not {a.duration}")
    if not 1 <= a.port <= 65535:
        raise Usage(f"--port must be 1..65535, not {a.port}")
    if a.cmd == "send":
        if not 0 < a.rate <= 100000:
            raise Usage(f"--rate must be in (0, 100000] msg/s, not {a.rate}")
        if not 0 <= a.retry_cnt <= 7:
            raise Usage(f"--retry-cnt must be 0..7, not {a.retry_cnt}")
        if not 1 <= a.timeout <= 31:
            raise Usage(f"--timeout must be 1..31 (0 would wait forever), not {a.timeout}")
        if a.lag_port_every and not 0.01 <= a.lag_port_every <= 10:
            raise Usage(f"--lag-port-every must be 0 or 0.01..10 s, not {a.lag_port_every}")
        if not 16 <= a.sq_depth <= 8192:
            raise Usage(f"--sq-depth must be 16..8192, not {a.sq_depth}")
    elif not 8 <= a.depth <= 8192:
        raise Usage(f"--depth must be 8..8192, not {a.depth}")


def main(argv=None):
    a = _parser().parse_args(argv)
    try:
        _validate(a)
    except Usage as e:
        print(f"rdma_agent: {e}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGALRM, _on_alarm)
    # a hang (a verbs or rdma_cm call that never returns) ends with its stack on
    # stderr, before the controller's hard kill
    faulthandler.dump_traceback_later(a.duration + HANG_S, exit=True)
    result = (cmd_recv if a.cmd == "recv" else cmd_send)(a)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
