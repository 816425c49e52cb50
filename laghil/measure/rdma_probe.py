"""RDMA probe traffic: RC queue pairs connected with rdma_cm between two hosts,
sequence-numbered messages at a fixed rate per QP (``agent/rdma_agent.py``).

    probe = RdmaProbe(h1, h2, "192.168.201.2", qps=2, rate_pps=200, duration_s=8,
                      retry_cnt=7, timeout=14)
    res = probe.run()              # or start() ... fault ... wait()
    res.errors(), res.states(), res.outage(fault_t)

The result has the UDP probe's per-flow shape (one flow per QP), so T_gap,
T_loss, reversion and timelines come from the same analysis; on top it holds
each QP's error completions and final state on both sides, and the survival
bound of the requester's retry_cnt/timeout (docs/measurement.md item 6). An RC QP
retransmits, so an outage shows as a gap, not as loss: a message missing at
the end, an error completion or a QP out of RTS fails HA.
"""

import json
from dataclasses import dataclass

from ..names import check_name, q
from . import analysis
from .model import Measurement
from .probe import Probe, ProbeError, ProbeResult, ensure_agent, merge_flow

DEFAULT_PORT = 18515


def ensure_rdma_agent(node):
    """The agents uploaded (:func:`laghil.measure.agents.ensure_agent`); the remote path of rdma_agent.py."""
    return ensure_agent(node, "rdma_agent.py")


def merge_rdma(sender, receiver, qps, rate_pps):
    """Per-QP flows: the receiver's reduced flow (or an empty one), tx_count from
    the sender (authoritative), and both sides' QP state and error completions."""
    rx = {f["flow"]: f for f in receiver.get("flows", [])}
    tx = {f["flow"]: f for f in sender.get("flows", [])}
    out = []
    for i in range(qps):
        s = tx.get(i, {})
        f = merge_flow(rx.get(i), s, i, receiver.get("port"), rate_pps)
        f["rate_pps"] = rate_pps
        f["rx_qp"] = {"qp_num": f.pop("qp_num", None), "state": f.pop("state", None),
                      "retry_cnt": f.pop("retry_cnt", None), "timeout": f.pop("timeout", None),
                      "errors": f.pop("errors", [])}
        f["tx_qp"] = {k: s.get(k) for k in ("qp_num", "state", "retry_cnt", "timeout",
                                            "sq_full", "post_errors", "completed")}
        f["tx_qp"]["errors"] = s.get("errors", [])
        out.append(f)
    return out


@dataclass(frozen=True)
class LagPortRemap:
    """How mlx5's per-QP LAG ports moved at a member failure (:func:`lag_port_remap`)."""
    before: dict                    # QP index -> LAG port, last sample before the fault
    on_failed_before: list          # QPs on the failed port before the fault
    remap_ms: float | None          # first sample with no QP on it, after the fault
    stuck: dict                     # QP -> sample instants back on the failed port
    resolution_ms: float | None     # the sampling interval


def lag_port_remap(samples, failed_port, fault_t, restore_t):
    """What a hardware RoCE LAG did with its QPs' ports around a failover, from
    the agent's ``lag_ports`` samples [{"t", "active": [port per QP]}] (the
    sender's clock; ``fault_t``/``restore_t`` on the same clock).

    Returns a :class:`LagPortRemap`: ``before`` {QP: port} at the last sample
    before the fault, ``on_failed_before`` the QPs that used ``failed_port``
    then, ``remap_ms`` the time from the fault to the first sample with no QP
    on ``failed_port`` (None if never), ``stuck`` {QP: [t...]} samples from 1 s
    after the fault to the restore where a QP still used ``failed_port``,
    ``resolution_ms`` the sampling interval."""
    samples = sorted(samples, key=lambda x: x["t"])
    before = [x for x in samples if x["t"] < fault_t]
    during = [x for x in samples if fault_t <= x["t"] < restore_t]
    last = before[-1]["active"] if before else []
    remap = next((x["t"] for x in during if failed_port not in x["active"]), None)
    stuck = {}
    for x in during:
        if x["t"] >= fault_t + 1.0:
            for qp, port in enumerate(x["active"]):
                if port == failed_port:
                    stuck.setdefault(qp, []).append(x["t"])
    steps = [b["t"] - a["t"] for a, b in zip(samples, samples[1:])]
    return LagPortRemap(
        before=dict(enumerate(last)),
        on_failed_before=[qp for qp, port in enumerate(last) if port == failed_port],
        remap_ms=None if remap is None else (remap - fault_t) * 1e3, stuck=stuck,
        resolution_ms=(sorted(steps)[len(steps) // 2] * 1e3) if steps else None)


class RdmaProbeResult(ProbeResult):
    """A :class:`ProbeResult` whose flows are RC QPs (see the module doc)."""
    GAPS = "all"        # RC resends what it lost: its outage is a gap with nothing missing

    @property
    def survival_bound_s(self):
        return self.sender.get("survival_bound_s")

    @property
    def lag_ports(self):
        """The sender's per-QP LAG port samples (mlx5 only, when asked for)."""
        return self.sender.get("lag_ports") or []

    @property
    def lag_port_error(self):
        return self.sender.get("lag_port_error")

    def errors(self):
        """Every error completion: [{"side", "flow", "qp_num", "status", "name", "t", "count"}]."""
        out = []
        for f in self.flows:
            for side in ("tx", "rx"):
                qp = f[f"{side}_qp"]
                for e in qp.get("errors") or []:
                    out.append({"side": side, "flow": f["flow"], "qp_num": qp.get("qp_num"), **e})
        return out

    def states(self):
        """{"tx": [state per QP], "rx": [...]} after the run."""
        return {side: [f[f"{side}_qp"].get("state") for f in self.flows] for side in ("tx", "rx")}

    def qp_problems(self, what="QPs"):
        """Error completions and QPs out of RTS on either side."""
        out = [f"QP {e['qp_num']} ({e['side']}, flow {e['flow']}): {e['count']} x "
               f"IBV_WC_{e['name']} (status {e['status']})" for e in self.errors()]
        for side, states in self.states().items():
            bad = {i: s for i, s in enumerate(states) if s != "RTS"}
            if bad:
                out.append(f"{side} {what} not in RTS after the run: {bad}")
        return out

    def problems(self):
        """What breaks HA for an RC connection: error completions, a QP out of
        RTS on either side, messages never delivered. Empty when it survived."""
        out = self.qp_problems()
        lost = {f["flow"]: f["lost"] for f in self.flows if f["lost"]}
        if lost:
            out.append(f"messages never delivered per QP: {lost} of "
                       f"{[f['tx_count'] for f in self.flows]} sent")
        full = {f["flow"]: f["tx_qp"].get("sq_full") for f in self.flows if f["tx_qp"].get("sq_full")}
        if full:
            out.append(f"send queue full (schedule slipped) per QP: {full}")
        return out

    def measurements(self, fault_t=None, window=None, prefix=""):
        out = super().measurements(fault_t, window, prefix)
        bound = self.survival_bound_s
        n_err = sum(e["count"] for e in self.errors())
        retry, timeout = self.sender.get("retry_cnt"), self.sender.get("timeout")
        out += [
            Measurement(f"{prefix}error completions", n_err, "wc",
                        f"work completions with status != SUCCESS, both sides, {len(self.flows)} QPs",
                        resolution=1.0),
            Measurement(f"{prefix}RC survival bound", bound * 1e3 if bound else None, "ms",
                        f"(retry_cnt + 1) x 4.096 us x 2^timeout with retry_cnt={retry}, "
                        f"timeout={timeout} (IB local ACK timeout)", resolution=None),
        ]
        return out

    def to_dict(self):
        d = super().to_dict()
        d["survival_bound_s"] = self.survival_bound_s
        return d


class RdmaProbe(Probe):
    """RC QPs from ``sender_node`` to ``dst_addr`` (the receiver's address on the
    RoCE device's netdev): ``qps`` QPs at ``rate_pps`` messages/s each. The
    requester's ``retry_cnt`` (0..7) and ``timeout`` (1..31) are set on every
    sender QP. ``lag_port_every`` (mlx5 only) samples each QP's LAG port. ``start()`` / ``wait()`` / ``stop()`` as :class:`Probe`."""

    def __init__(self, sender_node, receiver_node, dst_addr, qps=2, rate_pps=200,
                 duration_s=10, port=DEFAULT_PORT, retry_cnt=7, timeout=14, bin_ms=10,
                 src_addr=None, depth=512, sq_depth=1024, ready_timeout_s=20.0,
                 lag_port_every=0.0, **kw):
        analysis.theoretical_rc_survival_s(retry_cnt, timeout)      # validates both
        if timeout == 0:
            raise ValueError("timeout 0 means an infinite ACK timeout: no survival bound")
        if not 1 <= qps <= 64:
            raise ValueError(f"qps must be 1..64, not {qps}")
        super().__init__(sender_node, receiver_node, dst_addr, flows=qps, rate_pps=rate_pps,
                         duration_s=duration_s, base_port=port, bin_ms=bin_ms,
                         ready_timeout_s=ready_timeout_s, **kw)
        self.retry_cnt, self.timeout = retry_cnt, timeout
        self.src_addr, self.depth, self.sq_depth = src_addr, depth, sq_depth
        self.lag_port_every = lag_port_every
        self.bind_addr = kw.get("bind_addr") or dst_addr

    @property
    def survival_bound_s(self):
        return analysis.theoretical_rc_survival_s(self.retry_cnt, self.timeout)

    def _agent(self, node):
        return ensure_rdma_agent(node)

    def _recv_command(self, agent, recv_s):
        return (f"{q(self.python)} {q(agent)} recv --bind {q(self.bind_addr)} "
                f"--port {self.base_port} --qps {self.flows} --rate {self.rate_pps:g} "
                f"--duration {recv_s:.3f} --depth {self.depth} --bin-ms {self.bin_ms:g} "
                f"--top-gaps {self.top_gaps} --ready-file {q(self._files['ready'])}")

    def _send_command(self, agent):
        src = f" --src {q(self.src_addr)}" if self.src_addr else ""
        return (f"{q(self.python)} {q(agent)} send --dst {q(self.dst_addr)}{src} "
                f"--port {self.base_port} --qps {self.flows} --rate {self.rate_pps:g} "
                f"--duration {self.duration_s:g} --retry-cnt {self.retry_cnt} "
                f"--timeout {self.timeout} --sq-depth {self.sq_depth} "
                + (f"--lag-port-every {self.lag_port_every:g} " if self.lag_port_every else "")
                + f"--ready-file {q(self._files['sending'])}")

    def _result(self, sender, receiver):
        receiver["top_gaps"] = self.top_gaps
        flows = merge_rdma(sender, receiver, self.flows, self.rate_pps)
        return RdmaProbeResult(self.rate_pps, flows, sender, receiver, float(self.bin_ms),
                               self.t_start or 0.0)


class UdProbeResult(RdmaProbeResult):
    """UD QPs: a message lost in an outage is lost (no retransmission), so loss
    is the outage measure (T_loss, as for the UDP probe), not a failure; what
    breaks UD is an error completion or a QP out of RTS."""

    @property
    def survival_bound_s(self):
        return None

    GAPS = "loss"       # UD does not resend: as the UDP probe

    def problems(self):
        return self.qp_problems("UD QPs")

    def measurements(self, fault_t=None, window=None, prefix=""):
        return ProbeResult.measurements(self, fault_t, window, prefix)


class UdProbe(RdmaProbe):
    """UD QPs from ``sender_node``'s RDMA device ``device`` (its GID ``gid_index``)
    to ``peer_device`` on the receiver (``peer_gid_index``: the RoCE v2 GID of
    ``dst_addr``): no rdma_cm; the receiver's QP numbers and GID come from its
    ready file. Sequence-numbered SEND_WITH_IMM at ``rate_pps`` per QP."""

    def __init__(self, sender_node, receiver_node, dst_addr, *, device, gid_index,
                 peer_device, peer_gid_index, qps=2, rate_pps=200, duration_s=10, **kw):
        super().__init__(sender_node, receiver_node, dst_addr, qps=qps, rate_pps=rate_pps,
                         duration_s=duration_s, **kw)
        self.device, self.peer_device = (check_name(d, "RDMA device") for d in (device, peer_device))
        self.gid_index, self.peer_gid_index = int(gid_index), int(peer_gid_index)

    @property
    def survival_bound_s(self):
        return None

    def _recv_command(self, agent, recv_s):
        return (super()._recv_command(agent, recv_s)
                + f" --ud --device {q(self.peer_device)} --gid-index {self.peer_gid_index}")

    def _send_command(self, agent):
        ready = self.receiver.run(f"cat {q(self._files['ready'])}").stdout
        try:
            info = json.loads(ready)
            qpns, gid = [int(x) for x in info["qpns"]], str(info["gid"])
        except (ValueError, KeyError, TypeError) as e:
            raise ProbeError(f"{self.receiver.name}: UD receiver's ready file is not its QPs "
                             f"and GID: {ready.strip()[:200]!r} ({e})") from None
        return (super()._send_command(agent)
                + f" --ud --device {q(self.device)} --gid-index {self.gid_index} "
                f"--remote-qpns {','.join(map(str, qpns))} --remote-gid {q(gid)}")

    def _result(self, sender, receiver):
        receiver["top_gaps"] = self.top_gaps
        flows = merge_rdma(sender, receiver, self.flows, self.rate_pps)
        return UdProbeResult(self.rate_pps, flows, sender, receiver, float(self.bin_ms),
                             self.t_start or 0.0)


__all__ = ["RdmaProbe", "RdmaProbeResult", "UdProbe", "UdProbeResult", "ProbeError", "ensure_rdma_agent", "merge_rdma",
           "lag_port_remap", "rc_figures"]


def rc_figures(trials, retry_cnt, timeout):
    """What RC trials add to the failover figures: the QPs' survival bound
    (``retry_cnt`` and ``timeout`` as the probe set them) and the error
    completions (none allowed), over every repetition."""
    per = [sum(e["count"] for e in t.res.errors()) for t in trials]
    return [
        Measurement("RC survival bound", trials[0].res.survival_bound_s * 1e3, "ms",
                    f"(retry_cnt + 1) x 4.096 us x 2^timeout, retry_cnt={retry_cnt}, "
                    f"timeout={timeout}"),
        Measurement("error completions", sum(per), "wc",
                    "work completions with status != SUCCESS, both sides, all repetitions", resolution=1,
                    repetitions=per, threshold=0, comparison="<="),
    ]
