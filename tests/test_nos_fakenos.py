"""The NOS drivers' CLI sessions end to end over SSH (issue 23), not only on
parsed samples: laghil's NetmikoChannel, as the EOS, NX-OS and Onyx drivers
use it, against FakeNOS (PyPI ``fakenos``), an SSH server that speaks each
NOS's prompts and modes, loaded with the output laghil keeps as samples
(tests/data/samples, sources in its README).

What runs for real: the SSH login with a password, the switch's host key
checked against the lab's known_hosts before netmiko sees a byte (an unknown
key refuses the session, naming the switch), netmiko's session preparation
(prompt detection, enable, paging off), show commands, config mode in and out,
and a line the NOS refuses ("% Invalid input") turned into SwitchRefused naming
the switch with the undo already run. FakeNOS answers each known command with
a fixed output: the commands a change sends are loaded as known (so a line the
driver builds wrongly is refused, as a NOS would), the state read back is the
sample's.
"""

import re
import socket
import threading
from pathlib import Path
from types import SimpleNamespace

import fakenos  # a test dependency (scripts/setup installs it without its paramiko pin)
import paramiko
import pytest

import fake_onyx  # tests/fake_onyx.py (tests/ is on the path: conftest)
from laghil.drivers.switch import EosSwitch, NxosSwitch, OnyxSwitch, SwitchError, SwitchRefused
from laghil.drivers.switch.nos import NetmikoChannel
from laghil.errors import HostKeyError
from laghil.transport.ssh import SshSession
from laghil.transport.target import SshTarget
from laghil.undo import Defer
from laghil.wait import wait_until


# FakeNOS's server threads raise when a client closes without a shell: laghil's
# host-key check (a handshake, then close) and every session at the fake's stop
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")


class _DaemonThreads:
    """``threading`` as FakeNOS's servers see it, their threads daemons: a
    connection that closes before opening a channel (laghil's host-key check)
    leaves FakeNOS 1.2.1's worker in paramiko's ``accept()`` with no timeout,
    which ``stop()`` does not always wake, and a non-daemon thread there keeps
    the interpreter from exiting (a unit run that never ends)."""

    class Thread(threading.Thread):
        def __init__(self, *args, **kwargs):
            kwargs.setdefault("daemon", True)
            super().__init__(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(threading, name)


@pytest.fixture(autouse=True)
def _fakenos_threads_are_daemons(monkeypatch):
    from fakenos.core import servers
    from fakenos.plugins.servers import ssh_server_paramiko
    for module in (servers, ssh_server_paramiko):
        monkeypatch.setattr(module, "threading", _DaemonThreads())

SAMPLES = Path(__file__).parent / "data" / "samples"
USER, PASSWORD = "admin", "fake-nos-password"

# platform -> what the fake speaks and what it answers. ``plugin``: FakeNOS's own
# NOS (its prompts and modes) or None for the definition below; ``prompts``: the
# config-mode prompt the added commands run at (and enable's, where FakeNOS's
# plugin has no config mode of its own)
PLATFORMS = {
    "eos": dict(
        driver=EosSwitch, plugin="arista_eos", ports=["Ethernet3", "Ethernet4", "Management1"],
        enable="{base_prompt}#", config="{base_prompt}(config)#",
        shows={"show version": "ntc-templates--arista_eos_show_version.raw",
               "show port-channel summary": "ntc-templates--arista_eos_show_port-channel_summary.raw",
               "show vlan": "ntc-templates--arista_eos_show_vlan.raw"},
        version="4.14.7M", free=9, taken=("Ethernet54/1", 2000)),
    "nxos": dict(
        driver=NxosSwitch, plugin="cisco_nxos", ports=["Ethernet1/10", "Ethernet1/11", "mgmt0"],
        enable="{base_prompt}#", config="{base_prompt}(config)#",
        shows={"show version": "ntc-templates--cisco_nxos_show_version.raw",
               "show port-channel summary | json":
                   "cisco-docs--nxos_show_port-channel_summary.json",
               "show vlan": "ntc-templates--cisco_nxos_show_vlan.raw"},
        version="6.1(2)I3(1)", free=7, taken=("Ethernet1/47", 47),
        more=["Ethernet1/48"]),         # port-channel 47's other member: the lab's too
    "onyx": dict(   # its error line: '% Unrecognized command "..."' (Onyx CLI)
        driver=OnyxSwitch, plugin=None, ports=["Eth1/3", "Eth1/4", "mgmt0"],
        enable=fake_onyx.ENABLE_PROMPT, config=fake_onyx.CONFIG_PROMPT,
        shows={"show version": "ansible--onyx_show_version.txt",
               "show interfaces port-channel summary | json-print":
                   "ansible--onyx_port_channel_show.json",
               "show vlan | json-print": "ansible--onyx_vlan_show.json"},
        version="3.6.5000", free=9, taken=("Eth1/7", 22)),
}


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FakeSwitch:
    """One FakeNOS host for ``platform``, on 127.0.0.1, with a host key of its
    own; ``lines`` more config lines it accepts. ``known_hosts``: a file naming
    its key (the lab's), ``target(...)``: the SshTarget laghil would build."""

    def __init__(self, tmp_path, platform, lines=()):
        self.p = PLATFORMS[platform]
        self.platform, self.dir = platform, tmp_path
        self.key = paramiko.RSAKey.generate(2048)
        self.key_file = tmp_path / "fake_host_key"
        self.key.write_private_key_file(str(self.key_file))
        self.port = _free_port()
        cmds = {}
        config = self.p["config"]
        enable = self.p["enable"]
        for cmd, sample in self.p["shows"].items():
            cmds[cmd] = {"output": (SAMPLES / sample).read_text(), "prompt": [enable, config]}
        if self.p["plugin"] is not None:        # FakeNOS's own NOS: add config mode's way out
            cmds.update({"configure terminal": {"output": None, "new_prompt": config,
                                                "prompt": enable},
                         "end": {"output": None, "new_prompt": enable, "prompt": config}})
            if platform == "nxos":          # FakeNOS's NX-OS has no error line of its own
                cmds["_default_"] = {"output": "% Invalid command at '^' marker.", "help": ""}
        for line in lines:
            if line in cmds or line == "exit":     # a mode command the fake already speaks
                continue
            cmds[line] = {"output": None, "prompt": config}
            if platform == "onyx":          # the sub-modes Onyx enters (left by `exit`)
                sub = re.fullmatch(r"interface port-channel (\d+)|vlan (\d+)", line)
                if sub:
                    cmds[line].update(new_prompt=(
                        fake_onyx.SUB_PROMPT.replace("{n}", sub.group(1)) if sub.group(1)
                        else fake_onyx.VLAN_PROMPT.replace("{n}", sub.group(2))))
        plugin = self.p["plugin"] or str(Path(fake_onyx.__file__))
        nos = {"plugin": plugin, "configuration": {"commands": cmds}}
        self.net = fakenos.FakeNOS(inventory={"hosts": {"sw3": {
            "username": USER, "password": PASSWORD, "port": self.port,
            "server": {"plugin": "ParamikoSshServer",
                       "configuration": {"ssh_key_file": str(self.key_file),
                                         "address": "127.0.0.1", "timeout": 1}},
            "nos": nos}}})

    def known_hosts(self, key=None):
        key = key or self.key
        path = self.dir / "known_hosts"
        path.write_text(f"[127.0.0.1]:{self.port} {key.get_name()} {key.get_base64()}\n")
        return str(path)

    def target(self, known_hosts):
        return SshTarget(name="sw3", address="127.0.0.1", port=self.port, user=USER,
                         password=PASSWORD, known_hosts=known_hosts, connect_timeout=10.0,
                         command_timeout=30.0)

    def __enter__(self):
        self.net.start()

        def listening():
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return None
            except OSError as e:
                return str(e)
        wait_until(listening, timeout=10, interval=0.05, what=f"FakeNOS on :{self.port}")
        return self

    def __exit__(self, *exc):
        self.net.stop()


def _driver(fake, known_hosts=None):
    p = fake.p
    session = SshSession(fake.target(known_hosts or fake.known_hosts()))
    ports = p["ports"] + [p["taken"][0]] + p.get("more", [])
    node = SimpleNamespace(name="sw3", session=session,
                           spec=SimpleNamespace(ports={q: {} for q in ports}, l2_vlan=3901))
    cli = NetmikoChannel(session, p["driver"].device_type)
    return p["driver"](node, channel=cli), cli


def _builder(platform):
    """The platform's driver without a session: its line builders are pure."""
    return PLATFORMS[platform]["driver"](
        SimpleNamespace(name="sw3", spec=SimpleNamespace(ports={})), channel=object())


@pytest.fixture(params=sorted(PLATFORMS))
def platform(request):
    return request.param


def test_a_session_logs_in_checks_the_key_and_reads_the_nos(tmp_path, platform):
    """Login, enable, paging off, a show command: the driver's describe() reads
    the NOS version out of the sample the fake answers with, its LAGs out of
    the port-channel summary."""
    with FakeSwitch(tmp_path, platform) as fake:
        drv, cli = _driver(fake)
        try:
            d = drv.describe()
            assert d["platform"] == platform and d["version"] == fake.p["version"], d
            lags = drv.lags()
            assert lags, f"{platform}: no port-channel read from the sample"
            if fake.p["taken"]:
                port, number = fake.p["taken"]
                assert port in lags[number].members, (port, lags[number])
        finally:
            cli.close()


def test_a_lag_made_over_the_session_sends_its_lines_in_config_mode(tmp_path, platform):
    """lag_create reads the switch, registers its undo, enters config mode, sends
    the lines the builder made (each one a command the fake knows: a wrong line
    would be refused) and leaves config mode; a port shut the same way."""
    p = PLATFORMS[platform]
    drv0 = _builder(platform)
    n = p["free"]
    ports = p["ports"][:2]
    lines = (drv0.lag_create_lines(n, ports, "lacp", "fast", None)
             + drv0.shutdown_lines(ports[0], True) + drv0.shutdown_lines(ports[0], False))
    with FakeSwitch(tmp_path, platform, lines) as fake:
        drv, cli = _driver(fake)
        defer = Defer()
        try:
            made = drv.lag_create(f"lglag{n}", ports, "lacp", defer=defer)
            assert made.name == f"lglag{n}" and made.members == tuple(ports)
            assert len(defer) == 1          # the removal, registered before the lines went
            drv.port_shutdown(ports[0], defer=defer)
            assert len(defer) == 2
            drv.port_no_shutdown(ports[0])
        finally:
            cli.close()


def test_a_line_the_nos_refuses_is_a_refusal_naming_the_switch_and_undone(tmp_path, platform):
    """The same LAG on a NOS that does not know one of its lines (the fake
    answers with its error line, as the NOS would): SwitchRefused naming the
    switch and the NOS's own words; the undo ran at once."""
    p = PLATFORMS[platform]
    drv0 = _builder(platform)
    n = p["free"]
    ports = p["ports"][:2]
    lines = drv0.lag_create_lines(n, ports, "lacp", "fast", None)
    unknown = [x for x in lines if lines.count(x) == 1 and x != "exit"][-1]
    with FakeSwitch(tmp_path, platform, [x for x in lines if x != unknown]) as fake:
        drv, cli = _driver(fake)
        defer = Defer()
        try:
            with pytest.raises(SwitchRefused) as info:
                drv.lag_create(f"lglag{n}", ports, "lacp", defer=defer)
            assert "switch sw3" in str(info.value) and f"LAG lglag{n}" in str(info.value)
            assert info.value.reason.lstrip().startswith("%"), info.value.reason
        finally:
            cli.close()


def test_the_l2_domain_and_a_member_removal_over_the_session(tmp_path, platform):
    """What a via-switch pair and the switch LAG suite send beyond a LAG: the L2
    domain (laghil's VLAN, the ports its access members), read first over the
    session (`show vlan`), its undo registered before the lines and run (the
    members back to default); a LAG member out of the sample's port-channel and
    its undo. Every line is one the fake was loaded with: a line the driver
    built wrongly would be the NOS's error, a SwitchRefused."""
    p = PLATFORMS[platform]
    drv0 = _builder(platform)
    ports = p["ports"][:2]
    port, number = p["taken"]
    iface = [drv0.lag_iface(number)]
    lines = (drv0.vlan_create_lines(3901)
             + [x for i in ports + iface for x in drv0.l2_member_lines(i, [3901], False)
                + drv0.l2_member_undo_lines(i)]
             + drv0.channel_leave_lines(port))
    with FakeSwitch(tmp_path, platform, lines) as fake:
        drv, cli = _driver(fake)
        defer = Defer()
        try:
            undo = drv.bridge_create("lgbr0", ports + [f"lglag{number}"], defer=defer)
            assert len(defer) == 1
            undo()                          # members back to default (VLAN 3901 not shown)
            out = drv.lag_member_remove(f"lglag{number}", port, defer=defer)
            assert len(defer) == 2 and out.records[0].args[0] == "nos_channel_join"
            with pytest.raises(SwitchError, match="VLAN 20 exists"):
                drv.bridge_create("lgbr0", ports, defer=defer, vlans=[20])
            assert len(defer) == 2, "refused before any undo or line"
        finally:
            cli.close()


def test_an_unknown_or_changed_switch_key_refuses_the_session_before_netmiko(tmp_path):
    """A known_hosts without the switch, or with another key for it: the session
    is refused naming the switch, the file and the fix, and netmiko never logs in
    (the password is never sent to whoever answers)."""
    with FakeSwitch(tmp_path, "eos") as fake:
        empty = tmp_path / "empty_known_hosts"
        empty.write_text("")
        other = fake.known_hosts(paramiko.RSAKey.generate(2048))
        for known, why in ((str(empty), "unknown"), (other, "changed")):
            drv, cli = _driver(fake, known)
            with pytest.raises(HostKeyError) as info:
                drv.describe()
            msg = str(info.value)
            assert msg.startswith("sw3: host key of 127.0.0.1:") and known in msg, msg
            assert ("Add it to known_hosts" if why == "unknown" else "does NOT match") in msg
            assert PASSWORD not in msg, msg
            assert cli._conn is None, why           # netmiko never logged in
