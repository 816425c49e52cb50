"""Parsers of tool output, on output captured from the virtual rack's guests
(Debian 12 iproute2 6.1, ethtool 6.1, rdma-core 44, kernel 6.1)."""

from pathlib import Path

from laghil.check import TOOLS, parse_tools
from laghil.inventory import parse_ethtool_i, parse_inventory
from laghil.netstate import diff_snapshots, parse_snapshot
from laghil.node import parse_carriers

CAP = Path(__file__).parent / "data" / "captures"


def snap(name):
    return parse_snapshot((CAP / name).read_text())


def test_snapshot_of_a_plain_guest():
    s = snap("h1-snapshot-plain.txt")
    assert set(s["links"]) == {"lo", "mgmt0", "eth1", "eth2", "eth3", "eth4"}
    eth1 = s["links"]["eth1"]
    assert eth1 == {"admin_up": True, "operstate": "UP", "mac": "52:54:00:00:01:01",
                    "mtu": 1500, "master": None, "kind": None, "slave_kind": None,
                    "link_netnsid": None}
    assert s["addrs"]["mgmt0"][0] == "10.0.2.15/24"
    # slirp's router advertisement gave mgmt0 a SLAAC address ("dynamic", with a
    # lifetime): the network's, not the suite's, so not part of the lab's state
    assert not any(a.startswith("fec0::") for a in s["addrs"]["mgmt0"]), s["addrs"]["mgmt0"]
    assert "fe80::4c:47ff:fe00:0/64" in s["addrs"]["mgmt0"]
    assert s["rdma"] == {} and s["netns"] == []


def test_snapshot_with_bond_rxe_and_netns():
    s = snap("h1-snapshot-bond-rxe.txt")
    assert s["links"]["bond0"]["kind"] == "bond"
    assert s["links"]["eth1"]["master"] == "bond0" and s["links"]["eth1"]["slave_kind"] == "bond"
    assert "192.168.77.1/24" in s["addrs"]["bond0"]
    assert s["rdma"] == {"rxe0/1": {"state": "ACTIVE", "netdev": "bond0"}}
    assert s["netns"] == ["lgtest"]


def test_diff_names_every_leftover():
    before, during = snap("h1-snapshot-plain.txt"), snap("h1-snapshot-bond-rxe.txt")
    diff = "\n".join(diff_snapshots(before, during, node="h1"))
    for expected in ("links bond0: left behind", "links eth1: master was None, now 'bond0'",
                     "links eth2: mac was '52:54:00:00:01:02', now '52:54:00:00:01:01'",
                     "rdma rxe0/1: left behind", "netns lgtest: left behind",
                     "addrs bond0: left behind"):
        assert expected in diff, f"missing {expected!r} in:\n{diff}"
    assert all(line.startswith("h1: ") for line in diff.splitlines())


def test_diff_after_a_clean_undo_is_empty():
    assert diff_snapshots(snap("h1-snapshot-plain.txt"), snap("h1-snapshot-after-cleanup.txt")) == []


def test_diff_reports_gone_links():
    before = snap("h1-snapshot-bond-rxe.txt")
    after = snap("h1-snapshot-plain.txt")
    diff = diff_snapshots(before, after)
    assert any("links bond0: gone after the run" in d for d in diff)
    assert any("netns lgtest: gone after the run" in d for d in diff)


def test_ethtool_i():
    info = parse_ethtool_i((CAP / "h1-ethtool-i-eth3.txt").read_text())
    assert info["driver"] == "virtio_net"
    assert info["firmware-version"] == ""
    assert info["bus-info"].startswith("0000:00:")


def test_inventory():
    inv = parse_inventory((CAP / "h1-inventory-bond-rxe.txt").read_text())
    assert inv["kernel"] == "6.1.0-56-amd64"
    assert inv["bonding"] is True and inv["team"] is True
    assert inv["rdma"] == ["rxe0"]
    assert set(inv["ports"]) == {"eth1", "eth2", "eth3", "eth4"}
    assert inv["ports"]["eth3"]["driver"] == "virtio_net"


def test_tools_probe():
    found = parse_tools((CAP / "h1-tools.txt").read_text())
    assert set(found) == set(TOOLS) and all(found.values()), found
    missing = parse_tools("ip yes\nethtool no\n")
    assert missing["ip"] and not missing["ethtool"] and not missing["teamd"]


def test_carriers():
    assert parse_carriers("eth1 1\neth2 0\n", ["eth1", "eth2", "eth3"]) == {
        "eth1": True, "eth2": False, "eth3": False}


def test_the_certification_inventory_is_read_from_a_twin_hosts_real_output():
    """srv1 of the twin of rack3 (QEMU igb ports, Debian 12): OS, tool versions,
    PCI ids per port; igb registers no devlink device (said as none)."""
    from laghil.inventory import parse_inventory
    from laghil.report.bundle import product_of
    text = (Path(__file__).parent / "data" / "captures" /
            "srv1-twin-inventory-cert.txt").read_text()
    inv = parse_inventory(text)
    assert inv["os"] == {"name": "Debian GNU/Linux 12 (bookworm)", "id": "debian",
                         "version_id": "12"}
    assert inv["tools"] == {"iproute2": "6.1.0", "teamd": "1.31", "rdma-core": "44.0-2",
                            "perftest": "6.06"}
    p = inv["ports"]["ens1f0np0"]
    assert (p["driver"], p["firmware"], p["vendor"], p["device"], p["subsystem_vendor"]) == (
        "igb", "2.1.0", "8086", "10c9", "1af4")
    assert "devlink" not in p
    prod = product_of({"srv1": inv})
    assert (prod["vendor"], prod["model"], prod["drivers"], prod["firmware"], prod["board"]) == (
        "8086", "10c9", "igb", "2.1.0", None)
    assert prod["ports"]["srv1:ens1f0np0"]["not reported"] == ["devlink"]
