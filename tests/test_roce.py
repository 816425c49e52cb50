"""RoCE LAG pure parts: the RDMA inventory parser and checks on captured output,
the RDMA probe's merge and verdicts on captured agent results (a healthy run
and a negative control where the receiver black-holed RoCE for 1 s), and the
agent's argument checks."""

import json
from pathlib import Path

import pytest

from laghil.drivers.roce import Gid, parse_inventory, roce_lag_problems
from laghil.measure.agent import rdma_agent
from laghil.measure.analysis import theoretical_rc_survival_s
from laghil.measure.rdma_probe import RdmaProbe, RdmaProbeResult, lag_port_remap, merge_rdma

CAP = Path(__file__).parent / "data" / "captures"
INV = (CAP / "h1-rdma-inventory-rxe-bond0.txt").read_text()
HEALTHY = json.loads((CAP / "rdma-probe-8023ad-healthy-2qp.json").read_text())
BLACKHOLE = json.loads((CAP / "rdma-probe-8023ad-blackhole-1s-retry1-timeout12.json").read_text())
LAG_ADDRS = {"192.168.201.1", "fe80::5054:ff:fe00:101"}


def _result(cap):
    s, r = cap["sender"], cap["receiver"]
    flows = merge_rdma(s, r, s["qps"], s["rate_pps"])
    return RdmaProbeResult(s["rate_pps"], flows, s, r, 10.0)


def test_inventory_of_rxe_on_a_bond():
    devs = parse_inventory(INV)
    assert list(devs) == ["rxe0"]
    d = devs["rxe0"]
    assert (d.provider, d.parent, d.netdevs) == ("rxe", "bond0", {"bond0"})
    (port,) = d.ports.values()
    assert (port.num, port.state, port.link_layer) == (1, "4: ACTIVE", "Ethernet")
    assert [(g.index, g.type, g.ndev) for g in port.gids] == [(0, "RoCE v2", "bond0"),
                                                              (1, "RoCE v2", "bond0")]
    assert port.roce_v2_ips() == LAG_ADDRS


def test_gid_decodes_ipv4_mapped_and_ipv6():
    assert Gid(1, "0000:0000:0000:0000:0000:ffff:c0a8:c901", "RoCE v2", "bond0").ip == "192.168.201.1"
    assert Gid(0, "fe80:0000:0000:0000:5054:00ff:fe00:0101", "RoCE v2", "bond0").ip == \
        "fe80::5054:ff:fe00:101"


def test_roce_lag_holds_on_the_captured_rack():
    assert roce_lag_problems(parse_inventory(INV), "bond0", ["eth1", "eth2"], LAG_ADDRS) == []


def test_roce_lag_problems_name_what_is_wrong():
    devs = parse_inventory(INV)
    p = roce_lag_problems(devs, "bond0", ["eth1", "eth2"], LAG_ADDRS | {"192.168.209.1"})
    assert len(p) == 1 and "192.168.209.1" in p[0] and "rxe0/1" in p[0]
    # a member still exposing its own RDMA device (mlx5 outside LAG, or an rxe on a member)
    text = INV.replace('"netdev":"bond0","netdev_index":7}]',
                       '"netdev":"bond0","netdev_index":7},{"ifindex":1,"ifname":"rxe1","port":1,'
                       '"state":"ACTIVE","physical_state":"LINK_UP","netdev":"eth1","netdev_index":3}]')
    text += "@@dev rxe1\nnode_type 1: CA\nparent eth1\n@@port 1|4: ACTIVE|5: LinkUp|Ethernet\n"
    p = roce_lag_problems(parse_inventory(text), "bond0", ["eth1", "eth2"], LAG_ADDRS)
    assert p == ["member netdevs ['eth1', 'eth2'] still expose RDMA devices ['rxe1']"]
    # no device on the bond at all
    p = roce_lag_problems(parse_inventory(INV), "team0", ["eth1", "eth2"], set())
    assert p == ["0 RDMA devices bound to team0 ([]), want exactly one"]


def test_roce_lag_problems_port_down_and_stray_gid():
    text = INV.replace("4: ACTIVE|", "1: DOWN|").replace("|RoCE v2|bond0\n", "|RoCE v2|eth2\n", 1)
    p = roce_lag_problems(parse_inventory(text), "bond0", ["eth1", "eth2"], LAG_ADDRS)
    assert any("state '1: DOWN', want ACTIVE" in x for x in p), p
    assert any("GIDs on other netdevs ['eth2']" in x for x in p), p


def test_healthy_rdma_probe_result():
    res = _result(HEALTHY)
    assert res.problems() == []
    assert res.states() == {"tx": ["RTS", "RTS"], "rx": ["RTS", "RTS"]}
    assert [f["lost"] for f in res.flows] == [0, 0]
    assert [f["tx_count"] for f in res.flows] == [f["sent"] for f in HEALTHY["sender"]["flows"]]
    o = res.outage()
    assert o.t_loss_max_ms == 0 and o.n_flows == 2
    assert 0 < o.t_gap_max_ms < 100, o      # steady traffic: only scheduling jitter
    figs = {m.name: m for m in res.measurements()}
    assert figs["error completions"].value == 0
    assert figs["RC survival bound"].value == pytest.approx(8 * 4.096e-3 * 2 ** 14)


def test_blackholed_rdma_probe_result_reports_the_lost_connection():
    res = _result(BLACKHOLE)
    errs = res.errors()
    assert {(e["flow"], e["name"]) for e in errs if e["status"] == 12} == {(0, "RETRY_EXC_ERR"),
                                                                         (1, "RETRY_EXC_ERR")}
    assert all(e["side"] == "tx" for e in errs)
    assert res.states() == {"tx": ["ERR", "ERR"], "rx": ["RTS", "RTS"]}
    p = res.problems()
    assert any("IBV_WC_RETRY_EXC_ERR (status 12)" in x for x in p), p
    assert any("tx QPs not in RTS" in x for x in p), p
    assert any("never delivered" in x for x in p), p     # the flushed WQEs
    assert res.survival_bound_s == pytest.approx(2 * 4.096e-6 * 2 ** 12)
    assert {m.name: m.value for m in res.measurements()}["error completions"] == \
        sum(e["count"] for e in errs)


def test_merge_fills_a_qp_the_receiver_never_saw():
    s = dict(HEALTHY["sender"])
    r = dict(HEALTHY["receiver"], flows=HEALTHY["receiver"]["flows"][:1])
    res = RdmaProbeResult(200.0, merge_rdma(s, r, 2, 200.0), s, r, 10.0)
    assert res.flows[1]["rx_count"] == 0 and res.flows[1]["lost"] == s["flows"][1]["sent"]
    assert any("never delivered" in x for x in res.problems())


def test_agent_survival_bound_matches_the_analysis():
    for retry, timeout in [(7, 14), (1, 12), (0, 1), (7, 31)]:
        assert rdma_agent.survival_bound_s(retry, timeout) == \
            pytest.approx(theoretical_rc_survival_s(retry, timeout))


@pytest.mark.parametrize("args,msg", [
    (["send", "--dst", "10.0.0.2", "--rate", "100", "--duration", "1", "--timeout", "0"],
     "--timeout must be 1..31"),
    (["send", "--dst", "10.0.0.2", "--rate", "100", "--duration", "1", "--retry-cnt", "8"],
     "--retry-cnt must be 0..7"),
    (["send", "--dst", "10.0.0.2", "--rate", "0", "--duration", "1"], "--rate must be"),
    (["recv", "--bind", "10.0.0.2", "--duration", "1", "--qps", "0"], "--qps must be 1..64"),
    (["recv", "--bind", "10.0.0.2", "--duration", "0"], "--duration must be"),
    (["recv", "--bind", "10.0.0.2", "--duration", "1", "--ud"], "--ud needs --device"),
    (["send", "--dst", "10.0.0.2", "--rate", "100", "--duration", "1", "--ud", "--device",
      "rxe0"], "send --ud needs --remote-qpns and --remote-gid"),
    (["recv", "--bind", "10.0.0.2", "--duration", "1", "--ud", "--device", "rxe0",
      "--gid-index", "256"], "--gid-index must be 0..255"),
])
def test_agent_refuses_bad_arguments_before_touching_verbs(args, msg, capsys):
    assert rdma_agent.main(args) == 2
    assert msg in capsys.readouterr().err


class _Node:
    name = "h1"


def test_rdma_probe_commands_and_parameter_checks():
    with pytest.raises(ValueError, match="timeout 0"):
        RdmaProbe(_Node(), _Node(), "192.168.201.2", timeout=0)
    with pytest.raises(ValueError, match="qps must be"):
        RdmaProbe(_Node(), _Node(), "192.168.201.2", qps=65)
    with pytest.raises(ValueError):
        RdmaProbe(_Node(), _Node(), "192.168.201.2", retry_cnt=8)
    p = RdmaProbe(_Node(), _Node(), "192.168.201.2", qps=3, rate_pps=250, duration_s=6,
                  retry_cnt=2, timeout=16)
    p._files = {"ready": "/tmp/r", "sending": "/tmp/s"}
    send = p._send_command("/tmp/a/rdma_agent.py")
    assert "--retry-cnt 2 --timeout 16" in send and "--qps 3 --rate 250" in send
    recv = p._recv_command("/tmp/a/rdma_agent.py", 30.0)
    assert "--bind 192.168.201.2" in recv and "--qps 3" in recv
    assert p.survival_bound_s == pytest.approx(3 * 4.096e-6 * 2 ** 16)


def _samples(spec):
    """[(t, [active port per QP])] -> agent lag_ports samples."""
    return [{"t": t, "desired": [1, 2] * (len(a) // 2), "active": a} for t, a in spec]


def test_lag_port_remap_of_a_queue_affinity_failover():
    s = _samples([(9.9, [1, 2, 1, 2]), (10.0, [1, 2, 1, 2]), (10.05, [1, 2, 1, 2]),
                  (10.10, [2, 2, 2, 2]), (11.5, [2, 2, 2, 2]), (12.5, [1, 2, 1, 2])])
    m = lag_port_remap(s, 1, fault_t=10.02, restore_t=12.4)
    assert m.before == {0: 1, 1: 2, 2: 1, 3: 2}
    assert m.on_failed_before == [0, 2]
    assert m.remap_ms == pytest.approx(80.0)
    assert m.stuck == {}
    assert m.resolution_ms == pytest.approx(100.0)


def test_lag_port_remap_reports_qps_left_on_the_failed_port():
    s = _samples([(9.9, [1, 2]), (10.5, [1, 2]), (11.2, [1, 2]), (11.4, [1, 2])])
    m = lag_port_remap(s, 1, fault_t=10.0, restore_t=12.0)
    assert m.remap_ms is None
    assert m.stuck == {0: [11.2, 11.4]}


def test_agent_refuses_a_bad_lag_port_interval(capsys):
    args = ["send", "--dst", "10.0.0.2", "--rate", "100", "--duration", "1",
            "--lag-port-every", "0.001"]
    assert rdma_agent.main(args) == 2
    assert "--lag-port-every must be" in capsys.readouterr().err


def test_rxe_skb_failures_from_the_kernel_log_of_an_active_backup_failover():
    from laghil.drivers.rdma.rxe import failed_qps as rxe_failed_qps
    from laghil.kevents import KernelEvent, parse_dmesg
    recs = parse_dmesg((CAP / "h1-kernel-log-rxe-ab-failover.txt").read_text())
    evs = [KernelEvent(t, msg) for t, msg in recs]
    assert rxe_failed_qps(evs) == {17: 812.574357, 18: 812.574690}
    # the failover that caused them, 27 ms earlier
    fo = [e.t for e in evs if "making interface the new active one" in e.message and e.t > 800]
    assert fo[0] == pytest.approx(812.547624)
    assert rxe_failed_qps([e for e in evs if e.t < 812]) == {}


class _Receiver(_Node):
    name = "h2"

    def __init__(self, ready):
        self.ready, self.cmds = ready, []

    def run(self, cmd, **kw):
        self.cmds.append(cmd)
        return type("R", (), {"stdout": self.ready, "rc": 0})()


def test_ud_probe_takes_the_receivers_qps_and_gid_from_its_ready_file():
    from laghil.measure.probe import ProbeError
    from laghil.measure.rdma_probe import UdProbe, UdProbeResult
    rx = _Receiver('{"pid": 7, "qpns": [17, 18], "gid": "::ffff:192.168.201.2", "gid_index": 1}')
    p = UdProbe(_Node(), rx, "192.168.201.2", device="rxe_lgbond0", gid_index=1,
                peer_device="rxe_lgbond0", peer_gid_index=1, qps=2, rate_pps=500, duration_s=6)
    p._files = {"ready": "/tmp/r", "sending": "/tmp/s"}
    recv = p._recv_command("/tmp/a/rdma_agent.py", 30.0)
    assert recv.endswith("--ud --device rxe_lgbond0 --gid-index 1") and "--qps 2" in recv
    send = p._send_command("/tmp/a/rdma_agent.py")
    assert rx.cmds == ["cat /tmp/r"]
    assert send.endswith("--ud --device rxe_lgbond0 --gid-index 1 --remote-qpns 17,18 "
                         "--remote-gid ::ffff:192.168.201.2")
    assert p.survival_bound_s is None
    rx.ready = "12345"          # an RC receiver's ready file: its pid only
    with pytest.raises(ProbeError, match="h2: UD receiver's ready file is not its QPs and GID"):
        p._send_command("/tmp/a/rdma_agent.py")
    # UD loses in an outage: loss is the outage measure, not a failure; an error
    # completion or a QP out of RTS is
    s = json.loads(json.dumps(HEALTHY["sender"]))
    s["flows"][1]["sent"] += 10             # ten messages the receiver never got
    res = UdProbeResult(200.0, merge_rdma(s, HEALTHY["receiver"], 2, 200.0), s,
                        HEALTHY["receiver"], 10.0)
    assert res.flows[1]["lost"] == 10 and res.problems() == []
    assert RdmaProbeResult(200.0, merge_rdma(s, HEALTHY["receiver"], 2, 200.0), s,
                           HEALTHY["receiver"], 10.0).problems()      # RC: a failure
    assert "error completions" not in {m.name for m in res.measurements()}
