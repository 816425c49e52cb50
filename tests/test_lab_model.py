"""Unit tests of the lab model and loader (no network, no lab needed)."""

import json
import re
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from laghil.errors import LabError, UnknownNode
from laghil.lab import (
    Lab,
    PortRef,
    UnknownCable,
    UnknownPort,
    available_labs,
    lab_schema,
    load_lab,
    vlab_state_dir,
)
from laghil.transport.target import SshTarget

REPO = Path(__file__).resolve().parents[1]
LABS = REPO / "labs"
BROKEN = Path(__file__).resolve().parent / "data" / "labs"


@pytest.fixture(scope="module")
def vlab():
    return load_lab("virtual", labs_dir=LABS)


@pytest.fixture(scope="module")
def rack3():
    return load_lab("rack3", labs_dir=LABS)


# ---------------------------------------------------------------- loading

def test_load_by_name_and_by_path(vlab):
    assert vlab.name == "virtual" and vlab.kind == "virtual"
    assert vlab.source == str(LABS / "virtual.yaml")
    by_path = load_lab(LABS / "virtual.yaml")
    assert by_path.hosts == vlab.hosts


def test_labs_dir_from_environment(monkeypatch, tmp_path):
    (tmp_path / "mini.yaml").write_text((LABS / "virtual.yaml").read_text())
    monkeypatch.setenv("LAGHIL_LABS_DIR", str(tmp_path))
    assert available_labs() == ["mini"]
    assert load_lab("mini").name == "virtual"


def test_available_labs():
    assert {"virtual", "rack3"} <= set(available_labs(LABS))


def test_virtual_defaults_merged(vlab):
    m = vlab.hosts["h1"].management
    assert (m.user, m.port, m.connect_timeout, m.command_timeout) == ("root", 22101, 20, 60)
    assert vlab.virtual.memory_mb == 1024 and vlab.virtual.cpus == 1


def test_mac_and_pci_normalised(tmp_path):
    path = tmp_path / "lab.yaml"
    path.write_text(
        "name: x\nkind: physical\nhosts:\n  h1:\n    management: {address: 10.0.0.1}\n"
        "    ports: {eth1: {mac: '0C:42:A1:00:00:0A', pci: '0000:3B:00.0'}}\n")
    port = load_lab(path).hosts["h1"].ports["eth1"]
    assert (port.mac, port.pci) == ("0c:42:a1:00:00:0a", "0000:3b:00.0")


def test_an_ipoib_port_has_a_20_octet_address_and_an_ethernet_port_6(tmp_path):
    gid = "80:00:00:48:fe:80:00:00:00:00:00:00:0c:42:a1:03:00:3e:11:a0"
    path = tmp_path / "lab.yaml"
    path.write_text(
        "name: x\nkind: physical\nhosts:\n  h1:\n    management: {address: 10.0.0.1}\n"
        "    numa_nodes: 2\n"
        f"    ports: {{ib0: {{mac: '{gid.upper()}', link_layer: infiniband, numa_node: 1}}}}\n")
    port = load_lab(path).hosts["h1"].ports["ib0"]
    assert (port.mac, port.link_layer, port.numa_node) == (gid, "infiniband", 1)
    for ll, mac, octets in (("infiniband", "0c:42:a1:00:00:0a", 6), ("ethernet", gid, 20)):
        path.write_text(
            "name: x\nkind: physical\nhosts:\n  h1:\n    management: {address: 10.0.0.1}\n"
            f"    ports: {{p0: {{mac: '{mac}', link_layer: {ll}}}}}\n")
        with pytest.raises(LabError) as e:
            load_lab(path)
        msg = str(e.value)
        assert "lab.yaml" in msg and "hosts.h1.ports.p0" in msg, msg
        assert f"{octets} octets, a {ll} port's address has {26 - octets}" in msg, msg


# ---------------------------------------------------------------- queries

def test_far_end_both_directions(vlab, rack3):
    assert vlab.far_end("h1", "eth3") == PortRef("sw1", "swp1")
    assert vlab.far_end("sw1", "swp1") == PortRef("h1", "eth3")
    assert vlab.far_end("h1", "eth1") == ("h2", "eth1")
    assert rack3.far_end("srv1", "ens1f1np1") == PortRef("sw3", "Eth1/2")
    assert rack3.far_end("sw3", "Eth1/2") == PortRef("srv1", "ens1f1np1")
    assert str(rack3.far_end("srv2", "ens1f0np0")) == "sw3:Eth1/3"


def test_uncabled_port_has_no_far_end(rack3):
    assert rack3.far_end("jump3", "eno1") is None
    assert rack3.cable_of("jump3", "eno1") is None


def test_unknown_port_and_node_in_queries(vlab):
    with pytest.raises(UnknownPort, match="'eth9'"):
        vlab.far_end("h1", "eth9")
    with pytest.raises(UnknownNode) as e:
        vlab.node("h9")
    assert "'virtual'" in str(e.value) and "h1, h2, sw1" in str(e.value)


def test_cable_queries(vlab, rack3):
    assert [c.name for c in vlab.cables_between("h1", "h2")] == ["h1-h2-a", "h1-h2-b", "h1-h2-vfa",
                                                                  "h1-h2-vfb"]
    assert [c.name for c in vlab.cables_between("sw1", "h2")] == ["h2-sw1-a", "h2-sw1-b"]
    assert vlab.cables_between("h1", "h1") == []
    assert vlab.cable_of("h2", "eth4").name == "h2-sw1-b"
    cable = rack3.cable("srv1-sw3-a")
    assert (cable.a, cable.b) == (PortRef("srv1", "ens1f0np0"), PortRef("sw3", "Eth1/1"))
    assert cable.other_end("sw3", "Eth1/1") == ("srv1", "ens1f0np0")
    with pytest.raises(UnknownCable, match="nope"):
        rack3.cable("nope")


def test_ports_towards(vlab, rack3):
    assert vlab.ports_towards("h1", "sw1") == ["eth3", "eth4"]
    assert vlab.ports_towards("h2", "h1") == ["eth1", "eth2", "eth5", "eth6"]
    assert rack3.ports_towards("srv2", "sw3") == ["ens1f0np0", "ens1f1np1"]
    assert rack3.ports_towards("jump3", "sw3") == []


def test_faults(vlab, rack3):
    assert vlab.cable("h1-sw1-a").fault_kinds == ["link_down", "switch_shutdown", "virtual_pull"]
    pdu_fault = rack3.cable("srv1-sw3-b").faults[2]
    assert (pdu_fault.kind, pdu_fault.pdu, pdu_fault.outlet) == ("pdu_outlet", "pdu3", 3)
    assert rack3.pdus["pdu3"].outlets[8].protected


def test_capabilities(vlab, rack3):
    assert vlab.has_capability("h1", "rxe")
    assert not vlab.has_capability("sw1", "rxe")
    assert rack3.capabilities("srv1") >= {"roce_lag", "sriov_lag", "mlx5", "numa"}
    assert rack3.capabilities("pdu3") == frozenset()
    with pytest.raises(ValueError, match="unknown capability 'bondng'"):
        vlab.has_capability("h1", "bondng")


def test_nodes_and_rdma(rack3):
    assert rack3.nodes == ["jump3", "srv1", "srv2", "sw3", "pdu3", "srv1-bmc", "srv2-bmc"]
    assert [d.name for d in rack3.hosts["srv1"].rdma] == ["mlx5_0", "mlx5_1"]
    assert rack3.hosts["srv1"].rdma[1].netdevs == ["ens1f1np1"]


# ---------------------------------------------------------------- SSH targets

def test_ssh_target_virtual_defaults(vlab, tmp_path):
    t = vlab.ssh_target("h2", env={"LAGHIL_STATE_DIR": str(tmp_path)})
    assert isinstance(t, SshTarget)
    assert (t.name, t.address, t.port, t.user) == ("h2", "127.0.0.1", 22102, "root")
    state = tmp_path / "vlab" / "virtual"
    assert vlab_state_dir("virtual", {"LAGHIL_STATE_DIR": str(tmp_path)}) == state
    assert t.key_file == str(state / "id_ed25519")
    assert t.known_hosts == str(state / "known_hosts")
    assert t.connect_timeout == 20 and t.jump is None


def test_ssh_target_physical_with_jump(rack3):
    t = rack3.ssh_target("srv1", env={})
    assert (t.address, t.user, t.sudo, t.command_timeout) == ("10.3.0.11", "laghil", True, 120)
    assert t.key_file == str(Path("~/.ssh/laghil_rack3").expanduser())
    assert t.password is None
    assert t.jump.name == "jump3" and t.jump.jump is None
    assert rack3.hosts["jump3"].management.jump is None


def test_ssh_target_password_from_env(rack3):
    t = rack3.ssh_target("sw3", env={"LAGHIL_RACK3_SW_PASSWORD": "pa55"})
    assert (t.user, t.password, t.key_file, t.sudo) == ("admin", "pa55", None, False)
    assert "pa55" not in repr(t)


def test_ssh_target_missing_password_env(rack3):
    with pytest.raises(LabError) as e:
        rack3.ssh_target("sw3", env={})
    assert "'sw3'" in str(e.value) and "LAGHIL_RACK3_SW_PASSWORD" in str(e.value)


def test_ssh_target_refuses_pdu(rack3):
    with pytest.raises(LabError, match="pdu3"):
        rack3.ssh_target("pdu3", env={})


# ---------------------------------------------------------------- model properties

def test_models_are_frozen(vlab):
    with pytest.raises(ValidationError):
        vlab.name = "other"
    with pytest.raises(ValidationError):
        vlab.hosts["h1"].management.port = 22


def test_lab_schema_is_json():
    schema = lab_schema()
    json.dumps(schema)
    assert {"hosts", "switches", "cables", "pdus"} <= set(schema["properties"])


def test_secret_never_in_model(monkeypatch, rack3):
    secret = "Sup3r-S3cret-xyzzy"
    monkeypatch.setenv("LAGHIL_RACK3_SW_PASSWORD", secret)
    monkeypatch.setenv("LAGHIL_RACK3_SNMP_COMMUNITY", secret)
    lab = load_lab("rack3", labs_dir=LABS)
    target = lab.ssh_target("sw3")
    assert target.password == secret
    for text in (repr(lab), str(lab), json.dumps(lab.model_dump(mode="json")),
                 lab.model_dump_json(), repr(target), str(target)):
        assert secret not in text


def test_model_dump_round_trips(rack3):
    again = Lab.model_validate(rack3.model_dump())
    assert again.cables == rack3.cables and again.hosts == rack3.hosts


def test_cross_checks_when_built_in_code():
    with pytest.raises(ValidationError, match="unknown node 'h9'"):
        Lab.model_validate({
            "name": "x", "kind": "physical",
            "hosts": {"h1": {"management": {"address": "a"}, "ports": {"eth1": {}}}},
            "cables": [{"name": "c", "ends": ["h1:eth1", "h9:eth1"]}],
        })


# ---------------------------------------------------------------- bad lab files

def _marked_line(path):
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if "# <-- error" in line:
            return n
    raise AssertionError(f"{path} has no '<-- error' marker")


def _single_problem(path):
    with pytest.raises(LabError) as e:
        load_lab(path)
    assert len(e.value.problems) == 1, e.value.problems
    problem = e.value.problems[0]
    assert problem.startswith(f"{e.value.path}:{_marked_line(path)}: "), problem
    assert path.name in problem
    return problem


@pytest.mark.parametrize("fixture, field, words", [
    ("missing_field", "hosts.h1.management", "required"),
    ("unknown_port", "cables[0].ends[1]", "no port 'eth9'"),
    ("unknown_node", "cables[0].ends[1]", "unknown node 'h3'"),
    ("duplicate_node", "hosts.h1", "duplicate key 'h1', first defined at line 6"),
    ("host_and_switch", "switches.n1", "'n1' is already used in hosts"),
    ("port_in_two_cables", "cables[1].ends[0]", "h1:eth1 is already cabled by 'a'"),
    ("wrong_type", "hosts.h1.management.port", "valid integer"),
    ("protected_outlet_fault", "cables[0].faults[1]", "pdu1:8 is protected"),
    ("bad_ifname", "hosts.h1.ports.eth1;reboot", "not a valid interface name"),
    ("unknown_capability", "hosts.h1.capabilities[1]", "unknown capability 'bondng'; allowed: bonding"),
    ("unknown_platform", "switches.sw1.platform",
     "unknown switch platform 'junos'; laghil has drivers for: linux, cumulus, sonic, eos, nxos, onyx, ovs"),
])
def test_broken_lab(fixture, field, words):
    problem = _single_problem(BROKEN / f"{fixture}.yaml")
    assert f": {field}: " in problem
    assert words in problem


def test_yaml_syntax_error():
    problem = _single_problem(BROKEN / "syntax_error.yaml")
    assert "YAML syntax error" in problem


def test_unknown_lab_name():
    with pytest.raises(LabError) as e:
        load_lab("rack99", labs_dir=LABS)
    assert len(e.value.problems) == 1
    assert "'rack99'" in e.value.problems[0]
    assert re.search(r"available labs: .*rack3.*virtual", e.value.problems[0])


def test_missing_lab_path(tmp_path):
    with pytest.raises(LabError, match="not found"):
        load_lab(tmp_path / "nope.yaml")


def test_all_cross_check_problems_reported_together(tmp_path):
    path = tmp_path / "many.yaml"
    path.write_text(
        "name: many\n"
        "kind: virtual\n"
        "hosts:\n"
        "  h1:\n"
        "    management: {address: 10.0.0.1, port: 2201, jump: h1}\n"   # 5: address, jump
        "    ports: {eth1: {mac: '52:54:00:00:00:01'}}\n"               # 6: no speed
        "cables:\n"
        "  - {name: c1, ends: ['h1:eth1', 'sw9:p1'], faults: [switch_shutdown]}\n"  # 8
    )
    with pytest.raises(LabError) as e:
        load_lab(path)
    lines = [int(p.split(":")[1]) for p in e.value.problems]
    assert len(e.value.problems) == 5, e.value.problems
    assert lines == sorted(lines) and set(lines) == {5, 6, 8}
    text = str(e.value)
    for words in ("own jump host", "127.0.0.1", "needs speed", "unknown node 'sw9'", "switch_shutdown"):
        assert words in text


def test_defaults_jump_not_applied_to_jump_host(tmp_path):
    path = tmp_path / "jump.yaml"
    path.write_text(
        "name: j\nkind: physical\n"
        "defaults: {management: {jump: gw, user: lab}}\n"
        "hosts:\n"
        "  gw: {management: {address: gw.example.com}, ports: {eth0: {}}}\n"
        "  h1: {management: {address: 10.0.0.1}, ports: {eth0: {}}}\n")
    lab = load_lab(path)
    assert lab.hosts["gw"].management.jump is None
    t = lab.ssh_target("h1", env={})
    assert (t.user, t.jump.name, t.jump.user) == ("lab", "gw", "lab")


def test_secret_in_password_env_is_refused(tmp_path):
    path = tmp_path / "pw.yaml"
    path.write_text(
        "name: pw\nkind: physical\nhosts:\n  h1:\n"
        "    management: {address: 10.0.0.1, password_env: 'hunter2!'}\n"
        "    ports: {eth0: {}}\n")
    with pytest.raises(LabError) as e:
        load_lab(path)
    assert e.value.problems[0].startswith(f"{e.value.path}:5: hosts.h1.management.password_env: ")
    assert "NAME of a variable" in e.value.problems[0]


def test_laghil_device_names_default_to_its_own_and_are_checked():
    lab = load_lab("virtual")
    names = lab.device_names
    assert (names.bond, names.team, names.bridge, names.switch_lag) == \
        ("lgbond0", "lgteam0", "lgbr0", "lglag")


def test_device_names_with_shell_characters_or_taken_by_a_port_are_refused(tmp_path):
    text = (LABS / "virtual.yaml").read_text()
    bad = text.replace("defaults:\n", "defaults:\n  devices: {bond: \"b;reboot\", team: eth1, "
                                      "switch_lag: lglaglaglaglag}\n", 1)
    p = tmp_path / "names.yaml"
    p.write_text(bad)
    with pytest.raises(LabError) as e:
        load_lab(str(p))
    msg = str(e.value)
    assert "defaults.devices.bond" in msg and "shell characters" in msg
    assert "defaults.devices.switch_lag" in msg     # with its index it is over 15 characters
    p.write_text(text.replace("defaults:\n", "defaults:\n  devices: {team: eth1}\n", 1))
    with pytest.raises(LabError, match="defaults.devices.team: 'eth1' is a port of h1"):
        load_lab(str(p))


def test_lab_platforms_are_the_switch_drivers():
    from laghil.drivers.switch import DRIVERS
    from laghil.lab.fields import SWITCH_PLATFORMS
    assert SWITCH_PLATFORMS == tuple(DRIVERS)


def test_rdma_aggregates_are_declared_and_checked(rack3, tmp_path):
    """IB device bonding's contract: each aggregate with its members, mode and
    claims; a member that is not a port of the host is named."""
    agg = rack3.hosts["srv1"].rdma_aggregates[0]
    assert (agg.name, agg.provider, agg.mode) == ("mlx5_bond_0", "mlx5", "active-active")
    assert [m.device for m in agg.members] == ["mlx5_0", "mlx5_1"] and agg.members_hidden
    assert rack3.hosts["srv1"].ports["ens1f0np0"].sriov is True
    doc = yaml.safe_load(Path("labs/rack3.yaml").read_text())
    doc["hosts"]["srv1"]["rdma_aggregates"][0]["members"][1]["netdev"] = "eth9"
    doc["hosts"]["srv2"]["rdma_aggregates"][0]["stand_in"] = True
    f = tmp_path / "rack3.yaml"
    f.write_text(yaml.safe_dump(doc))
    with pytest.raises(LabError) as e:
        load_lab(f)
    msg = str(e.value)
    assert "rdma_aggregates[0].members[1].netdev: aggregate 'mlx5_bond_0' member netdev 'eth9'" \
        " is not a port of srv1" in msg
    assert "a stand-in is Soft-RoCE over a bond (provider rxe), not mlx5" in msg
