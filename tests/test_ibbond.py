"""IB device bonding helpers (laghil.drivers.ibbond): the lab's aggregate
declarations, the stock tools' command lines, what ibv_devinfo must show.
The parsers run on output captured on the virtual rack (rxe over a bond)."""

from pathlib import Path

import pytest
import yaml

from laghil.drivers.ibbond import (Devinfo, DevinfoPort, aggregate_problems, parse_ibv_devinfo,
                                   parse_tool_output, tool_commands)
from laghil.errors import BadName, LabError
from laghil.lab import load_lab

CAP = Path(__file__).parent / "data" / "captures"


def test_the_labs_declare_their_aggregates():
    v = load_lab("virtual").hosts["h1"].rdma_aggregates[0]
    assert (v.name, v.provider, v.stand_in, v.mode) == ("rxe_lgbond0", "rxe", True,
                                                        "active-active")
    assert [m.netdev for m in v.members] == ["eth1", "eth2"]
    r = load_lab("rack3").hosts["srv1"].rdma_aggregates[0]
    assert r.name == "mlx5_bond_0" and [m.device for m in r.members] == ["mlx5_0", "mlx5_1"]


def test_an_aggregate_member_that_is_not_a_port_is_named(tmp_path):
    doc = yaml.safe_load(Path("labs/virtual.yaml").read_text())
    doc["hosts"]["h1"]["rdma_aggregates"][0]["members"][1]["netdev"] = "eth9"
    f = tmp_path / "virtual.yaml"
    f.write_text(yaml.safe_dump(doc))
    with pytest.raises(LabError, match=r"rdma_aggregates\[0\]\.members\[1\]\.netdev: aggregate "
                                       r"'rxe_lgbond0' member netdev 'eth9' is not a port of h1"):
        load_lab(f)


def test_stock_tool_command_lines_name_only_the_device():
    s, c = tool_commands("ibv_rc_pingpong", "rxe_lgbond0", 1, "192.168.201.2", 100, port=18600)
    assert s == "timeout 60 ibv_rc_pingpong -d rxe_lgbond0 -g 1 -n 100 -p 18600"
    assert c == s + " 192.168.201.2"
    s, c = tool_commands("ibv_ud_pingpong", "rxe_lgbond0", 1, "192.168.201.2", 100)
    assert "-s 512" in s
    s, c = tool_commands("rping", "rxe_lgbond0", 1, "192.168.201.2", 10)
    assert "-d" not in c and c == "timeout 60 rping -c -a 192.168.201.2 -C 10 -v"
    with pytest.raises(BadName):
        tool_commands("ib_send_lat", "rxe0;reboot", 1, "192.168.201.2")


def test_what_ibv_devinfo_must_show_of_an_aggregate():
    d = load_lab("virtual").hosts["h1"].rdma_aggregates[0]
    good = {"rxe_lgbond0": Devinfo("rxe_lgbond0", 1, "InfiniBand (0)",
                                   {1: DevinfoPort(1, "PORT_ACTIVE", "Ethernet", 1024)})}
    assert aggregate_problems(good, d) == []
    bad = {"rxe_lgbond0": Devinfo("rxe_lgbond0", 2, "InfiniBand (0)",
                                  {1: DevinfoPort(1, "PORT_DOWN", "InfiniBand", 1024),
                                   2: DevinfoPort(2, "PORT_ACTIVE", "Ethernet", 1024)})}
    problems = aggregate_problems(bad, d)
    assert any("2 ports" in p for p in problems) and any("PORT_DOWN" in p for p in problems)
    assert any("link layer InfiniBand, declared Ethernet" in p for p in problems)


CAPTURES = sorted(CAP.glob("h1-ibv_devinfo-*.txt"))


@pytest.mark.skipif(not CAPTURES, reason="no ibv_devinfo capture")
def test_ibv_devinfo_on_the_captured_stand_in():
    info = parse_ibv_devinfo(CAPTURES[0].read_text())
    (dev,) = info.values()
    assert dev.hca_id == "rxe_lgbond0" and dev.phys_port_cnt == 1
    assert dev.ports[1].state == "PORT_ACTIVE" and dev.ports[1].link_layer == "Ethernet"


@pytest.mark.parametrize("tool", ["ibv_rc_pingpong", "ibv_ud_pingpong", "ib_send_lat", "rping"])
def test_stock_tool_outputs_captured_on_the_rack(tool):
    f = CAP / f"h1-{tool}-client.txt"
    if not f.exists():
        pytest.skip(f"no capture of {tool}")
    got = parse_tool_output(f.read_text(), tool)
    assert got["iters"] >= 10
