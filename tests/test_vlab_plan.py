"""The virtual rack's plan for the default lab: guests, NICs, cables, QEMU lines.

Pure: nothing is started. What is checked is what the suites rely on: every
cable is a crossed pair of UDP sockets on 127.0.0.1, management is hostfwd on
127.0.0.1 only with a restricted user netdev, every data NIC has its lab MAC and
a speed (802.3ad needs one), each guest has its QMP socket.
"""

import subprocess
from pathlib import Path

import pytest

from laghil.errors import RackError
from laghil.lab import load_lab
from laghil.vlab.kernel import GuestKernel
from laghil.vlab.guest import nic_id
from laghil.vlab.rack import Rack


@pytest.fixture
def rack(tmp_path, monkeypatch):
    monkeypatch.setenv("LAGHIL_STATE_DIR", str(tmp_path))
    return Rack(load_lab("virtual"), log=lambda *_: None)


def test_one_guest_per_host_and_switch(rack):
    assert sorted(rack.plans) == ["h1", "h2", "sw1"]
    assert {p.ssh_port for p in rack.plans.values()} == {22101, 22102, 22103}


def test_every_cable_is_a_crossed_udp_pair(rack):
    lab = rack.lab
    for cable in lab.cables:
        (na, pa), (nb, pb) = (e.split(":") for e in cable.ends)
        a = next(n for n in rack.plans[na].nics if n.port == pa)
        b = next(n for n in rack.plans[nb].nics if n.port == pb)
        assert a.local_udp == b.peer_udp and b.local_udp == a.peer_udp, cable.name
        assert a.local_udp != b.local_udp
    ports = [n.local_udp for p in rack.plans.values() for n in p.nics]
    assert len(ports) == len(set(ports)), "a UDP port used twice"


def test_qemu_command_line(rack, tmp_path):
    k = GuestKernel(tmp_path / "k", "6.1.0-test")
    (tmp_path / "k" / "boot").mkdir(parents=True)
    (tmp_path / "k" / "boot" / "vmlinux-6.1.0-test").write_bytes(b"\x7fELF")
    fds = {n.port: 10 + i for i, n in enumerate(rack.plans["h1"].nics) if n.local_udp is not None}
    cmd = rack._qemu_cmd(rack.plans["h1"], k, Path("/x/initrd"), fds)
    line = " ".join(cmd)
    assert cmd[cmd.index("-name") + 1] == "laghil:virtual:h1"
    assert "user,id=mgmt,restrict=on,hostfwd=tcp:127.0.0.1:22101-:22" in line
    assert "accel=tcg" in line
    for port, mac in (("eth1", "52:54:00:00:01:01"), ("eth4", "52:54:00:00:01:04")):
        assert f"virtio-net-pci,id={nic_id(port)},mac={mac},speed=10000,duplex=full" in line
    wires = [a for a in cmd if a.startswith("dgram,")]
    assert len(fds) == 6 and wires == [f"dgram,id=n{i},local.type=fd,local.str={fd}"
                                       for i, fd in enumerate(fds.values())]
    # the igb SR-IOV PFs (eth5, eth6): q35, each behind a PCIe root port of its own
    assert "q35,accel=tcg" in line and f"igb,id={nic_id('eth5')},mac=52:54:00:00:01:05,bus=rp4" in line
    assert "pcie-root-port,id=rp5,chassis=6,slot=0" in line
    assert "-qmp" in cmd and cmd[cmd.index("-qmp") + 1].endswith("qmp.sock,server=on,wait=off")


def test_a_physical_lab_has_no_rack():
    with pytest.raises(RackError, match="not virtual"):
        Rack(load_lab("rack3"))


def test_cable_method_follows_the_lab(rack):
    from types import SimpleNamespace

    from laghil.cable import CableControl, CableError
    from laghil.faults import pull_method
    lab = rack.lab
    c = CableControl(SimpleNamespace(lab=lab, rack=rack), lab.cable("h1-h2-a"))
    assert c.method == "virtual_pull"
    physical = load_lab("rack3")
    first = physical.cables[0]
    assert CableControl(SimpleNamespace(lab=physical, rack=None), first).method == "link_down"
    # one chooser: a virtual pull only where there is a virtual rack
    assert pull_method(lab.cable("h1-h2-a"), virtual=False) == "link_down"
    no_way = first.model_copy(update={"faults": []})
    with pytest.raises(CableError, match="no fault method"):
        CableControl(SimpleNamespace(lab=physical, rack=None), no_way)


def _fake_guest(marker):
    """A process that looks like a rack guest in /proc (argv[0] ends with the QEMU
    binary's name, ``-name <marker>``) but only sleeps; bounded to 60 s."""
    import subprocess
    return subprocess.Popen(
        ["bash", "-c", 'exec -a /usr/bin/qemu-system-x86_64 /usr/bin/python3 -c '
                       '"import time; time.sleep(60)" -name "$0"', marker],
        start_new_session=True)


def test_stale_guests_of_a_killed_run_are_found_and_ended(tmp_path, monkeypatch):
    import time
    import uuid
    monkeypatch.setenv("LAGHIL_STATE_DIR", str(tmp_path))
    name = f"stale-{uuid.uuid4().hex[:8]}"   # never a real rack's name
    rack = Rack(load_lab("virtual").model_copy(update={"name": name}), log=lambda *_: None)
    stale = _fake_guest(f"laghil:{name}:h2")
    other = _fake_guest(f"laghil:{name}x:h2")   # another lab's guest: not ours to end
    try:
        deadline = time.monotonic() + 5
        while "h2" not in rack._alive_pids() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert rack._alive_pids() == {"h2": stale.pid}
        ended = rack.down(quiet=True)
        assert ended == {"h2": stale.pid}
        assert stale.wait(timeout=5) is not None
        assert other.poll() is None, "a guest of another lab was ended"
    finally:
        for p in (stale, other):
            if p.poll() is None:
                p.kill()
                p.wait()


def test_cable_socket_has_a_deep_buffer_and_a_taken_port_is_named():
    import socket

    from laghil.vlab.qemu import WIRE_RCVBUF, wire_socket
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    free = probe.getsockname()[1]
    probe.close()
    nic = type("Nic", (), {"port": "eth1", "local_udp": free, "peer_udp": free + 1})()
    sock = wire_socket("h1", nic)
    try:
        # root (CAP_NET_ADMIN) gets the full buffer; the kernel reports it doubled
        got = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        assert got >= WIRE_RCVBUF or got >= 2 * int(Path("/proc/sys/net/core/rmem_max").read_text())
        assert sock.getpeername() == ("127.0.0.1", free + 1)
        with pytest.raises(RackError, match=f"guest h1: cable socket of eth1 on 127.0.0.1:{free}"):
            wire_socket("h1", nic)
    finally:
        sock.close()


def test_every_library_package_is_installed():
    """pyproject lists the packages (the plugin's folder is mapped to pytest_laghil):
    a new subpackage of laghil must be in the list."""
    import tomllib
    root = Path(__file__).resolve().parents[1]
    listed = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
                 ["packages"])
    found = {".".join(p.parent.relative_to(root).parts) for p in (root / "laghil").rglob("__init__.py")}
    assert found | {"pytest_laghil", "laghil.labs", "laghil.profiles", "laghil.certs"} == listed


def test_qemu_version_parsed_from_captured_output():
    from laghil.vlab.qemu import parse_qemu_version
    cap = Path(__file__).parent / "data" / "captures"
    assert parse_qemu_version((cap / "qemu-version-10.txt").read_text()) == (10, 0, 2)
    assert parse_qemu_version((cap / "qemu-version-7.2.txt").read_text()) == (7, 2, 22)
    assert parse_qemu_version("qemu: command not found") is None


def test_old_qemu_refused_with_the_fix(monkeypatch):
    from laghil.vlab import qemu as rk
    cap = Path(__file__).parent / "data" / "captures"
    old = (cap / "qemu-version-7.2.txt").read_text()
    monkeypatch.setattr(rk, "_QEMU_CHECKED", [])
    monkeypatch.setattr(rk.shutil, "which", lambda name: "/usr/bin/" + name)
    monkeypatch.setattr(rk.subprocess, "run",
                        lambda *a, **k: subprocess.CompletedProcess(a, 0, old, ""))
    with pytest.raises(RackError, match=r"7\.2\.22 is older than 8\.0.*scripts/setup"):
        rk.check_qemu()


def test_console_faults_after_the_mark_only(rack):
    """A guest's serial console (the CI run's h1 of 2026-12-01, QEMU 7.2: a wedged
    virtio TX queue) -> the watchdog records printed after the mark, per guest."""
    cap = (Path(__file__).parent / "data" / "captures" / "h1-console-netdev-watchdog.txt")
    lines = cap.read_text().splitlines(keepends=True)
    g = rack.guest_dir("h1")
    g.mkdir(parents=True)
    (g / "console.log").write_text("".join(lines[:4]))      # boot + the first watchdog
    marks = rack.console_marks()
    assert rack.console_faults(marks) == {}, "nothing new after the mark"
    with open(g / "console.log", "a") as f:
        f.write("".join(lines[4:]))
    faults = rack.console_faults(marks)
    assert list(faults) == ["h1"] and len(faults["h1"]) == 5, faults
    assert "NETDEV WATCHDOG" in faults["h1"][0] and faults["h1"][0].startswith("[1188.049]")
    assert len(rack.console_faults({})["h1"]) == 6, "from the start: all six"


def test_a_guest_without_an_igb_port_stays_an_i440fx_pc(rack, tmp_path):
    """Only a guest with an igb port (an SR-IOV PF, PCI Express) is q35."""
    k = GuestKernel(tmp_path / "k", "6.1.0-test")
    (tmp_path / "k" / "boot").mkdir(parents=True)
    (tmp_path / "k" / "boot" / "vmlinux-6.1.0-test").write_bytes(b"\x7fELF")
    fds = {n.port: 10 + i for i, n in enumerate(rack.plans["sw1"].nics) if n.local_udp is not None}
    line = " ".join(rack._qemu_cmd(rack.plans["sw1"], k, Path("/x/initrd"), fds))
    assert "pc,accel=tcg" in line and "igb," not in line and "pcie-root-port" not in line


def test_a_partly_up_rack_is_completed_never_rebooted(rack, monkeypatch):
    """A kept rack with a guest a killed run left off and one still booting:
    the off one is powered on, the booting one waited for; nothing running is
    ended (a full reboot would tie every guest to this process)."""
    seen = iter([{"h1": {"pid": 1, "ssh": True}, "h2": {"pid": None, "ssh": False},
                  "sw1": {"pid": 3, "ssh": False}},
                 {"h1": {"pid": 1, "ssh": True}, "h2": {"pid": 4, "ssh": False},
                  "sw1": {"pid": 3, "ssh": True}},
                 {"h1": {"pid": 1, "ssh": True}, "h2": {"pid": 4, "ssh": True},
                  "sw1": {"pid": 3, "ssh": True}}])
    powered, ended = [], []
    monkeypatch.setattr(rack, "status", lambda: next(seen))
    monkeypatch.setattr(rack, "power_on", lambda n, timeout: powered.append(n))
    monkeypatch.setattr(rack, "down", lambda quiet=False: ended.append(1))
    monkeypatch.setattr("time.sleep", lambda s: None)
    assert rack._complete(30) is not None
    assert powered == ["h2"] and ended == []
    monkeypatch.setattr(rack, "status", lambda: {n: {"pid": None, "ssh": False}
                                                 for n in ("h1", "h2", "sw1")})
    assert rack._complete(30) is None, "nothing runs: boot anew"


def test_a_host_with_two_numa_nodes_gets_a_pcie_expander_per_node(tmp_path, monkeypatch):
    """numa_nodes: 2 and a port per node: q35, the memory split between two
    nodes with a vCPU each, each NIC behind a root port on a pxb-pcie of its node."""
    import yaml
    monkeypatch.setenv("LAGHIL_STATE_DIR", str(tmp_path))
    doc = yaml.safe_load(Path("labs/virtual.yaml").read_text())
    h2 = doc["hosts"]["h2"]
    h2["numa_nodes"] = 2
    h2["ports"]["eth1"]["numa_node"] = 0
    h2["ports"]["eth2"]["numa_node"] = 1
    f = tmp_path / "virtual.yaml"
    f.write_text(yaml.safe_dump(doc))
    rack = Rack(load_lab(f), log=lambda *_: None)
    k = GuestKernel(tmp_path / "k", "6.1.0-test")
    (tmp_path / "k" / "boot").mkdir(parents=True)
    (tmp_path / "k" / "boot" / "vmlinux-6.1.0-test").write_bytes(b"\x7fELF")
    plan = rack.plans["h2"]
    fds = {n.port: 10 + i for i, n in enumerate(plan.nics) if n.local_udp is not None}
    cmd = rack._qemu_cmd(plan, k, Path("/x/initrd"), fds)
    line = " ".join(cmd)
    assert "q35,accel=tcg" in line and cmd[cmd.index("-smp") + 1] == "2"
    assert "memory-backend-ram,id=mem0,size=512M -numa node,nodeid=0,memdev=mem0,cpus=0" in line
    assert "memory-backend-ram,id=mem1,size=512M -numa node,nodeid=1,memdev=mem1,cpus=1" in line
    assert "pxb-pcie,id=pxb0,bus_nr=64,numa_node=0,bus=pcie.0" in line
    assert "pxb-pcie,id=pxb1,bus_nr=96,numa_node=1,bus=pcie.0" in line
    assert "pcie-root-port,id=rp1,chassis=2,slot=0,bus=pxb1" in line
    assert f"virtio-net-pci,id={nic_id('eth2')},mac=52:54:00:00:02:02,bus=rp1,speed=10000," \
           "duplex=full" in line
    # a port on a node the host does not have is the lab file's error, named at load
    from laghil.errors import LabError
    h2["ports"]["eth2"]["numa_node"] = 2
    f.write_text(yaml.safe_dump(doc))
    with pytest.raises(LabError, match=r"virtual\.yaml.*hosts\.h2\.ports\.eth2\.numa_node: port eth2 "
                                       r"on NUMA node 2: the host has 2"):
        load_lab(f)


class _Proc:
    def __init__(self, pid):
        self.pid = pid


def _hang_once(rack, monkeypatch, hang_times):
    """Rack.up with QEMU and SSH replaced: the first ``hang_times`` waits raise a
    boot hang; -> (guests started, pids killed, log lines)."""
    started, killed, lines = [], [], []
    pids = iter(range(100, 200))
    waits = iter([True] * hang_times + [False] * 5)
    monkeypatch.setattr(rack, "_read_state", lambda: None)
    monkeypatch.setattr(rack, "down", lambda quiet=False: {})
    monkeypatch.setattr(rack, "_prepare_files", lambda: None)
    monkeypatch.setattr(rack, "_write_state", lambda pids, detach: None)
    monkeypatch.setattr(rack, "_start_guest",
                        lambda plan, detach: started.append(plan.name) or _Proc(next(pids)))
    monkeypatch.setattr(rack, "_kill", lambda p: killed.extend(sorted(p.values())))

    def wait(procs, deadline):
        if next(waits):
            e = RackError("vlab virtual: guest h2: no SSH before the boot timeout\n(console)")
            e.boot_hang = True
            raise e
    monkeypatch.setattr(rack, "_wait_ssh", wait)
    rack.log = lines.append
    return started, killed, lines


def test_a_guest_hung_in_its_boot_gets_the_rack_booted_once_more(rack, monkeypatch):
    started, killed, lines = _hang_once(rack, monkeypatch, 1)
    rack.up()
    assert started == ["h1", "h2", "sw1"] * 2
    assert killed == [100, 101, 102], "the hung boot's guests were not all ended"
    assert lines and "guest h2: no SSH before the boot timeout" in lines[0] and "attempt 2" in lines[0]


def test_a_rack_that_hangs_twice_is_an_error_with_nothing_left_running(rack, monkeypatch):
    started, killed, _ = _hang_once(rack, monkeypatch, 2)
    with pytest.raises(RackError, match="guest h2: no SSH before the boot timeout"):
        rack.up()
    assert killed == [100, 101, 102, 103, 104, 105]


def test_the_ovs_rack_has_its_own_ports_and_runs_open_vswitch_on_its_switch(tmp_path, monkeypatch):
    """labs/virtual-ovs.yaml: the virtual rack's cabling, its own SSH and cable
    ports (both racks can be up at once), and the switch guest told to start
    Open vSwitch (stage2.sh runs ovs.sh when PLATFORM=ovs); the hosts are not."""
    monkeypatch.setenv("LAGHIL_STATE_DIR", str(tmp_path))
    ovs, plain = Rack(load_lab("virtual-ovs"), log=lambda *_: None), Rack(load_lab("virtual"),
                                                                       log=lambda *_: None)
    assert [c.ends for c in ovs.lab.cables] == [c.ends for c in plain.lab.cables]
    assert ovs.lab.switches["sw1"].platform == "ovs"
    mine = {n.local_udp for p in ovs.plans.values() for n in p.nics}
    theirs = {n.local_udp for p in plain.plans.values() for n in p.nics}
    assert min(mine) >= 42000 and not mine & theirs
    assert not {p.ssh_port for p in ovs.plans.values()} & {p.ssh_port for p in plain.plans.values()}
    ovs._prepare_files()
    env = {n: (ovs.guest_dir(n) / "node.env").read_text() for n in ovs.plans}
    assert "PLATFORM=ovs" in env["sw1"] and (ovs.guest_dir("sw1") / "ovs.sh").exists()
    assert "PLATFORM=\n" in env["h1"] and not (ovs.guest_dir("h1") / "ovs.sh").exists()
    script = (ovs.guest_dir("sw1") / "ovs.sh").read_text()
    # the guest's own database in its tmpfs /run, never the host's /etc/openvswitch
    assert "/etc/openvswitch" not in script and "ovsdb-tool create $D/conf.db" in script


def test_a_virtual_lab_switch_runs_linux_or_ovs(tmp_path):
    from laghil.errors import LabError
    text = (Path(__file__).resolve().parents[1] / "labs" / "virtual.yaml").read_text()
    p = tmp_path / "v.yaml"
    p.write_text(text.replace("platform: linux", "platform: eos"))
    with pytest.raises(LabError, match=r"switches.sw1.platform: a virtual lab's switch is a "
                                       r"guest running linux or ovs, not 'eos'"):
        load_lab(str(p))

