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


def test_ibv_devinfo_v_on_the_captured_stand_in():
    """ibv_devinfo -v -d rxe_lgbond0 captured on the rack (h1, Soft-RoCE over
    the 802.3ad bond with 192.168.201.1): one port, its GID table."""
    info = parse_ibv_devinfo((CAP / "h1-ibv_devinfo-v-rxe_lgbond0.txt").read_text())
    (dev,) = info.values()
    assert dev.hca_id == "rxe_lgbond0" and dev.phys_port_cnt == 1
    p = dev.ports[1]
    assert (p.state, p.link_layer, p.active_mtu) == ("PORT_ACTIVE", "Ethernet", 1024)
    assert [(g.index, g.gid, g.type) for g in p.gids] == [
        (0, "fe80::5054:ff:fe00:101", "RoCE v2"), (1, "::ffff:192.168.201.1", "RoCE v2")]
    assert aggregate_problems(info, load_lab("virtual").hosts["h1"].rdma_aggregates[0]) == []


@pytest.mark.parametrize("tool,iters,usec", [("ibv_rc_pingpong", 100, 4772.67),
                                             ("ibv_ud_pingpong", 100, 617.14),
                                             ("ib_send_lat", 100, 422.82), ("rping", 100, None)])
def test_stock_tool_outputs_captured_on_the_rack(tool, iters, usec):
    """Each tool's client output on the rack (h1 -> h2; rping over rxe on eth1)."""
    got = parse_tool_output((CAP / f"h1-{tool}-client.txt").read_text(), tool)
    assert got == {"iters": iters, "usec": usec}


def test_a_tool_output_without_its_result_line_is_a_parse_error_naming_the_tool():
    from laghil.drivers.ibbond import IbBondError
    text = (CAP / "h1-ibv_rc_pingpong-client.txt").read_text().splitlines()
    with pytest.raises(IbBondError, match="ibv_rc_pingpong: no 'iters in"):
        parse_tool_output("\n".join(text[:2]), "ibv_rc_pingpong")


SAMPLES = Path(__file__).parent / "data" / "samples"


def test_ibv_devinfo_v_of_an_mlx5_bond_device_with_its_gid_table():
    """A documented sample in ibv_devinfo -v's format (tests/data/samples/README.md)."""
    info = parse_ibv_devinfo((SAMPLES / "rdma-core-format--mlx5_bond_0_ibv_devinfo_v.txt").read_text())
    (dev,) = info.values()
    assert (dev.hca_id, dev.phys_port_cnt, dev.vendor_id) == ("mlx5_bond_0", 1, "0x02c9")
    p = dev.ports[1]
    assert (p.state, p.link_layer, p.active_mtu, p.port_lid) == ("PORT_ACTIVE", "Ethernet", 1024, 0)
    assert [(g.index, g.type) for g in p.gids] == [(0, "RoCE v1"), (1, "RoCE v2"), (2, "RoCE v1"),
                                                    (3, "RoCE v2")]
    assert [g.gid for g in p.roce_v2_gids()] == ["fe80::e42:a1ff:fe3e:11a0", "::ffff:192.168.201.1"]
    d = load_lab("rack3").hosts["srv1"].rdma_aggregates[0]
    assert aggregate_problems(info, d) == []


def test_the_aggregate_is_found_by_the_netdev_it_sits_on_not_by_name():
    from laghil.drivers.ibbond import IbBondError, find_aggregate, parse_rdma_link
    from laghil.drivers.roce import parse_inventory
    mlx5 = parse_inventory((SAMPLES / "iproute2-format--mlx5_bond_0_inventory.txt").read_text())
    assert find_aggregate(mlx5, "bond0") == "mlx5_bond_0"
    assert {g.ip for g in mlx5["mlx5_bond_0"].ports[1].gids} == {"fe80::e42:a1ff:fe3e:11a0",
                                                                 "192.168.201.1"}
    rxe = parse_inventory((CAP / "h1-rdma-inventory-rxe-bond0.txt").read_text())
    assert find_aggregate(rxe, "bond0") == "rxe0"
    with pytest.raises(IbBondError, match=r"0 RDMA devices on lgbond0 \(none\).*'rxe0': \['bond0'\]"):
        find_aggregate(rxe, "lgbond0")
    # a provider that names no netdev in rdma link: every GID of the port on the LAG
    for d in mlx5.values():
        for port in d.ports.values():
            port.netdev = None
    assert find_aggregate(mlx5, "bond0") == "mlx5_bond_0"
    (link,) = parse_rdma_link((SAMPLES / "iproute2-format--mlx5_bond_0_rdma_link.txt").read_text())
    assert link == {"ifname": "mlx5_bond_0", "port": 1, "state": "ACTIVE",
                    "physical_state": "LINK_UP", "netdev": "bond0"}


def test_a_stand_in_named_otherwise_than_the_suite_makes_it_is_refused_at_load(tmp_path):
    doc = yaml.safe_load(Path("labs/virtual.yaml").read_text())
    doc["hosts"]["h2"]["rdma_aggregates"][1]["name"] = "rxe_lgbond0"
    f = tmp_path / "virtual.yaml"
    f.write_text(yaml.safe_dump(doc))
    with pytest.raises(LabError, match=r"hosts\.h2\.rdma_aggregates\[1\]\.name: stand-in "
                                       r"'rxe_lgbond0' \(active-passive\) is made as rxe_lgteam0"):
        load_lab(f)
