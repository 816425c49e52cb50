"""mlx5 SR-IOV VF LAG paths (laghil.drivers.vflag) on sample output: the
set-up plan and its refusals, devlink e-switch JSON, the LAG debugfs files,
the kernel log, the physical port counters. The samples are documented ones
(tests/data/samples/README.md): the virtual rack has no mlx5 e-switch."""

from pathlib import Path

import pytest

from laghil.drivers.vflag import (MSG_TOO_MANY_VFS, MSG_TX_TYPE, VfLagError, VfLagRefused,
                                  eswitch_mode_command, lag_state_command, numvfs_command,
                                  parse_eswitch, parse_lag_debugfs, parse_lag_log,
                                  parse_phy_counters, plan_vf_lag, undo_actions,
                                  uplink_shares, vf_driver_command)
from laghil.errors import BadName
from laghil.undo_actions import build
from laghil.parsing import ParseError

S = Path(__file__).parent / "data" / "samples"
PFS = [("enp8s0f0np0", "0000:08:00.0"), ("enp8s0f1np1", "0000:08:00.1")]


def sample(name):
    return (S / name).read_text()


def test_the_plan_keeps_the_order_the_driver_needs():
    plan = plan_vf_lag("h1", PFS, 4, "802.3ad")
    whats = [w for w, _ in plan.steps]
    assert whats == ["4 VFs on enp8s0f0np0", "4 VFs on enp8s0f1np1",
                     "enp8s0f0np0's VFs unbound", "enp8s0f1np1's VFs unbound",
                     "enp8s0f0np0 e-switch switchdev", "enp8s0f1np1 e-switch switchdev",
                     "bond", "LAG active", "enp8s0f0np0's VFs bound", "enp8s0f1np1's VFs bound"]
    cmds = dict(plan.steps)
    assert cmds["enp8s0f0np0 e-switch switchdev"] == \
        "devlink dev eswitch set pci/0000:08:00.0 mode switchdev"
    assert cmds["4 VFs on enp8s0f0np0"] == ("echo 0 > /sys/class/net/enp8s0f0np0/device/sriov_numvfs"
                                            " && echo 4 > /sys/class/net/enp8s0f0np0/device/"
                                            "sriov_numvfs")
    assert [build(*a) for a in undo_actions(PFS)][-2:] == [
        "devlink dev eswitch set pci/0000:08:00.0 mode legacy",
        "devlink dev eswitch set pci/0000:08:00.1 mode legacy"]
    assert build(*undo_actions(PFS)[0]) == numvfs_command("enp8s0f0np0", 0)


@pytest.mark.parametrize("kw, words", [
    ({"mode": "broadcast"}, MSG_TX_TYPE),
    ({"mode": "balance-rr"}, MSG_TX_TYPE),
    ({"numvfs": 65}, MSG_TOO_MANY_VFS),
    ({"netns": "tenant1"}, "initial network namespace"),
    ({"pfs": PFS[:1]}, "exactly two PFs"),
])
def test_what_the_driver_would_refuse_is_refused_first_in_its_words(kw, words):
    args = {"node": "h1", "pfs": PFS, "numvfs": 4, "mode": "active-backup", **kw}
    with pytest.raises(VfLagRefused, match=words.replace("(", r"\(").replace(")", r"\)")):
        plan_vf_lag(**args)


def test_builders_refuse_shell_characters():
    with pytest.raises(BadName):
        numvfs_command("eth0;reboot", 2)
    with pytest.raises(VfLagError, match="PCI address"):
        eswitch_mode_command("0000:08:00.0 mode legacy; id", "switchdev")
    with pytest.raises(VfLagError):
        vf_driver_command("eth1", "remove")
    assert "cat /sys/kernel/debug/mlx5/0000:08:00.0/lag/mapping" in lag_state_command("0000:08:00.0")


def test_devlink_eswitch_json():
    assert parse_eswitch(sample("iproute2-doc--devlink_eswitch_show.json")) == {
        "pci/0000:08:00.0": {"mode": "switchdev", "inline-mode": "none", "encap-mode": "basic"}}
    with pytest.raises(ParseError, match="h1: cannot parse the output of devlink"):
        parse_eswitch('{"eswitch": []}', node="h1")


def test_lag_debugfs_active_hash_inactive_and_after_a_failover():
    a = parse_lag_debugfs(sample("kernel-doc--mlx5_lag_debugfs_active_hash.txt"))
    assert a.active and a.type == "switchdev" and a.port_sel_mode == "hash"
    assert a.flags == {"shared_fdb": "on", "fdb_selection_mode": "native"}
    assert a.active_ports() == [1, 2] and a.members == ["0000:08:00.0", "0000:08:00.1"]
    off = parse_lag_debugfs(sample("kernel-doc--mlx5_lag_debugfs_inactive.txt"))
    assert not off.active and off.type is None and off.mapping == [] and off.flags == {}
    q = parse_lag_debugfs(sample("kernel-doc--mlx5_lag_debugfs_qaff_failover.txt"))
    assert q.port_sel_mode == "queue_affinity" and q.mapping == [(1, 2), (2, 2)]
    assert q.active_ports() == [2], "both virtual ports mapped to the survivor"
    with pytest.raises(ParseError, match="debugfs"):
        parse_lag_debugfs("@@state\ncat: x: No such file or directory\n", node="h1")


def test_kernel_log_activation_and_remap_on_a_real_log():
    ev = parse_lag_log(sample("linux-commit--mlx5_lag_kernel_log.txt"))
    kinds = [(e.kind, e.detail.get("ports"), e.detail.get("mode")) for e in ev]
    assert ("activated", None, "hash") in kinds
    maps = [e for e in ev if e.kind == "map"]
    assert [m.detail["ports"] for m in maps] == [[1], [1, 2]]
    assert maps[0].pci == "0000:17:00.0" and maps[0].t == pytest.approx(14506.761933)
    assert [e.detail["slave"] for e in ev if e.kind == "bond"][0] == "enp23s0f1np1"


def test_kernel_log_queue_affinity_map_and_refusals():
    text = ("[  10.000001] mlx5_core 0000:08:00.0: lag map: port 1:1 port 2:2\n"
            "[  10.000002] mlx5_core 0000:08:00.0: shared_fdb:1 mode:queue_affinity\n"
            "[  10.000003] mlx5_core 0000:08:00.0: Operation mode is single FDB\n"
            f"[  11.5] mlx5_core 0000:08:00.0: {MSG_TX_TYPE}\n"
            "[  12.0] mlx5_core 0000:08:00.0: Failed to create LAG (-22)\n")
    ev = parse_lag_log(text)
    assert [e.kind for e in ev] == ["map", "activated", "single_fdb", "refused", "failed"]
    assert ev[0].detail["v2p"] == [(1, 1), (2, 2)] and ev[1].detail["shared_fdb"] is True
    assert ev[4].detail["err"] == -22


def test_phy_counters_on_real_mlx5_output_and_uplink_shares():
    c = parse_phy_counters(sample("netdev-list--mlx5_ethtool_S_5.15.txt"))
    assert c["tx_packets_phy"] == 5588396729 and c["rx_packets_phy"] == 97052087562
    assert c["rx_vport_unicast_packets"] == 38460159194
    with pytest.raises(ParseError, match="not an mlx5 port"):
        parse_phy_counters("NIC statistics:\n     rx_packets: 12\n", node="h1")
    before = {"pf0": {"tx_packets_phy": 100}, "pf1": {"tx_packets_phy": 100}}
    after = {"pf0": {"tx_packets_phy": 100}, "pf1": {"tx_packets_phy": 1100}}
    assert uplink_shares(before, after) == {"pf0": 0.0, "pf1": 1.0}


def test_devlink_ports_and_the_vf_representors_of_a_pf():
    from laghil.drivers.vflag import parse_devlink_ports, vf_representors
    ports = parse_devlink_ports(sample("iproute2-doc--devlink_port_show_switchdev.json"))
    assert {p["netdev"]: p["flavour"] for p in ports if p["pci"] == "0000:3b:00.0"} == {
        "ens1f0np0": "physical", "ens1f0npf0vf0": "pcivf", "ens1f0npf0vf1": "pcivf"}
    assert vf_representors(ports, "0000:3b:00.0") == {0: "ens1f0npf0vf0", 1: "ens1f0npf0vf1"}
    assert vf_representors(ports, "0000:3b:00.1") == {0: "ens1f1npf1vf0"}
    with pytest.raises(VfLagError, match="not a PCI address"):
        vf_representors(ports, "0000:3b:00.0; reboot")
