"""Aggregate throughput: iperf3 (-J) and perftest, plus per-member counter deltas.

measurement.md item 7: the aggregate is the sum of member bit rates over the
steady state (ramp-up excluded), from interface counters AND from the traffic
tool; efficiency is that aggregate against the sum of member link speeds (lab
file, or a tbf shaping rate in the virtual rack). Parsers are pure functions.
"""

import json
import re
import time
from dataclasses import dataclass, field

from ..errors import LaghilError
from ..names import q, qif
from ..parsing import parser
from ..wait import wait_until
from .analysis import jain_index
from .model import Measurement


class ThroughputError(LaghilError):
    pass


# ---------------------------------------------------------------- parsers
@parser('iperf3 --json')
def parse_iperf3(text):
    """`iperf3 -J` (client side) -> {"sent_bps", "received_bps", "retransmits",
    "streams", "seconds", "omit", "intervals_bps": [...], "error"}."""
    try:
        d = json.loads(text)
    except ValueError as e:
        raise ThroughputError(f"iperf3 -J output is not JSON: {e}: {text[:200]!r}") from None
    if "error" in d and "end" not in d:
        return {"error": d["error"], "sent_bps": 0.0, "received_bps": 0.0}
    end = d.get("end", {})
    test = d.get("start", {}).get("test_start", {})
    sent, recv = end.get("sum_sent", {}), end.get("sum_received", {})
    return {
        "error": d.get("error"),
        "sent_bps": float(sent.get("bits_per_second", 0.0)),
        "received_bps": float(recv.get("bits_per_second", 0.0)),
        "retransmits": sent.get("retransmits"),
        "streams": test.get("num_streams"),
        "seconds": float(recv.get("seconds") or sent.get("seconds") or 0.0),
        "omit": test.get("omit", 0),
        "intervals_bps": [float(i["sum"]["bits_per_second"]) for i in d.get("intervals", [])
                          if not i["sum"].get("omitted")],
    }


_PERF_ROW = re.compile(r"^\s*(\d+)\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s*$")


class PerftestClockError(ThroughputError):
    """perftest could not calibrate its cycle counter against the wall clock
    ("Correlation coefficient r^2: 0.77 < 0.9 / Can't produce a report", seen
    under QEMU's emulation): the tool's failure, not the device's. Not a result:
    the run is repeated (a bounded number of times)."""


@parser('perftest (ib_*_bw)')
def parse_perftest(text):
    """ib_write_bw / ib_send_bw output (with --report_gbits) -> {"bytes", "iterations",
    "peak_gbps", "average_gbps", "msg_rate_mpps", "qps"}. PerftestClockError
    when perftest gave up on its clock calibration."""
    if "Can't produce a report" in text:
        why = next((ln.strip() for ln in text.splitlines() if "Correlation coefficient" in ln),
                   "no cycle-counter rate")
        raise PerftestClockError(f"perftest could not calibrate its clock ({why}): it "
                                 "produced no report")
    if "BW average[Gb/sec]" not in text:
        raise ThroughputError("perftest output has no Gb/sec result table "
                              f"(was --report_gbits given? did it connect?): {text[-300:]!r}")
    rows = [m.groups() for m in map(_PERF_ROW.match, text.splitlines()) if m]
    if not rows:
        raise ThroughputError(f"perftest result row missing: {text[-300:]!r}")
    b, it, peak, avg, rate = rows[-1]
    return {"bytes": int(b), "iterations": int(it), "peak_gbps": float(peak),
            "average_gbps": float(avg), "msg_rate_mpps": float(rate),
            "qps": text.count("local address:")}


COUNTERS = ("rx_bytes", "tx_bytes", "rx_packets", "tx_packets")


def counters_command(ports):
    """Shell text printing the time and every counter of ``ports``: the shell's
    ``read`` builtin, no process per counter (under emulation a process costs
    ~0.1 s, and a failover trial reads counters just before its fault)."""
    parts = ["date +%s.%N"]
    for p in ports:
        parts += [f"read v < /sys/class/net/{qif(p)}/statistics/{c}; echo {qif(p)} $v"
                  for c in COUNTERS]
    return "; ".join(parts)


def read_counters(node, ports):
    """(t_node, {port: {counter: int}}) of ``ports`` on ``node``, read now."""
    return parse_counters(node.run(counters_command(ports)).stdout, ports)


@parser('/sys/class/net/*/statistics')
def parse_counters(text, ports):
    """Output of counters_command -> (t_node, {port: {counter: int}})."""
    lines = text.strip().splitlines()
    t = float(lines[0])
    out = {p: {} for p in ports}
    per_port = iter(lines[1:])
    for p in ports:
        for c in COUNTERS:
            name, value = next(per_port).split()
            if name != p:
                raise ThroughputError(f"counter output out of order: {name} for {p}")
            out[p][c] = int(value)
    return t, out


def counter_rates(before, after):
    """Two parse_counters results -> {port: {"rx_bps", "tx_bps", "rx_pps", "tx_pps"}}."""
    (t0, a), (t1, b) = before, after
    dt = t1 - t0
    if dt <= 0:
        raise ThroughputError(f"counter interval {dt} s is not positive")
    return {p: {"rx_bps": 8 * (b[p]["rx_bytes"] - a[p]["rx_bytes"]) / dt,
                "tx_bps": 8 * (b[p]["tx_bytes"] - a[p]["tx_bytes"]) / dt,
                "rx_pps": (b[p]["rx_packets"] - a[p]["rx_packets"]) / dt,
                "tx_pps": (b[p]["tx_packets"] - a[p]["tx_packets"]) / dt,
                "seconds": dt} for p in a}


def speeds_command(ports):
    """Shell text printing ``<port> <speed>`` per port: the sysfs speed (Mbit/s),
    ``unknown`` when it cannot be read (link down), ``missing`` when there is
    no such interface."""
    return "; ".join(
        f"if [ -e /sys/class/net/{qif(p)} ]; then echo {qif(p)} "
        f"$(cat /sys/class/net/{qif(p)}/speed 2>/dev/null || echo unknown); "
        f"else echo {qif(p)} missing; fi" for p in ports)


@parser('/sys/class/net/*/speed')
def parse_speeds(text, ports):
    """Output of speeds_command -> {port: bit/s or None}. The kernel reports
    Mbit/s, and -1 (or an unreadable file) when the speed is unknown: None."""
    got = {}
    for line in text.strip().splitlines():
        name, _, value = line.strip().partition(" ")
        got[name] = value.strip()
    out = {}
    for p in ports:
        if p not in got:
            raise ThroughputError(f"link speed output has no line for {p}: {text[-300:]!r}")
        if got[p] == "missing":
            raise ThroughputError(f"no interface {p} to read the link speed of")
        try:
            mbit = int(got[p])
        except ValueError:
            mbit = -1
        out[p] = mbit * 1e6 if mbit > 0 else None
    return out


def member_speeds_bps(node, ports):
    """{port: link speed in bit/s, or None when unknown} of ``ports`` on ``node``,
    read from /sys/class/net/<port>/speed in one round trip: the capacity for
    the efficiency when the lab file gives no speed."""
    return parse_speeds(node.run(speeds_command(ports)).stdout, ports)


# ---------------------------------------------------------------- runs
@dataclass
class ThroughputResult:
    tool_bps: float                     # sum over iperf3 clients, receiver side
    members: dict                       # port -> counter rates on the sender
    member_speeds_bps: dict             # port -> nominal speed (lab or shaping)
    flows: int
    streams: int
    steady_s: float
    per_flow_bps: list = field(default_factory=list)
    direction: str = "tx"

    @property
    def counters_bps(self):
        return sum(m[f"{self.direction}_bps"] for m in self.members.values())

    @property
    def capacity_bps(self):
        """Sum of the member speeds; None when any member's speed is unknown."""
        speeds = list(self.member_speeds_bps.values())
        return None if not speeds or None in speeds else sum(speeds)

    @property
    def efficiency(self):
        return self.counters_bps / self.capacity_bps if self.capacity_bps else None

    @property
    def jain(self):
        return jain_index([m[f"{self.direction}_bps"] for m in self.members.values()])

    def measurements(self, threshold_efficiency=None, profile=None):
        res = 8.0 * 1500 / self.steady_s / 1e6  # one MTU per window, Mbit/s
        ms = [
            Measurement("aggregate (counters)", self.counters_bps / 1e6, "Mbit/s",
                        f"sum of member {self.direction}_bytes deltas over {self.steady_s:.1f} s "
                        "steady state", resolution=res),
            Measurement("aggregate (iperf3)", self.tool_bps / 1e6, "Mbit/s",
                        f"iperf3 -J receiver sum, {self.flows} flows x {self.streams} streams, "
                        "ramp-up omitted", resolution=None),
            Measurement("distribution (Jain)", self.jain, "",
                        f"Jain's index of member {self.direction} rates", resolution=None),
        ]
        if self.efficiency is not None:
            ms.append(Measurement("efficiency", self.efficiency, "",
                                  "counter aggregate / sum of member speeds", resolution=None,
                                  threshold=threshold_efficiency, comparison=">=",
                                  profile=profile))
        return ms


def _read_result(node, path, parse, *, timeout, interval, what):
    """Poll ``path`` on ``node`` (bounded) until ``parse`` takes its text; the
    parsed result. ThroughputError with the last text seen if it never does."""
    got = []

    def check():
        text = node.run(f"cat {path} 2>/dev/null", check=False).stdout.strip()
        try:
            got.append(parse(text))
        except PerftestClockError:
            raise           # final: the tool has exited without a report
        except ThroughputError as e:
            return f"{e}: {text[-400:]!r}"
        return None
    wait_until(check, timeout=timeout, interval=interval, what=what, error=ThroughputError)
    return got[-1]


def run_iperf3(client, server, dst, members, member_speeds_bps, flows=4, streams=2,
               duration_s=8, omit_s=2, base_port=5301, direction="tx", client_ports=None):
    """iperf3 from ``client`` to ``server`` (``dst`` address): ``flows`` servers on
    consecutive ports (distinct 5-tuples for the hash), ``streams`` parallel streams
    each; counters of ``members`` (ports of ``client``) read over the steady state
    (after ``omit_s`` of ramp-up, until 1 s before the end). ``client_ports``
    gives each flow's client port (e.g. chosen so that a hash spreads the flows;
    default: server port + 1000)."""
    if duration_s - omit_s < 3:
        raise ThroughputError(f"duration {duration_s} s leaves under 3 s of steady state after "
                              f"{omit_s} s ramp-up")
    ports = [base_port + i for i in range(flows)]
    cports = list(client_ports) if client_ports else [p + 1000 for p in ports]
    if len(cports) != flows or len(set(cports)) != flows:
        raise ThroughputError(f"client ports {cports}: need {flows} distinct ports")
    bound = int(duration_s + 30)
    server.workdir(verify=True)        # a node power cycled by an earlier test lost it
    client.workdir(verify=True)
    logs = [q(server.path(f"laghil-iperf3-{p}.log")) for p in ports]
    for p, log in zip(ports, logs):
        server.run(f"timeout {bound} iperf3 -s -1 -D -p {p} --logfile {log}")
    out_files = [q(client.path(f"laghil-iperf3-c{p}.json")) for p in ports]
    t_start = time.monotonic()
    client.run("; ".join(
        f"(timeout {bound} iperf3 -c {q(dst)} -p {p} -J -P {int(streams)} -t {int(duration_s)} "
        f"-O {int(omit_s)} --cport {int(c)} > {f} 2>&1 &)"
        for p, c, f in zip(ports, cports, out_files)))
    try:
        time.sleep(max(0.0, omit_s + 0.5 - (time.monotonic() - t_start)))
        before = read_counters(client, members)
        time.sleep(max(0.0, duration_s - 1.0 - (time.monotonic() - t_start)))
        after = read_counters(client, members)
        rates = counter_rates(before, after)
        time.sleep(max(0.0, duration_s + 0.5 - (time.monotonic() - t_start)))
        per_flow = []
        for f in out_files:
            # each client writes its JSON when it ends (bounded by `timeout`)
            parsed = _read_result(client, f, parse_iperf3, timeout=20, interval=0.5,
                                  what=f"{client.name}: iperf3 to {dst}: result {f}")
            if parsed.get("error"):
                raise ThroughputError(f"{client.name}: iperf3 to {dst}: {parsed['error']}")
            per_flow.append(parsed["received_bps"])
    finally:
        client.run("rm -f " + " ".join(out_files), check=False)
        server.run("rm -f " + " ".join(logs), check=False)
    return ThroughputResult(sum(per_flow), rates, dict(member_speeds_bps), flows, streams,
                            rates[members[0]]["seconds"], per_flow, direction)


@dataclass
class PerftestResult:
    tool: dict                          # parse_perftest of the client's output
    members: dict                       # port -> counter rates on the client
    qps: int
    steady_s: float

    @property
    def tool_bps(self):
        return self.tool["average_gbps"] * 1e9

    @property
    def counters_bps(self):
        return sum(m["tx_bps"] for m in self.members.values())

    @property
    def jain(self):
        return jain_index([m["tx_bps"] for m in self.members.values()])

    def shares(self):
        total = self.counters_bps
        return {p: (m["tx_bps"] / total if total else 0.0) for p, m in self.members.items()}


PERFTEST_CLOCK_TRIES = 3


def run_perftest(client, server, dst, device_c, device_s, members, qps=8, duration_s=8,
                 size=8192, tx_depth=2, port=18600, tool="ib_write_bw", settle_s=3.0,
                 on_discard=None):
    """perftest ``tool`` over rdma_cm (-R) from ``client`` to ``dst`` on ``server``:
    ``qps`` QPs, messages of ``size`` bytes, ``tx_depth`` outstanding per QP (few:
    a deep queue behind a shaped member outlives the QP's ACK timeout and is
    resent); counters of ``members`` (the client's LAG members) read over the
    steady state (``settle_s`` after the launch until 1 s before the end). A run
    in which perftest could not calibrate its clock is repeated, at most
    PERFTEST_CLOCK_TRIES runs in all, each said on stdout and handed to
    ``on_discard(attempt, reason)`` (the test records it); never counted."""
    for attempt in range(1, PERFTEST_CLOCK_TRIES + 1):
        try:
            return _run_perftest_once(client, server, dst, device_c, device_s, members, qps,
                                      duration_s, size, tx_depth, port, tool, settle_s)
        except PerftestClockError as e:
            print(f"{client.name}: {tool} run {attempt} of {PERFTEST_CLOCK_TRIES} not counted: "
                  f"{e}")
            if on_discard is not None:
                on_discard(attempt, f"{client.name}: {tool}: {e}")
            if attempt == PERFTEST_CLOCK_TRIES:
                raise


def _run_perftest_once(client, server, dst, device_c, device_s, members, qps, duration_s,
                       size, tx_depth, port, tool, settle_s):
    if tool not in ("ib_write_bw", "ib_send_bw", "ib_read_bw"):
        raise ThroughputError(f"unknown perftest tool {tool!r}")
    if duration_s - settle_s < 3:
        raise ThroughputError(f"duration {duration_s} s leaves under 3 s after {settle_s} s settle")
    bound = int(duration_s + 40)
    opts = (f"-R -q {int(qps)} -D {int(duration_s)} -s {int(size)} -t {int(tx_depth)} "
            f"-p {int(port)} --report_gbits")
    sfile = q(server.path(f"laghil-perftest-s{int(port)}.txt", verify=True))
    cfile = q(client.path(f"laghil-perftest-c{int(port)}.txt", verify=True))
    server.run(f"(timeout {bound} {tool} -d {q(device_s)} {opts} > {sfile} 2>&1 &)")
    time.sleep(1.0)
    t0 = time.monotonic()
    client.run(f"(timeout {bound} {tool} -d {q(device_c)} {opts} {q(dst)} > {cfile} 2>&1 &)")
    try:
        time.sleep(max(0.0, settle_s - (time.monotonic() - t0)))
        before = read_counters(client, members)
        time.sleep(max(0.0, duration_s - 1.0 - (time.monotonic() - t0)))
        after = read_counters(client, members)
        rates = counter_rates(before, after)
        parsed = _read_result(client, cfile, parse_perftest, timeout=30, interval=1.0,
                              what=f"{client.name}: {tool} to {dst}: a result in {cfile}")
    finally:
        client.run(f"rm -f {cfile}", check=False)
        server.run(f"rm -f {sfile}", check=False)
    return PerftestResult(parsed, rates, int(qps), rates[members[0]]["seconds"])
