"""Probe traffic between two nodes: the controller side of the probe agent.

(The probe's result model and its lifecycle on two nodes, start,
collect, stop, share one set of run files.)

:class:`Probe` uploads ``agent/probe_agent.py`` (once per node session, into
the session's private folder, SshSession.workdir, hash-checked at every use), starts the receiver in the background on the
receiver node, waits for its ready file, starts the sender in the background
on the sender node, and on :meth:`Probe.wait` collects both JSON results into
a :class:`ProbeResult`. Every agent runs in its own session (``setsid``) under
coreutils ``timeout`` on top of its own ``--duration``: it stops by itself even
if the controller dies. :meth:`Probe.stop` signals only the processes this
probe started (checking that each pid still runs this probe's command line).

Nodes are :class:`laghil.node.Node` objects or anything with the same
``name``, ``run(cmd, timeout=, check=)`` and ``session.upload(data, path, mode)``
(:class:`laghil.measure.localns.LocalNsNode` runs them locally).
"""

import json
import secrets
import time
from dataclasses import dataclass, field

from ..errors import LaghilError
from ..names import q
from ..journal import Undo, node_record
from . import analysis
from .agents import ProbeError, ensure_agent
from .model import Measurement, Timeline

PYTHON = "/usr/bin/python3"
RECV_SLACK_S = 3.0       # receiver runs this much longer than the sender
SENDER_START_S = 20.0    # allowance for the sender's start after the receiver's
HARD_KILL_S = 30.0       # `timeout` bound above the agent's own duration (result reduction is slow under emulation)
POLL_S = 0.05


def _background(cmd, hard_s, out, err, rc, pidfile):
    """Shell text: run ``cmd`` under ``timeout`` in the background of a new
    session's shell, output to files, its pid to ``pidfile``, its exit status to
    ``rc``; prints the pid of that shell."""
    inner = (f"T=; command -v timeout >/dev/null 2>&1 && T='timeout -k 2 {hard_s:.0f}'; "
             f"$T {cmd} >{q(out)} 2>{q(err)} & echo $! >{q(pidfile)}; wait $!; "
             f"echo $? >{q(rc)}")
    return (f"S=; command -v setsid >/dev/null 2>&1 && S=setsid; "
            f"$S sh -c {q(inner)} </dev/null >/dev/null 2>&1 & echo $!")


def _wait_file(path, limit_s):
    """Shell text: wait until ``path`` exists (bounded), exit 1 if it never did."""
    n = max(1, int(limit_s / POLL_S))
    return (f"i=0; while [ ! -e {q(path)} ] && [ $i -lt {n} ]; do sleep {POLL_S}; "
            f"i=$((i+1)); done; [ -e {q(path)} ]")


@dataclass
class ProbeResult:
    """Both agents' results, merged per flow.

    ``flows``: the receiver's per-flow summaries (flow order), with ``tx_count``
    taken from the sender (authoritative) and ``achieved_pps``/``send_errors``
    added; a flow the receiver never saw appears with ``rx_count`` 0.
    """
    rate_pps: float
    flows: list
    sender: dict
    receiver: dict
    bin_ms: float
    t_start: float = 0.0              # controller clock, when the sender was launched
    notes: list = field(default_factory=list)

    @property
    def achieved_pps(self):
        """Lowest per-flow rate the sender achieved (pkt/s)."""
        return min((f.get("achieved_pps") or 0.0) for f in self.flows) if self.flows else 0.0

    @property
    def achieved_known_pps(self):
        """Lowest per-flow achieved rate (pkt/s), None unless the sender
        reported it for every flow."""
        vals = [f.get("achieved_pps") for f in self.flows]
        return None if not vals or None in vals else float(min(vals))

    @property
    def rate_note(self):
        """A note when the sender achieved under 95% of the target rate, else ""."""
        a = self.achieved_known_pps
        if a is None or a >= 0.95 * self.rate_pps:
            return ""
        res = f": resolution 1/{a:.0f} = {1e3 / a:.3g} ms" if a > 0 else ""
        return f"sender achieved only {a:.0f} of {self.rate_pps:.0f} pkt/s per flow{res}"

    @property
    def lossless(self):
        return all(f["rx_count"] == f["tx_count"] for f in self.flows)

    def sender_stalls(self, near=(), within_s=0.05):
        """The sender's reported stalls [{"t", "late_ms"}] (lateness above 1 ms,
        the worst 16), only those within ``within_s`` of an instant in ``near``
        if given: a stall at a fault or restore widens the gap by its length."""
        ev = self.sender.get("late_events", [])
        if near:
            ev = [e for e in ev if any(abs(e["t"] - t) <= within_s for t in near)]
        return ev

    # which gaps are an outage (analysis.flow_outage): for datagrams, those across
    # which packets are missing; a gap with none missing is a delivery stall
    GAPS = "loss"

    def outage(self, fault_t=None, window=None):
        """:func:`analysis.lag_outage` of the flows (``fault_t`` on the receiver clock)."""
        return analysis.lag_outage(self.flows, self.rate_pps, fault_t, window,
                                   self.receiver.get("top_gaps", 16), self.GAPS)

    def reversion(self, restore_t, window_s=5.0):
        """:class:`analysis.Reversion` of the flows at ``restore_t`` (receiver clock)."""
        return analysis.reversion(self.flows, restore_t, self.rate_pps, window_s, self.GAPS)

    def measurements(self, fault_t=None, window=None, prefix=""):
        """The achieved rate (min over flows), T_gap / T_loss (max and median
        over flows), out-of-order and duplicate counts, each naming its method
        and resolution. The resolution of T_gap / T_loss is 1/achieved rate
        where the sender reported it (else 1/target), with a note when the
        sender achieved under 95% of the target."""
        lag = self.outage(fault_t, window)
        n, res = lag.n_flows, lag.resolution_ms
        achieved = self.achieved_known_pps
        if achieved:
            res = 1e3 / achieved
        notes = list(self.notes)
        if self.rate_note and self.rate_note not in notes:
            notes.append(self.rate_note)
        note = "; ".join(notes)
        where = ""
        if fault_t is not None:
            w = analysis.DEFAULT_FAULT_WINDOW if window is None else window
            where = f", gaps overlapping the fault +-window {w!r} s"
        elapsed = self.sender.get("elapsed_s")
        gap_m = lag.flows[0].method["t_gap"]
        stall = [] if lag.stall_max_ms is None else [
            Measurement(f"{prefix}delivery stall max", lag.stall_max_ms, "ms",
                        f"{analysis.STALL_METHOD}, max over {n} flows{where}; not an outage, "
                        "never in T_gap", resolution=res, note=note)]
        return [
            Measurement(f"{prefix}achieved rate", achieved, "pkt/s",
                        f"packets sent / sending time per flow, min over {n} flows "
                        f"(target {self.rate_pps:.0f} pkt/s)",
                        resolution=1.0 / elapsed if elapsed else None, note=self.rate_note),
            Measurement(f"{prefix}T_gap max", lag.t_gap_max_ms, "ms",
                        f"{gap_m}, max over {n} flows{where}", resolution=res, note=note),
            Measurement(f"{prefix}T_gap median", lag.t_gap_median_ms, "ms",
                        f"{gap_m}, median over {n} flows{where}", resolution=res, note=note),
            *stall,
            Measurement(f"{prefix}T_loss max", lag.t_loss_max_ms, "ms",
                        f"loss-derived outage (Tx-Rx)/R per flow, max over {n} flows",
                        resolution=res, note=note),
            Measurement(f"{prefix}T_loss median", lag.t_loss_median_ms, "ms",
                        f"loss-derived outage (Tx-Rx)/R per flow, median over {n} flows",
                        resolution=res, note=note),
            Measurement(f"{prefix}out-of-order", lag.out_of_order, "pkt",
                        f"packets arriving after a higher seq, sum over {n} flows", resolution=1.0),
            Measurement(f"{prefix}duplicates", lag.duplicates, "pkt",
                        f"repeated seqs, sum over {n} flows", resolution=1.0),
        ]

    def timeline(self, title, events=(), per_flow=True):
        """Receive rate per flow and aggregate (pkt/s per bin) with ``events``."""
        return Timeline(title, analysis.rate_series(self.flows, per_flow=per_flow),
                        list(events))

    def to_dict(self):
        return {"rate_pps": self.rate_pps, "bin_ms": self.bin_ms, "t_start": self.t_start,
                "achieved_pps": self.achieved_pps, "notes": self.notes, "flows": self.flows,
                "sender": {k: v for k, v in self.sender.items() if k != "flows"},
                "receiver": {k: v for k, v in self.receiver.items() if k != "flows"}}


def merge_flow(rx_flow, sent, flow, dst_port, rate_pps):
    """One flow of a result: the receiver's summary ``rx_flow`` (an empty one if
    it never saw the flow) with the sender's ``sent`` report. The sender's count
    is authoritative; a tail the receiver never learnt of (its END markers lost
    too) is one more loss burst at the end."""
    f = dict(rx_flow or {
        "flow": flow, "dst_port": dst_port, "src": None, "rate_pps": rate_pps,
        "tx_count": 0, "tx_source": "none", "rx_count": 0, "rx_packets": 0, "lost": 0,
        "first": None, "last": None, "out_of_order": 0, "duplicates": 0, "gaps": [],
        "loss_bursts": [], "loss_burst_count": 0, "bins": None})
    if "sent" in sent:
        extra = max(0, sent["sent"] - f["tx_count"])
        if extra:
            f["loss_bursts"] = list(f["loss_bursts"]) + [[f["tx_count"], extra]]
            f["loss_burst_count"] += 1
        f["tx_count"], f["tx_source"] = sent["sent"], "sender"
        f["lost"] = max(0, f["tx_count"] - f["rx_count"])
    f["achieved_pps"] = sent.get("achieved_pps")
    f["send_errors"] = sent.get("send_errors", {})
    return f


def merge(sender, receiver, flows, rate_pps, dst_port_base):
    """ProbeResult.flows from the two agents' JSON."""
    by_port = {f["dst_port"]: f for f in receiver.get("flows", [])}
    sent = {f["flow"]: f for f in sender.get("flows", [])}
    return [merge_flow(by_port.get(dst_port_base + i), sent.get(i, {}), i, dst_port_base + i,
                       rate_pps) for i in range(flows)]


class Probe:
    """Sequence-numbered UDP flows from ``sender_node`` to ``dst_addr`` on
    ``receiver_node``: ``flows`` flows at ``rate_pps`` each for ``duration_s``,
    destination ports ``base_port``.. and source ports ``src_base_port``..
    (default base_port + 500), receive counts in ``bin_ms`` bins. Both agents
    ask for nice value ``nice`` (best effort) so that other load on the node
    stalls the sender less (a sender stall looks like an outage);
    ``realtime=True`` runs the sender SCHED_FIFO (best effort), which removes
    time-slice stalls on a busy node: use it at moderate rates only, as a
    sender at its CPU limit would then hold a core.

    ``start()`` then ``wait()`` (inject the fault in between), or ``run()``.
    Use as a context manager to always ``stop()``.
    """

    def __init__(self, sender_node, receiver_node, dst_addr, flows=4, rate_pps=2000,
                 duration_s=10, base_port=47000, bin_ms=10, src_base_port=None, size=64,
                 bind_addr=None, python=PYTHON, top_gaps=16, start_at=None,
                 ready_timeout_s=10.0, nice=-10, realtime=False):
        if not 1 <= flows <= 256 or rate_pps <= 0 or duration_s <= 0:
            raise ValueError(f"bad probe parameters: flows={flows} rate={rate_pps} "
                             f"duration={duration_s}")
        self.sender, self.receiver = sender_node, receiver_node
        self.dst_addr, self.flows, self.rate_pps = dst_addr, flows, float(rate_pps)
        self.duration_s, self.base_port, self.bin_ms = float(duration_s), base_port, bin_ms
        self.src_base_port = base_port + 500 if src_base_port is None else src_base_port
        self.size, self.python, self.top_gaps = size, python, top_gaps
        self.bind_addr = bind_addr or ("::" if ":" in dst_addr else "0.0.0.0")
        self.start_at, self.ready_timeout_s, self.nice = start_at, ready_timeout_s, nice
        self.realtime = realtime
        self.run_id = None
        self._rid = secrets.token_hex(4)   # the run id start() takes (known to the journal first)
        self.started = []          # [(node, wrapper shell pid, agent pid file)]
        self.t_start = None
        self._files = {}
        self._bases = []           # [(node, its run files' path without suffix)]

    # ------------------------------------------------------------- lifecycle
    def start(self):
        """Start the receiver (waiting until it is ready), then the sender; both
        in the background. Returns when the sender is about to send its first
        packet (controller clock, within one command round trip): time faults
        from this instant."""
        if self.run_id is not None:
            raise ProbeError(f"probe {self.run_id} already started")
        self.run_id = rid = self._rid
        # the agents first: their check makes a node's private folder anew if it is gone
        ragent, sagent = self._agent(self.receiver), self._agent(self.sender)
        # in each node's own folder
        self._bases = [(n, n.path(f"laghil-probe-run-{rid}")) for n in (self.receiver,
                                                                         self.sender)]
        (_, rbase), (_, sbase) = self._bases
        self._files = {k: f"{rbase}.{k}" for k in
                       ("recv.json", "recv.err", "recv.rc", "recv.pid", "ready")}
        self._files.update({k: f"{sbase}.{k}" for k in
                            ("send.json", "send.err", "send.rc", "send.pid", "sending")})
        fl = self._files
        wait_s = max(0.0, (self.start_at or 0) - time.time()) if self.start_at else 0.0
        # The receiver ends at the senders' END markers; its own bound must also
        # cover the sender's start, which takes seconds in an emulated guest.
        recv_s = self.duration_s + wait_s + RECV_SLACK_S + SENDER_START_S
        recv = self._recv_command(ragent, recv_s)
        try:
            self._launch(self.receiver, recv, recv_s + HARD_KILL_S, "recv")
            r = self.receiver.run(_wait_file(fl["ready"], self.ready_timeout_s)
                                  + f" || {{ cat {q(fl['recv.err'])}; exit 1; }}",
                                  timeout=self.ready_timeout_s + 10, check=False)
            if r.rc != 0:
                raise ProbeError(f"{self.receiver.name}: probe receiver not ready within "
                                 f"{self.ready_timeout_s:g} s: {r.stdout.strip()[-500:]}")
            send = self._send_command(sagent)
            self._launch(self.sender, send, self.duration_s + wait_s + HARD_KILL_S + 5, "send")
            # Starting Python in an emulated guest takes seconds: wait until the
            # sender is about to send, so faults can be timed from real traffic.
            r = self.sender.run(_wait_file(fl["sending"], wait_s + self.ready_timeout_s + 20)
                                + f" || {{ cat {q(fl['send.err'])}; exit 1; }}",
                                timeout=wait_s + self.ready_timeout_s + 30, check=False)
            if r.rc != 0:
                raise ProbeError(f"{self.sender.name}: probe sender did not start sending: "
                                 f"{r.stdout.strip()[-500:]}")
            self.t_start = time.time()
        except BaseException:
            self.stop()
            raise
        return self.t_start

    # ------------------------------------------------ agent-specific parts
    def _agent(self, node):
        return ensure_agent(node)

    def _recv_command(self, agent, recv_s):
        ports = ",".join(str(self.base_port + i) for i in range(self.flows))
        return (f"{q(self.python)} {q(agent)} recv --bind {q(self.bind_addr)} --ports {ports} "
                f"--duration {recv_s:.3f} --bin-ms {self.bin_ms:g} --top-gaps {self.top_gaps} "
                f"--ready-file {q(self._files['ready'])} --nice {self.nice}")

    def _send_command(self, agent):
        send = (f"{q(self.python)} {q(agent)} send --dst {q(self.dst_addr)} "
                f"--flows {self.flows} --base-port {self.base_port} "
                f"--src-base-port {self.src_base_port} --rate {self.rate_pps:g} "
                f"--duration {self.duration_s:g} --size {self.size} --nice {self.nice} "
                f"--ready-file {q(self._files['sending'])}" + (" --rt" if self.realtime else ""))
        if self.start_at:
            send += f" --start-at {self.start_at:.6f}"
        return send

    def _result(self, sender, receiver):
        receiver["top_gaps"] = self.top_gaps
        flows = merge(sender, receiver, self.flows, self.rate_pps, self.base_port)
        return ProbeResult(self.rate_pps, flows, sender, receiver, float(self.bin_ms),
                           self.t_start or 0.0)

    def _launch(self, node, cmd, hard_s, kind):
        fl = self._files
        r = node.run(_background(cmd, hard_s, fl[f"{kind}.json"], fl[f"{kind}.err"],
                                 fl[f"{kind}.rc"], fl[f"{kind}.pid"]), timeout=30)
        pid = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else ""
        if not pid.isdigit():
            raise ProbeError(f"{node.name}: could not start the probe {kind}er: {r.stdout!r} "
                             f"{r.stderr!r}")
        self.started.append((node, int(pid), fl[f"{kind}.pid"]))

    def _collect(self, node, kind, limit_s):
        fl = self._files
        r = node.run(_wait_file(fl[f"{kind}.rc"], limit_s)
                     + f"; echo rc=$(cat {q(fl[kind + '.rc'])} 2>/dev/null); "
                     f"cat {q(fl[kind + '.json'])}; echo; echo @@err; cat {q(fl[kind + '.err'])}",
                     timeout=limit_s + 30, check=False)
        head, _, rest = r.stdout.partition("\n")
        body, _, err = rest.partition("\n@@err\n")
        rc = head.strip().removeprefix("rc=")
        if rc != "0":
            why = "did not finish in time" if not rc else f"exited with status {rc}"
            raise ProbeError(f"{node.name}: probe {kind}er {why}: {err.strip()[-800:]}")
        try:
            return json.loads(body)
        except ValueError as e:
            raise ProbeError(f"{node.name}: probe {kind}er output is not JSON ({e}): "
                             f"{body[:300]!r}") from None

    def wait(self, timeout=None):
        """Wait for both agents to finish, collect their results, remove the run
        files; return a :class:`ProbeResult`."""
        if self.run_id is None:
            raise ProbeError("probe not started")
        wait_s = max(0.0, (self.start_at or 0) - time.time()) if self.start_at else 0.0
        limit = timeout or (self.duration_s + wait_s + HARD_KILL_S + 10)
        try:
            sender = self._collect(self.sender, "send", limit)
            receiver = self._collect(self.receiver, "recv", RECV_SLACK_S + HARD_KILL_S + 10)
        except BaseException:
            self.stop()
            raise
        finally:
            self._cleanup_files()
        self.started.clear()
        res = self._result(sender, receiver)
        if res.rate_note:
            res.notes.append(res.rate_note)
        late = sender.get("max_late_ms", 0.0)
        if late > max(2.0, 2e3 / self.rate_pps):
            res.notes.append(f"sender stalled up to {late:.1f} ms "
                             f"({len(sender.get('late_events', []))} stalls > 1 ms reported)")
        return res

    def run(self):
        """start() then wait()."""
        self.start()
        return self.wait()

    def stop_undo(self):
        """:meth:`stop` with its journal records: on each node, SIGTERM to every
        process whose command line carries this probe's run id (its agents and
        their wrappers: processes laghil started, found by the id), then its
        files removed. A controller killed mid-trial leaves agents running until
        their bound; the next session ends them at once (a receiver left bound to
        the probe's ports would refuse the next probe)."""
        tag = f"laghil-probe-run-{self._rid}"
        nodes = {n.name: n for n in (self.sender, self.receiver)}
        return Undo(self.stop, [node_record(nodes[name], "kill_tagged", tag=tag,
                                            workdir=nodes[name].workdir(),
                                            what=f"end probe {self._rid}'s agents (by its run id)")
                                for name in sorted(nodes)], f"stop probe {self._rid}")

    def stop(self):
        """Stop the agents this probe started that still run: SIGTERM to the
        agent's pid (through `timeout`, which relays it) and to its wrapper
        shell, each only if its command line is still this probe's."""
        for node, sh_pid, pidfile in self.started:
            try:
                node.run(f"P=$(cat {q(pidfile)} 2>/dev/null); "
                         f"case \"$P\" in ''|*[!0-9]*) ;; *) grep -q laghil-probe "
                         f"/proc/$P/cmdline 2>/dev/null && kill -TERM $P;; esac; "
                         f"grep -q {q(self.run_id)} /proc/{sh_pid}/cmdline 2>/dev/null "
                         f"&& kill -TERM {sh_pid}; true", timeout=15, check=False)
            except LaghilError:
                pass
        if self.started:
            self._cleanup_files()
        self.started.clear()

    def _cleanup_files(self):
        for node, base in self._bases:
            try:
                node.run(f"rm -f -- {q(base)}.*", timeout=15, check=False)
            except LaghilError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def sample_clock(node, n=5):
    """Clock offset of ``node`` (its clock - ours) from ``n`` SSH round trips
    reading ``date +%s.%N`` (:func:`analysis.estimate_clock_offset`)."""
    samples = []
    for _ in range(n):
        t0 = time.time()
        r = node.run("date +%s.%N", timeout=15)
        t1 = time.time()
        try:
            samples.append((t0, float(r.stdout.strip()), t1))
        except ValueError:
            raise ProbeError(f"{node.name}: cannot read its clock: {r.stdout!r}") from None
    return analysis.estimate_clock_offset(samples)

