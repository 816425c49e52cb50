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

The flap is timed with ``--at`` from the instant the probe's sender is about to
send (:meth:`Probe.start`), not from the flap process's own start (Python
start-up on a loaded host takes ~0.3 s). A trial whose down or up instant falls
outside the sender's traffic window measured nothing: it is reported as
invalid (``valid`` False, no figures), retried once, and never counted as a
measurement.
"""

import argparse
import json
import sys
from dataclasses import asdict, dataclass

from ..journal import Undo, UndoRecord, node_undo
from ..names import q, qif
from . import analysis
from .probe import Probe, ProbeError, ensure_agent, sample_clock

NATIVE_ALLOWED_MS, RACK_ALLOWED_MS = 2.0, 10.0
STALL_NEAR_S = 0.05
EDGE_PACKETS = 10          # packets the sender must send before the down and after the up


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
    valid: bool = True         # False: the outage missed the traffic (no figures)

    def to_dict(self):
        return asdict(self)


@dataclass
class RackPath:
    """A plain (non-bonded) path of the rack: ``ifname`` on ``sender`` is flapped;
    ``dst_addr`` is the receiver's address on that path. With ``rack`` and
    ``cable`` (a virtual rack), the outage is a QMP cable pull instead.
    ``defer``: the session's undo stack (laghil.undo.Defer), where each outage
    registers, journaled, how to end it before it starts."""
    sender: object
    receiver: object
    dst_addr: str
    ifname: str
    rack: object = None
    cable: object = None
    defer: object = None


CAL_NET = ("192.168.211.1/30", "192.168.211.2/30")   # the calibrated path's addresses


def allowed_error_ms(rate_pps, native=True):
    """max(2/R, 2 ms) natively, max(2/R, 10 ms) on a rack."""
    return max(2e3 / rate_pps, NATIVE_ALLOWED_MS if native else RACK_ALLOWED_MS)


def _stalls_near(res, instants):
    near = [e["late_ms"] for e in res.sender_stalls(instants, STALL_NEAR_S)]
    if not near:
        return ""
    return f"{len(near)} sender stall(s) near the flap, max {max(near):.1f} ms"


def outside_traffic(ev, sender, rate_pps):
    """Why the flap event ``ev`` (down/up instants, sender clock) did not fall
    inside the probe sender's traffic window (its ``start``/``end``, same
    clock) with at least EDGE_PACKETS packets before the down and after the
    up; "" when it did."""
    start, end = sender.get("start"), sender.get("end")
    if start is None or end is None:
        return "the sender reported no traffic window"
    edge = EDGE_PACKETS / rate_pps
    if ev["down"] < start + edge:
        return (f"link went down {(start - ev['down']) * 1e3:+.1f} ms before the sender's "
                f"first packet (traffic {start:.3f}..{end:.3f})")
    if ev["up"] > end - edge:
        return (f"link came up {(ev['up'] - end) * 1e3:+.1f} ms after the sender's last "
                f"packet (down {(ev['down'] - end) * 1e3:+.1f} ms; traffic {end - start:.3f} s)")
    return ""


def _trial_once(sender, receiver, dst_addr, ifname, outage_ms, rate_pps, flows, native, lead_s,
                tail_s, rep, base_port, realtime):
    """One flap under probe traffic: (CalRow, why invalid or "")."""
    # --at is on the sender's clock: the controller's natively, else offset by SSH round trips
    offset = 0.0 if native else sample_clock(sender).offset_s
    probe = Probe(sender, receiver, dst_addr, flows=flows, rate_pps=rate_pps,
                  duration_s=lead_s + outage_ms / 1e3 + tail_s, bin_ms=1, base_port=base_port,
                  realtime=realtime)
    agent = ensure_agent(sender)
    with probe:
        at = probe.start() + offset + lead_s
        flap = (f"{q(probe.python)} {q(agent)} flap --ifname {qif(ifname)} "
                f"--at {at:.6f} --down-ms {outage_ms:g}" + (" --rt" if realtime else ""))
        r = sender.run(flap, timeout=lead_s + outage_ms / 1e3 + 30, check=False)
        if r.rc != 0:
            probe.stop()
            raise ProbeError(f"{sender.name}: flap of {ifname} failed: {r.stderr.strip()}")
        ev = json.loads(r.stdout)["events"][0]
        res = probe.wait()
    allowed = allowed_error_ms(rate_pps, native)
    why = outside_traffic(ev, res.sender, rate_pps)
    if why:
        return CalRow(ev["down_ms"], None, None, None, None, allowed, False, rep,
                      float(rate_pps), ev["uncertainty_ms"], f"invalid trial: {why}",
                      valid=False), why
    # Natively the receiver shares the injector's clock: look around the down
    # instant only. On a rack, clocks differ: the trial holds a single fault.
    fault_t = ev["down"] if native else None
    lag = analysis.lag_outage(res.flows, rate_pps, fault_t, (0.2, 10.0) if native else None)
    gap, loss = lag.t_gap_max_ms, lag.t_loss_max_ms
    err = None if gap is None else gap - ev["down_ms"]
    lerr = loss - ev["down_ms"]
    ok = err is not None and abs(err) <= allowed and abs(lerr) <= allowed
    notes = [_stalls_near(res, (ev["down"], ev["up"]))]
    notes += [n for n in res.notes if not n.startswith("sender stalled")]   # stalls: near only
    notes = [n for n in notes if n]
    return CalRow(ev["down_ms"], gap, loss, err, lerr, allowed, ok, rep, float(rate_pps),
                  ev["uncertainty_ms"], "; ".join(notes)), ""


def trial(sender, receiver, dst_addr, ifname, outage_ms, rate_pps=10000, flows=1,
          native=True, lead_s=0.3, tail_s=1.0, rep=0, base_port=47100, realtime=True):
    """Inject one outage of ``outage_ms`` on ``ifname`` of ``sender`` while the
    probe runs; return a :class:`CalRow`. The down is at ``lead_s`` after the
    sender's first packet (``flap --at``); ``tail_s`` of traffic follows the
    planned up, room for a late injector. A trial whose outage missed the
    traffic window is retried once; if the retry misses too, the row is
    invalid (``valid`` False, ``ok`` False, no figures, the reason in
    ``note``). ``realtime``: sender and injector run SCHED_FIFO (best effort)
    so that other load does not stall them."""
    args = (sender, receiver, dst_addr, ifname, outage_ms, rate_pps, flows, native, lead_s,
            tail_s, rep, base_port, realtime)
    row, why = _trial_once(*args)
    if why:
        row, why2 = _trial_once(*args)
        row.note = "; ".join(n for n in (f"retried: first trial invalid ({why})", row.note) if n)
    return row


def rack_trial(rack, cable, sender, receiver, dst_addr, outage_ms, rate_pps=2000, flows=1,
               lead_s=1.0, tail_s=1.0, rep=0, base_port=47100, defer=None):
    """One outage of ``outage_ms`` on a virtual rack cable: QMP ``set_link`` down
    then up on the RECEIVER's NIC, timed on the controller's clock (the guests'
    clocks drift under emulation and starting a process in a guest takes ~0.1 s).
    QEMU drops every frame sent to a NIC whose link is down, while the sender
    keeps carrier and keeps sending: a clean drop of known length, as a drop rule
    would give (taking the sender's carrier instead makes its kernel queue the
    packets and release them as a burst). The receiver's clock offset (from SSH
    round trips) places the fault on the receiver's timeline. ``defer``: the
    carrier's return is registered there (journaled) before the pull, and is
    what ends the outage."""
    import time
    clock = sample_clock(receiver)
    probe = Probe(sender, receiver, dst_addr, flows=flows, rate_pps=rate_pps,
                  duration_s=lead_s + outage_ms / 1e3 + tail_s, bin_ms=1, base_port=base_port,
                  realtime=True)
    with probe:
        t0 = probe.start()
        time.sleep(max(0.0, t0 + lead_s - time.time()))
        end = cable.b if cable.b.node == receiver.name else cable.a
        up = Undo(lambda: rack.set_port(end.node, end.port, True),
                  UndoRecord("port", end.node, (end.port,)), f"{end.node}:{end.port} carrier up")
        handle = defer(up) if defer is not None else None
        t_pre = time.time()
        down_first = rack.set_port(end.node, end.port, False)
        time.sleep(max(0.0, down_first + outage_ms / 1e3 - time.time()))
        t_pre_up = time.time()
        up_last = handle.run() if handle is not None else up()
        res = probe.wait()
    injected = (up_last - down_first) * 1e3
    uncertainty = max(down_first - t_pre, up_last - t_pre_up) * 1e3   # QMP round trips
    lag = analysis.lag_outage(res.flows, rate_pps, down_first + clock.offset_s, (0.2, 10.0))
    allowed = allowed_error_ms(rate_pps, native=False)
    gap, loss = lag.t_gap_max_ms, lag.t_loss_max_ms
    err = None if gap is None else gap - injected
    lerr = loss - injected
    ok = err is not None and abs(err) <= allowed and abs(lerr) <= allowed
    notes = [_stalls_near(res, (down_first + clock.offset_s, up_last + clock.offset_s))]
    if res.sender.get("send_errors"):
        notes.append(f"send errors {res.sender['send_errors']}")
    notes += [n for n in res.notes if not n.startswith("sender stalled")]
    return CalRow(injected, gap, loss, err, lerr, allowed, ok, rep, float(rate_pps),
                  uncertainty, "; ".join(n for n in notes if n))


def calibrate(outages_ms=(50, 200, 1000), where="native", rate_pps=10000, reps=3, flows=1,
              progress=None):
    """Rows for each outage length x ``reps``. ``where``: "native" (two local
    namespaces, needs root) or a :class:`RackPath`. ``progress(row)`` is called
    after each trial."""
    rows = []

    def run_all(sender, receiver, dst, ifname, native, defer=None):
        for rep in range(reps):
            for ms in outages_ms:
                handle = None if defer is None else defer(
                    node_undo(sender, "link_set", check=True, name=ifname, up=True))
                row = trial(sender, receiver, dst, ifname, ms, rate_pps, flows, native, rep=rep)
                if handle is not None:
                    handle.run()            # the agent brought it up: this is idempotent
                rows.append(row)
                if progress:
                    progress(row)

    if where == "native":
        from .localns import NsPair
        with NsPair(noarp=True) as ns:
            run_all(ns.nodes["a"], ns.nodes["b"], ns.addr["b"], ns.ifname["a"], True)
    elif isinstance(where, RackPath) and where.rack is not None:
        for rep in range(reps):
            for ms in outages_ms:
                row = rack_trial(where.rack, where.cable, where.sender, where.receiver,
                                 where.dst_addr, ms, rate_pps, flows, rep=rep, defer=where.defer)
                rows.append(row)
                if progress:
                    progress(row)
    elif isinstance(where, RackPath):
        run_all(where.sender, where.receiver, where.dst_addr, where.ifname, False, where.defer)
    else:
        raise ValueError(f"where must be 'native' or a RackPath, not {where!r}")
    return rows


def _f(v, w=8, p=2):
    return f"{'n/a':>{w}}" if v is None else f"{v:{w}.{p}f}"


def format_table(rows):
    """A fixed-width text table of calibration rows, with a summary line.
    Invalid trials (the outage missed the traffic) show no figures and count
    in no error statistic."""
    head = (f"{'injected':>9} {'T_gap':>8} {'T_loss':>8} {'err gap':>8} {'err loss':>8} "
            f"{'allowed':>8} {'rate':>7} {'result':>7}  note")
    lines = [head + "  (ms; rate pkt/s per flow)", "-" * len(head)]
    for r in rows:
        verdict = "invalid" if not r.valid else "pass" if r.ok else "FAIL"
        lines.append(f"{r.injected_ms:9.2f} {_f(r.t_gap_ms)} {_f(r.t_loss_ms)} {_f(r.error_ms)} "
                     f"{_f(r.loss_error_ms)} {_f(r.allowed_ms)} {r.rate_pps:7.0f} "
                     f"{verdict:>7}  {r.note}")
    errs = [abs(r.error_ms) for r in rows if r.valid and r.error_ms is not None]
    if rows:
        invalid = sum(not r.valid for r in rows)
        lines.append(f"{sum(r.ok for r in rows)}/{len(rows)} within the allowed error; "
                     f"|T_gap error| max {max(errs, default=float('nan')):.2f} ms, "
                     f"median {analysis.percentile(errs, 50) if errs else float('nan'):.2f} ms"
                     + (f"; {invalid} invalid trial(s), not measured" if invalid else ""))
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
    ap.add_argument("--lab", default=None,
                    help="calibrate on a lab instead: the first cable joining two hosts, "
                         "addressed for the run (e.g. --lab virtual; rate default 2000)")
    a = ap.parse_args(argv)
    try:
        outages = tuple(float(x) for x in a.outages.split(",") if x.strip())
    except ValueError:
        ap.error(f"--outages {a.outages!r}: comma-separated numbers expected")
    if not 1 <= a.reps <= 100 or not 10 <= a.rate <= 200000 or not outages \
            or any(not 1 <= o <= 60000 for o in outages):
        ap.error("--reps 1..100, --rate 10..200000, --outages 1..60000 ms")
    if a.lab:
        return _calibrate_lab(a, outages)
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



def _calibrate_lab(a, outages):
    """Calibrate on the first host-to-host cable of a lab (non-bonded path), in
    a lab session (laghil.session: lock, lease, journal replayed first); every
    change it makes (addresses, neighbours, the outages) is journaled before it
    is made, so a calibrate killed in the middle is undone by the next session."""
    from ..lab import load_lab
    from ..names import qif
    from ..session import held_lab
    lab = load_lab(a.lab)
    rate = a.rate if a.rate != 10000 else 2000
    cable = next((c for c in lab.cables if c.a.node in lab.hosts and c.b.node in lab.hosts), None)
    if cable is None:
        print(f"laghil measure calibrate: lab {lab.name} has no host-to-host cable", file=sys.stderr)
        return 2
    with held_lab(lab) as session:
        rt, defer = session.rt, session.defer
        snd, rcv = rt.node(cable.a.node), rt.node(cable.b.node)
        for n, port, addr in ((snd, cable.a.port, CAL_NET[0]), (rcv, cable.b.port, CAL_NET[1])):
            defer(node_undo(n, "addr_del", name=port, addr=addr))
            n.run(f"ip addr add {addr} dev {qif(port)}")
        # Permanent neighbours: a carrier loss flushes learned ARP entries and the
        # first ARP after the restore costs up to 1 s: that is ARP, not the probe.
        for n, port, peer, peer_end in ((snd, cable.a.port, CAL_NET[1], cable.b),
                                        (rcv, cable.b.port, CAL_NET[0], cable.a)):
            mac = lab.node(peer_end.node).ports[peer_end.port].mac
            peer = peer.split("/")[0]
            defer(node_undo(n, "neigh_del", name=port, addr=peer))
            n.run(f"ip neigh replace {peer} lladdr {mac} dev {qif(port)} nud permanent")
        dst = CAL_NET[1].split("/")[0]
        snd.run(f"ping -c 3 -i 0.2 -W 2 {dst}")
        path = RackPath(snd, rcv, dst, cable.a.port, rt.rack,
                        cable if rt.rack is not None else None, defer=defer)
        rows = calibrate(outages, path, rate, a.reps, a.flows)
        on_rack = rt.rack is not None
    how = (f"QMP link down/up on {cable.b.node}:{cable.b.port}, timed on the controller's clock"
           if on_rack else f"link flapped on {cable.a.node}, timed on its clock")
    print(f"lab {lab.name}: {cable.name} ({cable.a.node}:{cable.a.port} -> "
          f"{cable.b.node}:{cable.b.port}), {how}")
    print(format_table(rows))
    if a.json:
        print(json.dumps([r.to_dict() for r in rows], indent=1))
    return 0 if all(r.ok for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main_calibrate())
