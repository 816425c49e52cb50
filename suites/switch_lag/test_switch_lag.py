"""Switch LAG: a LAG over switch ports made through the switch's platform driver,
against a host bond or team on each side; state read back from both sides,
traffic through it, offload evidence, refusals, upper devices on the LAG
(VLANs, a VLAN-aware bridge) through member and master changes, and
switch-side faults. The model is the kernel's own LAG selftests
(mlxsw/rtnetlink.sh, forwarding/router_bridge_lag.sh) and sonic-mgmt's
PortChannel tests, with every step's outage measured and judged.

On the virtual rack the switch is a Linux software switch: offload and refusal
checks skip naming the missing capability (a switchdev ASIC); --certify makes
those skips failures."""

import pytest

from laghil.bounds import gap_bound
from laghil.cases import SWITCH_LACP_CASES, SWITCH_LAG_CASES
from laghil.checks.switch import (TaggedFrames, check_switch_lag, driver_of, host_in_use,
                                  step_bound, switch_rx)
from laghil.drivers.switch import SwitchError, SwitchRefused, switch_driver
from laghil.drivers.vlan import Vlan
from laghil.faults import fault
from laghil.journal import node_undo
from laghil.measure.figures import allowance_of
from laghil.measure.model import Measurement
from laghil.measure.probe import Probe
from laghil.measure.steps import run_step, step_problems
from laghil.measure.throughput import read_counters
from laghil.names import qif
from laghil.undo_actions import check_mac
from laghil.wait import WaitTimeout, wait_until
from pytest_laghil import lacks, params
from pytest_laghil.lag_checks import (assert_failover, check_bond_state, check_distribution,
                                      check_team_state, member_drivers, record_failover,
                                      run_trials)

pytestmark = [pytest.mark.switch_lag, pytest.mark.requires("bonding", count=2)]

VLANS = {100: "192.168.210", 200: "192.168.220"}
CI = [pytest.mark.ci]


def _ci_first(cases):
    """params with the first case (802.3ad) in the CI subset."""
    out = params(cases, expand=False)
    out[0] = pytest.param(*out[0].values, id=out[0].id, marks=list(out[0].marks) + CI)
    return out


def _make(lag_pair, case, **kw):
    return lag_pair(case.kind, case.mode, via="switch", **kw, **case.options)


def _host_mac(pair, host):
    return pair.mac_a if host == pair.a.node.name else pair.mac_b


def _hosts(pair):
    return (pair.a.node.name, pair.b.node.name)


@pytest.mark.parametrize("case", _ci_first(SWITCH_LAG_CASES))
def test_switch_lag_state_and_traffic(lag_pair, lab_rt, case, measure, profile, defer):
    """The switch LAG towards each host, read back through the driver: up, its
    members the cabled ports, all selected, LACP healthy with the host LAG as
    partner; the host LAGs as configured; probe traffic through the switch
    delivered, spread per the host's hash, and each switch member receiving
    what the host sent on its cable."""
    pair = _make(lag_pair, case)
    drv = driver_of(pair, lab_rt)
    for h in _hosts(pair):
        check_switch_lag(drv, pair, h, case, _host_mac(pair, h))
    for lag in (pair.a, pair.b):
        if lag.kind == "bond":
            check_bond_state(lag, case, pair.partner_macs[lag.node.name], defer=defer)
        else:
            check_team_state(lag, case, defer=defer)
    sw_ports = pair.switch_ports[pair.a.node.name]
    before = switch_rx(drv.node, sw_ports)
    d = check_distribution(pair, case, measure, profile)
    after = switch_rx(drv.node, sw_ports)
    far = {m: lab_rt.lab.far_end(pair.a.node.name, m).port for m in pair.a.members}
    for m, port in far.items():
        got, sent = after[port] - before[port], d.members[m]
        # the host's member also sends LACPDUs and neighbour traffic: a few frames
        slack = max(10, 0.02 * sent)
        measure.record(Measurement(f"switch rx {port} vs host tx {m}", got - sent, "pkt",
                                   f"{port} rx_packets delta - {m} tx_packets delta over the "
                                   "distribution probe", resolution=1.0))
        assert abs(got - sent) <= slack, (
            f"{drv.node.name}:{port} received {got} frames while {pair.a.node.name}:{m} sent "
            f"{sent} on the cable between them (more than {slack:.0f} apart)")


@pytest.mark.parametrize("case", _ci_first(SWITCH_LAG_CASES))
def test_switch_lag_offload_evidence(lag_pair, lab_rt, lab, case, pytestconfig, defer):
    """Offload shown by the platform's own signals (FDB entries on the LAG
    flagged offload / extern_learn, members on a switchdev ASIC). A software LAG
    is a finding, never an offload pass; a platform without the signals skips
    naming them (a failure under --certify)."""
    pair = _make(lag_pair, case)
    drv = driver_of(pair, lab_rt)
    pair.a.node.run(f"ping -c 3 -i 0.2 -W 2 {pair.ip_b} >/dev/null", check=False)
    lag = pair.switch_lags[pair.a.node.name]
    ev = drv.offload_evidence(lag)
    print(f"{drv.node.name}: {ev.describe()}")
    sw = lab.switches[pair.switch]
    if ev.verdict == "offloaded":
        return
    if "lag_offload" in sw.capabilities:
        pytest.fail(f"{drv.node.name} ({drv.platform}) declares lag_offload but {ev.describe()}: "
                    "a software LAG where hardware was promised (silent fallback)",
                    pytrace=False)
    lacks(pytestconfig, "lag_offload", lab,
          f"{drv.node.name} ({drv.platform}): {ev.describe()}; missing: "
          f"{', '.join(ev.missing) or 'none'}")


@pytest.mark.ci
def test_switch_lag_refusals(lab_rt, lab, profile, pytestconfig, defer):
    """Each tx type the platform's profile says its hardware cannot offload is
    refused with its exact reason, and nothing is left behind. Only a switch
    ASIC refuses (a software switch takes every mode): skipped naming it."""
    table = (profile.sections.get("switch_lag") or {}).get("refusals", {})
    for name, sw in lab.switches.items():
        want = table.get(sw.platform)
        if want and "lag_offload" in sw.capabilities:
            break
    else:
        lacks(pytestconfig, "lag_offload", lab,
              "no switch declares lag_offload with refusals in the profile (switch_lag."
              "refusals.<platform>): a software switch accepts every LAG mode")
    drv = switch_driver(lab_rt.node(name))
    ports = list(sw.ports)[:2]
    problems = []
    for mode, reason in want.items():
        try:
            drv.lag_create(f"{lab.device_names.switch_lag}9", ports, mode, defer=defer)
        except SwitchRefused as e:
            if reason not in e.reason:
                problems.append(f"{mode}: refused with {e.reason!r}, want {reason!r}")
            if e.left:
                problems.append(f"{mode}: left behind {e.left}")
            continue
        problems.append(f"{mode}: accepted, the profile says {reason!r}")
    assert not problems, f"{name}: " + "; ".join(problems)


def _vlan_pair(lag_pair, case, defer):
    """VLANs 100 and 200 on both host LAGs, each host's neighbour on them
    pinned (a permanent entry, its removal registered first): a step that cuts
    the path must be judged on the LAG and the bridge, not on ARP's retransmit
    timer (up to 1 s) after a probe lost in the cut (seen: 'back into the
    bridge' resumed 363 ms late, all four flows alike)."""
    pair = _make(lag_pair, case, switch_vlans=tuple(VLANS))
    vlans = {}
    for i, lag in enumerate((pair.a, pair.b)):
        for vid, net in VLANS.items():
            vlans[i, vid] = Vlan(lag.node, lag.name, vid)
            vlans[i, vid].create(defer=defer, address=f"{net}.{i + 1}/24")
    for i, lag in enumerate((pair.a, pair.b)):
        for vid, net in VLANS.items():
            mine, peer = vlans[i, vid], vlans[1 - i, vid]
            mac = peer.node.run(f"cat /sys/class/net/{qif(peer.name)}/address").stdout.strip()
            addr = f"{net}.{2 - i}"
            defer(node_undo(lag.node, "neigh_del", name=mine.name, addr=addr))
            lag.node.run(f"ip neigh replace {addr} lladdr {check_mac(mac)} dev {qif(mine.name)} "
                         "nud permanent")
    for net in VLANS.values():
        pair.a.node.run(f"ping -c 2 -i 0.2 -W 2 {net}.2 >/dev/null", check=False)
    return pair


@pytest.mark.parametrize("case", _ci_first(SWITCH_LACP_CASES))
def test_vlans_on_the_lag_through_a_vlan_aware_bridge(lag_pair, lab_rt, case, measure, defer):
    """VLANs 100 and 200 on each host LAG, the switch LAGs tagged members of a
    VLAN-aware bridge, the LAG's own address untagged: probe traffic on each is
    delivered, and frames tagged with each VLAN are seen on every member of both
    switch LAGs (in from the sender, out to the receiver)."""
    pair = _vlan_pair(lag_pair, case, defer)
    drv = driver_of(pair, lab_rt)
    a, b = _hosts(pair)
    dirs = [(p, "in") for p in pair.switch_ports[a]] + [(p, "out") for p in pair.switch_ports[b]]
    problems = []
    for vid, net in [(None, pair.ip_b.rsplit(".", 1)[0])] + list(VLANS.items()):
        dst = f"{net}.2"
        if vid is None:
            res = Probe(pair.a.node, pair.b.node, dst, flows=8, rate_pps=200, duration_s=2.0).run()
            counts = None
        else:
            with TaggedFrames(drv.node, dirs, vid) as t:
                res = Probe(pair.a.node, pair.b.node, dst, flows=8, rate_pps=200,
                            duration_s=2.0, base_port=47100).run()
            counts = t.counts
            for p, _d in dirs:
                if not counts.get(p):
                    problems.append(f"VLAN {vid}: no frame tagged {vid} on {drv.node.name}:{p} "
                                    f"({counts})")
        lost = sum(f["tx_count"] - f["rx_count"] for f in res.flows)
        measure.record(Measurement(f"VLAN {vid or 'untagged'} lost", lost, "pkt",
                                   "probe packets sent - received, 8 flows x 200 pkt/s x 2 s",
                                   resolution=1.0))
        print(f"VLAN {vid or 'untagged'} -> {dst}: lost {lost}, tagged frames {counts}")
        if lost:
            problems.append(f"{'VLAN ' + str(vid) if vid else 'untagged'} to {dst}: {lost} of "
                            f"{sum(f['tx_count'] for f in res.flows)} probe packets lost")
    assert not problems, "; ".join(problems)


class _NotRecorded:
    def record(self, m):
        return m


def _judge_step(s, bound, measure, profile, case_key, flowing_before=True, record=True):
    """The step's figures recorded (outage and loss, max over flows, against the
    bound) and its problems (laghil.measure.steps.step_problems: a flow that
    never arrived, stopped for good, or lost more than the bound allows).
    ``record=False`` for a negative control: its figures are meant to fail and
    are judged, not recorded (the report would count the control a failure)."""
    gap = s.outage.t_gap_max_ms or 0.0
    kind, allowed = allowance_of(bound)
    common = {"resolution": s.outage.resolution_ms, "threshold": bound.ms, "comparison": "<=",
              "profile": profile.label, "basis": bound.describe(),
              # each step judged alone: `laghil profile derive` derives step_ms from these
              "bound": {"case_key": case_key, "allowance": kind, "allowance_ms": allowed,
                        "config_ms": bound.ms - allowed, "statistic": "each"}}
    if not record:
        measure = _NotRecorded()
    measure.record(Measurement(f"{s.label}: T_gap max", gap, "ms",
                               "gap outage per flow across the step (packets never received x "
                               "1/R), max over flows", **common))
    if flowing_before:
        measure.record(Measurement(f"{s.label}: T_loss max", s.outage.t_loss_max_ms, "ms",
                                   "loss-derived outage (Tx-Rx)/R per flow over the step's "
                                   "probe, max over flows", **common))
    else:
        firsts = [f.get("first") for f in s.res.flows]
        late = (max((t - s.step_t - s.step_s) * 1e3 for t in firsts)
                if firsts and None not in firsts else None)
        measure.record(Measurement(f"{s.label}: resumed after", late, "ms",
                                   "first arrival per flow minus the end of the step's commands "
                                   f"(they took {s.step_s * 1e3:.0f} ms; receiver clock), max "
                                   "over flows", **common))
    print(f"{s.label}: T_gap max {gap:.1f} ms, T_loss max {s.outage.t_loss_max_ms:.1f} ms "
          f"(bound {bound.describe()}), step took {s.step_s * 1e3:.0f} ms, lossless {s.lossless}")
    return step_problems(s, bound.ms, flowing_before=flowing_before)


def _wait_in_use(drv, pair, lag, ports, timeout=20):
    """Until every member is selected on the switch LAG and in use on the host's."""
    def check():
        sel = drv.lag_state(lag).selected
        if sorted(sel) != sorted(ports):
            return f"switch {lag} selected {sel} of {ports}"
        used = host_in_use(pair.a)
        return (None if sorted(used) == sorted(pair.a.members)
                else f"host uses {used} of {pair.a.members}")
    wait_until(check, timeout=timeout, interval=0.3, what=f"{drv.node.name}:{lag} and {pair.a.node.name}:"
               f"{pair.a.name}: every member in use")


def _stepper(pair, case, measure, profile, defer, problems):
    """``step(label, action, lacp_timeout, after_s, flowing_before)``: one
    configuration step under probe traffic on VLAN 100 (4 flows x 500 pkt/s),
    judged alone against its bound (:func:`step_bound`), problems appended."""
    dst = f"{VLANS[100]}.2"

    def step(label, action, lacp_timeout=False, after_s=2.5, flowing_before=True):
        s = run_step(pair.a.node, pair.b.node, dst, label, action, defer=defer, flows=4,
                     rate_pps=500, after_s=after_s)
        problems.extend(_judge_step(s, step_bound(label, case, profile, 1e3 / 500, lacp_timeout),
                                    measure, profile, case.key, flowing_before=flowing_before))
        return s
    return step


@pytest.mark.parametrize("case", _ci_first(SWITCH_LACP_CASES))
def test_member_steps_under_traffic(lag_pair, lab_rt, lab, case, measure, profile, pytestconfig,
                                    defer):
    """router_bridge_lag.sh's member steps, under probe traffic over VLAN 100:
    each member of the sender's switch LAG taken out (the host must stop using
    it when its LACP partner times out) and put back (no loss past the
    allowances); no kernel fault on the switch. A platform that cannot take a
    member out and keep the LAG (OVS: no bond of one interface) skips naming it."""
    pair = _vlan_pair(lag_pair, case, defer)
    drv = driver_of(pair, lab_rt)
    a = pair.a.node.name
    lag, ports = pair.switch_lags[a], pair.switch_ports[a]
    mark = drv.log_mark()
    problems = []
    step = _stepper(pair, case, measure, profile, defer, problems)
    for p in ports:
        # a member leaving an LACP LAG: the host stops using it when the switch
        # tells it (a last LACPDU out of sync, as Linux sends) or when its partner
        # times out (a NOS that just stops sending): the driver says which
        try:
            out = step(f"{p} out of {lag}", lambda: drv.lag_member_remove(lag, p, defer=defer),
                       lacp_timeout=not drv.lacp_leave_notifies, after_s=5.0)
        except SwitchRefused as e:
            if e.capability is None:
                raise
            lacks(pytestconfig, e.capability, lab, str(e))
        hm = lab_rt.lab.far_end(pair.switch, p).port
        if hm in host_in_use(pair.a):
            problems.append(f"{p} out of {lag}: {a}:{hm} still in use 5 s later (its LACP "
                            "partner stopped: the host must deselect it within the timeout)")
        step(f"{p} back into {lag}", out.value)
        _wait_in_use(drv, pair, lag, ports)
    faults = drv.kernel_faults(mark)
    if faults:
        problems.append(f"{drv.node.name}: kernel faults during the steps: {faults[:5]}")
    assert not problems, f"{len(problems)} problem(s):\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("case", _ci_first(SWITCH_LACP_CASES))
def test_bridge_steps_under_traffic(lag_pair, lab_rt, case, measure, profile, defer):
    """router_bridge_lag.sh's bridge steps, under probe traffic over VLAN 100:
    the sender's switch LAG taken out of the bridge (no FDB entry left on it)
    and put back (traffic resumes within the allowances); no kernel fault on
    the switch."""
    pair = _vlan_pair(lag_pair, case, defer)
    drv = driver_of(pair, lab_rt)
    a = pair.a.node.name
    lag, ports, br = pair.switch_lags[a], pair.switch_ports[a], pair.bridge
    mark = drv.log_mark()
    problems = []
    step = _stepper(pair, case, measure, profile, defer, problems)
    out = run_step(pair.a.node, pair.b.node, f"{VLANS[100]}.2", f"{lag} out of {br}",
                   lambda: drv.bridge_member_remove(br, lag, defer=defer), defer=defer,
                   flows=4, rate_pps=500, after_s=1.0)
    stale = drv.fdb_on(br, [lag] + ports)
    if stale:
        problems.append(f"{lag} out of {br}: stale FDB entries {stale}")
    print(f"{lag} out of {br}: lost {sum(f['lost'] for f in out.res.flows)} (expected: the LAG "
          "is not bridged)")
    step(f"{lag} back into {br}", out.value, flowing_before=False)
    faults = drv.kernel_faults(mark)
    if faults:
        problems.append(f"{drv.node.name}: kernel faults during the steps: {faults[:5]}")
    assert not problems, f"{len(problems)} problem(s):\n  " + "\n  ".join(problems)


@pytest.mark.disruptive
@pytest.mark.parametrize("case", _ci_first(SWITCH_LACP_CASES))
def test_a_blackholed_member_fails_the_step_naming_flows(lag_pair, lab_rt, case, measure,
                                                         profile, defer):
    """Negative control of the step judgement (issue 21, item 5): one member of the
    sender's switch LAG drops every data frame it receives while its LACP runs on
    (seeded through the switch driver). A step taken then must fail, naming the
    flows the host hashes onto that member and the step; judged by its largest
    gap alone it would pass, since a flow that never arrives has no gap."""
    pair = _vlan_pair(lag_pair, case, defer)
    drv = driver_of(pair, lab_rt)
    a = pair.a.node.name
    lag, ports = pair.switch_lags[a], pair.switch_ports[a]
    # the member the flows ride: the host's hash (a team's is not the bond's, so
    # not computed here) decides; the step's own flows, sent once before, show it
    host, members = pair.a.node, list(pair.a.members)

    def sent():
        return {m: c["tx_packets"] for m, c in
                read_counters(host, members)[1].items()}
    before = sent()
    run_step(host, pair.b.node, f"{VLANS[100]}.2", "which member carries the flows",
             lambda: None, defer=defer, flows=4, rate_pps=500, hold_s=0.5, after_s=1.0)
    carried = {m: n - before[m] for m, n in sent().items()}
    busiest = max(carried, key=carried.get)
    bad = lab_rt.lab.far_end(a, busiest).port
    assert bad in ports, f"{a}:{busiest} is cabled to {bad}, not a member of {lag} ({ports})"
    try:
        drv.member_blackhole(bad, defer=defer)
    except SwitchError as e:
        pytest.skip(f"switch {drv.node.name} lacks capability 'member blackhole' (a seeded "
                    f"data-plane defect): {e}")
    label = f"{bad} of {lag} blackholed, LACP running (no change)"
    s = run_step(pair.a.node, pair.b.node, f"{VLANS[100]}.2", label, lambda: None, defer=defer,
                 flows=4, rate_pps=500, after_s=2.5)
    bound = step_bound(label, case, profile, 1e3 / 500)
    problems = _judge_step(s, bound, measure, profile, case.key, record=False)
    print(f"{label}: T_gap max {s.outage.t_gap_max_ms} ms (bound {bound.ms:g}); received per "
          f"flow {[f['rx_count'] for f in s.res.flows]} of {[f['tx_count'] for f in s.res.flows]};"
          f" problems: {problems}")
    dead = [f for f in s.res.flows if f["rx_count"] == 0]
    assert dead, (f"no flow hashed onto {bad}: rx per flow {[f['rx_count'] for f in s.res.flows]} "
                  "(the control proves nothing)")
    for f in dead:
        named = f"{label}: flow {f['flow']} (port {f['dst_port']}): none of its"
        assert any(p.startswith(named) for p in problems), (
            f"flow {f['flow']} received nothing through the blackholed {bad}, and the step's "
            f"judgement did not name it: {problems}")
    assert (s.outage.t_gap_max_ms or 0.0) <= bound.ms, (
        f"the largest gap {s.outage.t_gap_max_ms} ms is over the bound {bound.ms:g} ms: this "
        "control is meant to show a blackhole that a gap-only judgement misses")


@pytest.mark.parametrize("case", _ci_first(SWITCH_LACP_CASES))
def test_lag_deleted_with_uppers(lag_pair, lab_rt, case, measure, defer):
    """The switch LAG deleted while it is a tagged member of the bridge
    (rtnetlink.sh lag_dev_deletion_test): the bridge loses the port, no FDB
    entry is left on the LAG or its members, no kernel fault; rebuilt, its
    members are selected again and VLAN traffic is delivered."""
    pair = _vlan_pair(lag_pair, case, defer)
    drv = driver_of(pair, lab_rt)
    a = pair.a.node.name
    lag, ports, br = pair.switch_lags[a], pair.switch_ports[a], pair.bridge
    mark = drv.log_mark()
    rebuild = drv.lag_delete(lag, defer=defer)
    problems = []
    left = drv.fdb_on(br, [lag] + ports)
    if left:
        problems.append(f"after deleting {lag}: FDB entries left {left}")
    left = drv.left_behind(lag, ports)
    if left:
        problems.append(f"{lag} deleted, and still there: {left}")
    rebuild()
    _wait_in_use(drv, pair, lag, ports, timeout=30)
    res = Probe(pair.a.node, pair.b.node, f"{VLANS[100]}.2", flows=4, rate_pps=200,
                duration_s=2.0).run()
    lost = sum(f["tx_count"] - f["rx_count"] for f in res.flows)
    measure.record(Measurement("VLAN 100 lost after rebuild", lost, "pkt",
                               "probe packets sent - received after the LAG was rebuilt",
                               resolution=1.0))
    if lost:
        problems.append(f"rebuilt {lag}: {lost} probe packets lost on VLAN 100")
    faults = drv.kernel_faults(mark)
    if faults:
        problems.append(f"{drv.node.name}: kernel faults: {faults[:5]}")
    assert not problems, "; ".join(problems)


@pytest.mark.failover
@pytest.mark.disruptive
@pytest.mark.parametrize("case", _ci_first(SWITCH_LAG_CASES))
def test_switch_port_shutdown_fails_over(lag_pair, lab_rt, case, measure, profile, reps,
                                         pytestconfig, defer):
    """A member's port shut on the switch (through its driver): the host LAG
    fails over within the configuration's bounds, and while the port is down the
    member is out of use on both sides (switch LAG and host LAG)."""
    pair = _make(lag_pair, case)
    drv = driver_of(pair, lab_rt)
    a = pair.a.node.name
    lag = pair.switch_lags[a]

    # out of use within what the configuration allows the host to see the carrier
    # go (the twin's igb reports it 7-17 or 590-624 ms late, teamd acts after)
    limit_s = max(gap_bound(case, profile, 1.0, d).ms
                  for d in member_drivers(pytestconfig, pair) or [""]) / 1e3

    def observe(member):
        seen = {"port": lab_rt.lab.far_end(a, member).port}

        def out_of_use():
            seen.update(switch=drv.lag_state(lag).selected, host=host_in_use(pair.a))
            gone = seen["port"] not in seen["switch"] and member not in seen["host"]
            return None if gone else seen
        try:
            seen["after_s"] = wait_until(out_of_use, timeout=limit_s, interval=0.05,
                                         what=f"{a}:{member} out of use")
        except WaitTimeout:
            seen["after_s"] = None
        return seen

    trials = run_trials(lab_rt, pair, case, reps, pytestconfig, defer=defer,
                        method="switch_shutdown", observe=observe)
    figs = record_failover(trials, case, measure, profile)
    seen = []
    for t in trials:
        o = t.observed
        if o["port"] in o["switch"] or t.member in o["host"]:
            seen.append(f"{t.member}/{o['port']} still in use {limit_s * 1e3:.0f} ms into "
                        f"the shutdown (the bound of its T_gap): switch {lag} selected "
                        f"{o['switch']}, host uses {o['host']}")
    assert not seen, "; ".join(seen)
    assert_failover(trials, pair, case, figs)


@pytest.mark.disruptive
@pytest.mark.parametrize("case", _ci_first(SWITCH_LACP_CASES))
def test_min_links_takes_the_lag_down(lag_pair, lab_rt, lab, case, defer):
    """A switch LAG with min_links 2 goes oper-down when a member's port is shut
    and comes back up with it."""
    pair = _make(lag_pair, case, switch_lag={"min_links": 2})
    drv = driver_of(pair, lab_rt)
    a = pair.a.node.name
    lag, ports = pair.switch_lags[a], pair.switch_ports[a]
    st = drv.lag_state(lag)
    assert st.min_links == 2 and st.oper_up, f"{lag}: min_links {st.min_links}, up {st.oper_up}"
    cable = lab.cable_of(pair.switch, ports[0])
    with fault(lab_rt, cable.name, defer=defer, kind="switch_shutdown"):
        wait_until(lambda: None if not drv.lag_state(lag).oper_up else "still up", timeout=10,
                   what=f"{drv.node.name}:{lag} oper down with 1 of min_links 2 members")
    wait_until(lambda: None if drv.lag_state(lag).oper_up else "still down", timeout=20,
               what=f"{drv.node.name}:{lag} oper up again with both members")
