"""A session start over a lab whose switch has no shell (rack3's Onyx): the
journal replayed, the lab read, the baseline recorded and compared, a restore
attempted; the switch is read and changed through its platform driver only,
and no shell command ever reaches it."""

from pathlib import Path

import pytest
import yaml

from laghil.journal import Journal, UndoRecord
from laghil.lab import load_lab
from laghil.labstate import LabDirty, clean_start
from laghil.runtime import LabRuntime

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "tests" / "data" / "samples"
CAP = ROOT / "tests" / "data" / "captures"
HOST_SNAPSHOT = (CAP / "h1-snapshot-plain.txt").read_text()
HOST_PREFLIGHT = (CAP / "h1-preflight.txt").read_text()


class Result:
    def __init__(self, stdout=""):
        self.stdout, self.stderr, self.rc = stdout, "", 0


class ShellSession:
    """A node's session that records every shell command."""

    def __init__(self, name):
        self.name, self.cmds = name, []
        self.redactor = None

    def run(self, cmd, check=True, **kw):
        self.cmds.append(cmd)
        if "@@links" in cmd:
            return Result(HOST_SNAPSHOT)
        return Result(HOST_PREFLIGHT if "SSH_CONNECTION" in cmd else "")


class OnyxCli:
    """The Onyx CLI as the driver sees it (netmiko's send / send_config_set)."""
    summary = (SAMPLES / "ansible--onyx_port_channel_show.json").read_text()
    sent, configured = [], []
    down = None         # an error every send raises (the switch does not answer)

    def __init__(self, session, device_type):
        assert device_type == "mellanox_mlnxos"

    status = (SAMPLES / "ansible--onyx_interfaces_status.json").read_text()

    def send(self, command):
        if OnyxCli.down is not None:
            raise OnyxCli.down
        OnyxCli.sent.append(command)
        if command == "show interfaces ethernet status | json-print":
            return OnyxCli.status
        return OnyxCli.summary

    def config(self, lines):
        OnyxCli.configured.append(list(lines))
        return ""


@pytest.fixture
def rack3_rt(tmp_path, monkeypatch):
    """rack3 with every address on 127.0.0.1 and no PDU (nothing leaves this
    machine; no session is opened), every node's session a recorder."""
    data = yaml.safe_load((ROOT / "labs" / "rack3.yaml").read_text())
    for section in ("hosts", "switches"):
        for spec in data[section].values():
            spec["management"]["address"] = "127.0.0.1"
    data.pop("pdus"), data.pop("bmcs")
    for h in data["hosts"].values():
        h.pop("bmc", None)
    for c in data["cables"]:
        c["faults"] = [f for f in c["faults"] if not isinstance(f, dict)]
    path = tmp_path / "rack3.yaml"
    path.write_text(yaml.safe_dump(data))
    monkeypatch.setenv("LAGHIL_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setattr("laghil.drivers.switch.nos.NetmikoChannel", OnyxCli)
    OnyxCli.sent, OnyxCli.configured, OnyxCli.down = [], [], None
    rt = LabRuntime(load_lab(str(path)), env={"LAGHIL_RACK3_SW_PASSWORD": "s3cret-pw"})
    sessions = {n: ShellSession(n) for n in rt.lab.nodes}
    monkeypatch.setattr(rt.sessions, "get", lambda name: sessions[name])
    return rt, sessions


def test_session_start_reads_an_onyx_switch_through_its_driver_never_a_shell(rack3_rt, tmp_path):
    rt, sessions = rack3_rt
    journal = Journal(rt.lab.name, path=tmp_path / "journal.jsonl")
    # a killed run left a port shut on sw3: replayed through the driver's CLI
    journal.add(UndoRecord("switch", "sw3", ("port_no_shutdown", ["Eth1/2"])))
    said = []
    base = tmp_path / "baseline.json"
    report = clean_start(rt, journal, baseline_file=base, save_baseline=True, say=said.append)
    assert sessions["sw3"].cmds == [], f"shell commands sent to the Onyx switch: {sessions['sw3'].cmds}"
    assert OnyxCli.configured == [["interface ethernet 1/2 no shutdown"]], OnyxCli.configured
    assert OnyxCli.sent and all(c.startswith("show ") for c in OnyxCli.sent), OnyxCli.sent
    sw = report["state"]["nodes"]["sw3"]
    assert sw["lags"] == {"port-channel22": {"members": ["Eth1/7"], "mode": "static"}}
    assert "port admin state" in report["unread"]["sw3"][0]
    assert any("switch sw3 has no shell: read through its onyx driver; not read: port admin "
               "state" in m for m in said), said
    # the hosts (and the jump host) took the shell snapshot
    assert all(any("@@links" in c for c in sessions[h].cmds) for h in rt.lab.hosts)

    # a port-channel appears that the baseline lacks: the lab is dirty, the restore
    # refuses to touch it, and still no shell command reaches the switch
    OnyxCli.summary = OnyxCli.summary.replace('"1 Po22(D)"', '"1 Po23(D)"')
    OnyxCli.configured.clear()
    with pytest.raises(LabDirty) as e:
        clean_start(rt, journal, baseline_file=base, restore=True, say=said.append)
    text = str(e.value)
    assert "sw3: lags port-channel23: not in the baseline" in text, text
    assert "sw3: lags port-channel22: gone since the baseline" in text, text
    assert "sw3: port-channel23 is not in the baseline" in text, text
    assert sessions["sw3"].cmds == [] and OnyxCli.configured == []


def test_an_unreachable_nos_switch_is_said_not_read(rack3_rt, tmp_path):
    from laghil.drivers.switch import SwitchError
    rt, sessions = rack3_rt
    OnyxCli.down = SwitchError("switch sw3: CLI session (mellanox_mlnxos) to 127.0.0.1:22 "
                               "failed: Authentication failed for s3cret-pw")
    said = []
    report = clean_start(rt, Journal(rt.lab.name, path=tmp_path / "j.jsonl"),
                         baseline_file=tmp_path / "b.json", say=said.append)
    (what,) = report["unread"]["sw3"]
    assert what.startswith("everything: switch sw3: CLI session") and "s3cret-pw" not in what, what
    assert any("switch sw3 has no shell" in m and "not read: everything" in m for m in said)
    assert sessions["sw3"].cmds == []


def test_a_shell_command_for_a_nos_switch_is_refused_before_anything_is_sent(rack3_rt):
    from laghil.drivers.switch import SwitchError
    from laghil.node import NoShell
    rt, sessions = rack3_rt
    sw = rt.node("sw3")
    assert not sw.has_shell and rt.node("srv1").has_shell and rt.node("jump3").has_shell
    with pytest.raises(NoShell, match="sw3: a onyx switch has no shell; laghil reads and "
                                      "changes it through its platform driver only"):
        sw.run("hostname")
    # carrier is asked of its driver, which reads it with a show command of the CLI
    OnyxCli.sent.clear()
    assert sw.carrier("Eth1/1") is False        # the sample's Eth1/1: Operational state Down
    assert OnyxCli.sent == ["show interfaces ethernet status | json-print"]
    with pytest.raises(SwitchError, match="Eth1/2 is not in `show interfaces ethernet status"):
        sw.carrier("Eth1/2")
    assert sessions["sw3"].cmds == []
