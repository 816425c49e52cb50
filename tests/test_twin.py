"""The virtual twin of a physical lab file (``--lab twin:rack3``): its lab
model (names, ports, cables, faults, PDU outlets kept; stand-ins said;
capabilities the stand-ins lack dropped) and its rack plan (the jump guest the
only one the controller reaches, on 127.0.0.1; the others on a management
network inside the rack). Pure: nothing is started."""

import subprocess
from pathlib import Path

import pytest
import yaml

from laghil.errors import LabError
from laghil.lab import load_lab
from laghil.pairs import choose_pair, lab_paths
from laghil.vlab.kernel import GuestKernel
from laghil.vlab.rack import Rack

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def twin():
    return load_lab("twin:rack3")


def test_the_twin_keeps_rack3s_names_ports_cables_and_faults(twin):
    phys = load_lab("rack3")
    assert (twin.name, twin.kind, twin.rack_backed) == ("twin-rack3", "physical", True)
    assert twin.twin.of == "rack3" and twin.twin.source.endswith("labs/rack3.yaml")
    assert list(twin.hosts) == list(phys.hosts) and list(twin.switches) == list(phys.switches)
    for h, spec in phys.hosts.items():
        assert {p: v.mac for p, v in twin.hosts[h].ports.items()} == \
            {p: v.mac for p, v in spec.ports.items() if v.mac} | (
                {"eno1": twin.hosts["jump3"].ports["eno1"].mac} if h == "jump3" else {})
    # the NOS switch's ports mapped to netdev names, the map said
    assert twin.twin.port_map == {"sw3": {"Eth1/1": "eth1-1", "Eth1/2": "eth1-2",
                                          "Eth1/3": "eth1-3", "Eth1/4": "eth1-4"}}
    assert twin.switches["sw3"].platform == "linux"
    for a, b in zip(phys.cables, twin.cables):
        assert a.name == b.name and [str(f) for f in a.faults] == [str(f) for f in b.faults]
        assert b.ends[0] == a.ends[0] and b.ends[1] == a.ends[1].replace(
            "Eth1/", "eth1-"), (a.ends, b.ends)
        assert not b.has_fault("virtual_pull"), "no virtual_pull the file does not declare"
    # the PDU: outlet numbering and protection as in the file, on 127.0.0.1
    pdu = twin.pdus["pdu3"]
    assert (pdu.model, pdu.address) == ("virtual", "127.0.0.1")
    assert {n: (o.feeds, o.protected) for n, o in pdu.outlets.items()} == \
        {n: (o.feeds, o.protected) for n, o in phys.pdus["pdu3"].outlets.items()}


def test_the_twin_says_its_stand_ins_and_drops_what_they_lack(twin):
    said = "\n".join(twin.twin.stand_ins)
    for part in ("mlx5 RoCE LAG", "Soft-RoCE (rxe)", "QEMU igb PFs", "onyx switch -> a Linux "
                 "switch guest", "Eth1/1 -> eth1-1", "apc-rpdu2 at 10.3.0.5 -> laghil's SNMP",
                 "BMCs srv1-bmc, srv2-bmc", "srv1: sriov_lag, vf_link_state, mlx5"):
        assert part in said, (part, said)
    for h in ("srv1", "srv2"):
        caps = twin.capabilities(h)
        assert not caps & {"mlx5", "vf_link_state", "sriov_lag", "lag_offload"}, caps
        assert {"roce_lag", "rxe", "sriov", "bonding", "team", "lacp"} <= caps
        (agg,) = twin.hosts[h].rdma_aggregates
        assert (agg.name, agg.provider, agg.stand_in) == ("rxe_lgbond0", "rxe", True)
        assert {p.model for p in twin.hosts[h].ports.values()} == {"igb"}
    assert twin.capabilities("jump3") == frozenset()
    assert not twin.bmcs and all(h.bmc is None for h in twin.hosts.values())


def test_management_jump_host_kept_and_everything_on_loopback_or_inside_the_rack(twin):
    j = twin.hosts["jump3"].management
    assert (j.address, j.jump) == ("127.0.0.1", None)
    for n in ("srv1", "srv2", "sw3"):
        m = (twin.hosts.get(n) or twin.switches[n]).management
        phys = load_lab("rack3").node(n).management
        assert (m.address, m.port, m.jump, m.user) == (phys.address, 22, "jump3", "root"), n
        assert m.password_env is None and not m.sudo


def test_pairs_on_the_twin_go_through_the_switch(twin):
    assert lab_paths(twin, ("bonding",)) == ("switch",)
    p = choose_pair(twin, ("roce_lag",))
    assert (p.a, p.b, p.switch) == ("srv1", "srv2", "sw3")
    assert p.far == {"srv1": ["eth1-1", "eth1-2"], "srv2": ["eth1-3", "eth1-4"]}


@pytest.fixture
def rack(twin, tmp_path, monkeypatch):
    monkeypatch.setenv("LAGHIL_STATE_DIR", str(tmp_path))
    return Rack(twin, log=lambda *_: None)


def _cmd(rack, name, tmp_path):
    k = GuestKernel(tmp_path / "k", "6.1.0-test")
    (tmp_path / "k" / "boot").mkdir(parents=True, exist_ok=True)
    (tmp_path / "k" / "boot" / "vmlinux-6.1.0-test").write_bytes(b"\x7fELF")
    plan = rack.plans[name]
    fds = {n.port: 10 + i for i, n in enumerate(plan.nics + plan.mgmt_ports + [plan.mgmt_nic])
           if n is not None and n.local_udp is not None}
    return rack._qemu_cmd(plan, k, Path("/x/initrd"), fds), fds


def test_only_the_jump_guest_is_reached_from_the_controller(rack, tmp_path):
    assert rack.plans["jump3"].ssh_port == 22301
    assert all(rack.plans[n].ssh_port is None for n in ("srv1", "srv2", "sw3"))
    cmd, _ = _cmd(rack, "jump3", tmp_path)
    line = " ".join(cmd)
    assert "user,id=mgmt,restrict=on,hostfwd=tcp:127.0.0.1:22301-:22" in line
    assert "-m 512" in line, "the jump guest is small"
    # one NIC per guest behind it, each a cable of the rack (UDP on 127.0.0.1)
    assert [n.port for n in rack.plans["jump3"].mgmt_ports] == ["lgm0", "lgm1", "lgm2"]
    assert sorted(rack.plans["jump3"].peers) == ["10.3.0.11", "10.3.0.12", "10.3.0.2"]
    for name in ("srv1", "srv2", "sw3"):
        cmd, fds = _cmd(rack, name, tmp_path)
        line = " ".join(cmd)
        assert "hostfwd" not in line and "user," not in line, name
        assert f"dgram,id=mgmt,local.type=fd,local.str={fds['mgmt0']}" in line
        m = rack.plans[name].mgmt_nic
        j = next(x for x in rack.plans["jump3"].mgmt_ports if x.local_udp == m.peer_udp)
        assert j.peer_udp == m.local_udp
    ports = [n.local_udp for p in rack.plans.values()
             for n in p.nics + p.mgmt_ports + [p.mgmt_nic] if n is not None and n.local_udp]
    assert len(ports) == len(set(ports)) and min(ports) >= 43000, "apart from the rack's own"


def test_guests_are_named_and_addressed_as_the_lab_file_says(rack, tmp_path):
    rack._prepare_files()
    g = rack.guest_dir("srv1")
    ifmap = (g / "ifmap").read_text()
    assert "0c:42:a1:3e:11:a0 ens1f0np0" in ifmap and "0c:42:a1:3e:11:a1 ens1f1np1" in ifmap
    assert "MGMT_MODE=internal" in (g / "node.env").read_text()
    mgmt = (g / "mgmt.sh").read_text()
    assert "ip addr add 10.3.0.11/32 dev mgmt0" in mgmt
    assert "ip route add 169.254.77.1/32 dev mgmt0" in mgmt
    jump = (rack.guest_dir("jump3") / "mgmt.sh").read_text()
    assert "ip link add lgmgmt type bridge" in jump and "ip route add 10.3.0.11/32 dev lgmgmt" \
        in jump
    sw = (rack.guest_dir("sw3") / "ifmap").read_text()
    assert all(f" eth1-{i}" in sw for i in range(1, 5)), sw
    known = rack.known_hosts.read_text()
    assert "[127.0.0.1]:22301 ssh-ed25519 " in known and "\n10.3.0.11 ssh-ed25519 " in known
    for script in ("mgmt.sh",):
        r = subprocess.run(["sh", "-n", str(g / script)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr


def _phys(tmp_path, edit):
    data = yaml.safe_load((ROOT / "labs" / "rack3.yaml").read_text())
    edit(data)
    p = tmp_path / "big.yaml"
    p.write_text(yaml.safe_dump(data))
    return str(p)


def test_a_lab_too_large_for_one_machine_is_refused_naming_the_limit(tmp_path):
    def grow(d):
        for i in range(3, 8):
            d["hosts"][f"srv{i}"] = {"management": {"address": f"10.3.0.{20 + i}", "jump": "jump3"},
                                     "ports": {"eno1": {"speed": 1000}}}
    with pytest.raises(LabError) as e:
        load_lab("twin:" + _phys(tmp_path, grow))
    assert "hosts, switches: 9 guests and 8704 MB: a twin on one machine holds at most 6 guests and 8192 MB" in str(e.value)


def test_a_jumped_node_without_an_ipv4_address_is_refused_naming_the_field(tmp_path):
    def host(d):
        d["hosts"]["srv2"]["management"]["address"] = "srv2.lab.example.com"
    with pytest.raises(LabError) as e:
        load_lab("twin:" + _phys(tmp_path, host))
    assert "hosts.srv2.management.address: 'srv2.lab.example.com': a node behind a jump host " \
           "keeps its address in the twin, which must be an IPv4 address" in str(e.value)


def test_the_virtual_rack_has_no_twin():
    with pytest.raises(LabError, match="only a physical lab has a twin"):
        load_lab("twin:virtual")
