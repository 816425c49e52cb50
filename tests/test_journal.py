"""The undo journal (laghil.journal), the journaling undo stack, and the
clean-lab baseline's repairs (laghil.labstate) on captured snapshots."""

import json
import os
import shlex
from pathlib import Path
from types import SimpleNamespace

import pytest

from fixtures.undo import Defer
from laghil.drivers.netdev import NetdevState, restore_command
from laghil.errors import BadName, LaghilError
from laghil.journal import (Journal, JournalError, Undo, UndoRecord, line_mac, node_record,
                            node_undo, parse_journal)
from laghil.restore import replay, replay_step
from laghil.undo_actions import ACTIONS, build, kill_tagged
from laghil.lab import load_lab
from laghil.lab.model import DeviceNames
from laghil.labstate import diff_state, laghil_made, repairs
from laghil.netstate import parse_snapshot
from laghil.node import Node
from laghil.transport.redact import Redactor

CAP = Path(__file__).parent / "data" / "captures"


from fake_iproute import is_preflight, preflight_text  # noqa: E402


class FakeSession:
    def __init__(self, fail=()):
        self.cmds = []
        self.fail = fail

    def run(self, cmd, check=True, **kw):
        self.cmds.append(cmd)
        if any(f in cmd for f in self.fail):
            raise LaghilError(f"h1: command failed: {cmd}")
        if is_preflight(cmd):
            return SimpleNamespace(stdout=preflight_text(["swp1", "swp2", "swp3", "swp4"]),
                                   stderr="", rc=0)
        return SimpleNamespace(stdout="", stderr="", rc=0)

    def workdir(self, verify=False):
        return "/tmp/laghil.f4kef4kef4"


class FakeRack:
    def __init__(self):
        self.calls = []

    def set_cable(self, cable, up):
        self.calls.append(("cable", cable.name, up))
        return (0.0, 0.0)

    def set_port(self, node, port, up):
        self.calls.append(("port", node, port, up))
        return 0.0


def fake_rt(fail=()):
    lab = load_lab("virtual")
    sessions = {}

    def node(name):
        lab.node(name)
        sessions.setdefault(name, FakeSession(fail))
        return Node(name, lab.hosts.get(name) or lab.switches.get(name), "host", sessions[name])
    return SimpleNamespace(lab=lab, node=node, rack=FakeRack(), env={}, redactor=Redactor(),
                           sessions=sessions)


# ---- the file ------------------------------------------------------------------------
def rec(node="h1", action="link_delete", **params):
    return node_record(node, action, **(params or {"name": "lgbond0"}))


def test_journal_add_done_pending_and_compact(tmp_path):
    j = Journal("virtual", path=tmp_path / "j.jsonl", run_id="run1")
    a = j.add(rec())
    b = j.add([UndoRecord("cable", "h1-h2-a"), UndoRecord("port", "h1", ("eth1",))])
    assert [e.id for e in j.pending()] == [a, b]
    j.done(a)
    (only,) = j.pending()
    assert only.id == b and only.run == "run1" and [s.kind for s in only.steps] == ["cable", "port"]
    j.compact()
    assert len((tmp_path / "j.jsonl").read_text().splitlines()) == 1
    assert len(j.pending()) == 1, "a compacted journal is authenticated like the original"
    j.done(b)
    j.compact()
    assert not (tmp_path / "j.jsonl").exists(), "an empty journal is removed"


def test_a_write_cut_by_a_crash_is_ignored_and_any_other_bad_line_names_file_and_line(tmp_path):
    j = Journal("virtual", path=tmp_path / "j.jsonl")
    j.add(rec())
    text = (tmp_path / "j.jsonl").read_text()
    cut = text + '{"op":"add","id":"x","steps":[{"kind":"node","tar'
    assert len(parse_journal(cut, key=j.key())) == 1, "the last line without its newline: never acted on"
    with pytest.raises(JournalError, match=r"j.jsonl:2: refused, nothing of this journal is "
                                           r"replayed .*remove the file"):
        parse_journal(text + "junk\n" + text, str(tmp_path / "j.jsonl"), j.key())
    with pytest.raises(JournalError, match=r":1: .*unknown kind 'rm'"):
        parse_journal('{"op":"add","id":"y","steps":[{"kind":"rm","target":"h1"}]}\n')


@pytest.mark.parametrize("record, why", [
    # the old free-text shell record: never again
    ({"kind": "run", "target": "h1", "args": ["touch /tmp/x", True]}, "unknown kind 'run'"),
    ({"kind": "node", "target": "h1", "args": ["shell", {"cmd": "id"}]}, "not an undo action"),
    ({"kind": "node", "target": "h1", "args": ["link_delete", {"name": "x;reboot"}]},
     "link_delete: name: .*not a valid interface name"),
    ({"kind": "node", "target": "h1", "args": ["link_delete", {"name": "eth1\nreboot"}]},
     "not a valid interface name"),
    ({"kind": "node", "target": "h1", "args": ["link_delete", {"name": "e", "cmd": "id"}]},
     "unknown parameter"),
    ({"kind": "node", "target": "h1", "args": ["addr_del", {"name": "eth1"}]}, "missing"),
    ({"kind": "node", "target": "h1", "args": ["neigh_del", {"name": "eth1",
                                                             "addr": "10.0.0.2/30"}]},
     "not an IP address"),
    ({"kind": "node", "target": "h1", "args": ["kill_tagged", {"tag": "laghil-x1234567",
                                                               "workdir": "/etc"}]},
     "not a laghil private folder"),
    ({"kind": "node", "target": "h1", "args": ["bond_rebuild", {
        "name": "lglag1", "mode": "802.3ad", "members": ["swp1"],
        "options": {"miimon": "10; reboot"}}]}, "bond option"),
    ({"kind": "node", "target": "h1;id", "args": ["link_delete", {"name": "e"}]}, "not a valid"),
    ({"kind": "node", "target": "h1", "args": ["link_delete"]}, "arguments"),
    ({"kind": "pdu", "target": "pdu1", "args": [True]}, "arguments"),
    ({"kind": "switch", "target": "sw1", "args": ["lag_create", ["swp1"]]}, "not a switch undo"),
    ({"kind": "switch", "target": "sw1", "args": ["port_no_shutdown", ["swp1; reload"]]},
     "CLI words"),
    ({"kind": "switch", "target": "sw1", "args": ["lag_remove", ["lglag1", "swp1"]]},
     "CLI words"),
])
def test_records_from_a_file_are_checked(record, why):
    with pytest.raises(JournalError, match=why):
        UndoRecord.from_json(record)


@pytest.mark.parametrize("act", sorted(ACTIONS))
def test_every_action_refuses_shell_text_in_every_parameter(act):
    """Every parameter of every action, given shell text, is refused (so no
    journal line can put a command of its choosing on a node)."""
    required, optional, _ = ACTIONS[act]
    for p in [*required, *optional]:
        with pytest.raises(BadName):
            build(act, {**_valid(act), p: "x; reboot"})


def _valid(act):
    """A valid parameter set of every action (their builders run on it)."""
    member = {"name": "eth1", "master": False, "mac": "52:54:00:00:01:01", "mtu": 1500,
              "addrs": ["10.0.0.1/24"], "up": True}
    values = {"name": "lgbond0", "team": False, "members": [member], "up": True,
              "addr": "10.0.0.1/24", "dev": "rxe_lgbond0", "ns": "lgns1", "parent": "ingress",
              "pf": "eth1", "pci": "0000:08:00.0", "tag": "laghil-probe-run-0a1b2c3d",
              "bond": "lgbond0", "bridge": "lgbr0", "vlans": [[100, ["PVID"]]],
              "master": "lgbr0", "mode": "802.3ad", "options": {"miimon": "10"},
              "workdir": "/tmp/laghil.0a1b2c3d4e"}
    if act == "bond_rebuild":
        values["members"] = ["swp1", "swp2"]
    if act == "neigh_del":
        values["addr"] = "10.0.0.2"
    required, _, _ = ACTIONS[act]
    return {p: values[p] for p in required}


@pytest.mark.parametrize("act", sorted(ACTIONS))
def test_every_action_builds_a_command_from_valid_data(act):
    cmd = build(act, _valid(act))
    assert cmd and "\n" not in cmd
    ns = build(act, {**_valid(act), "netns": "lgns1"})
    assert ns.startswith("[ -e /run/netns/lgns1 ] || exit 0; ip netns exec lgns1 sh -c ")


def test_every_write_is_flushed_to_disk(tmp_path, monkeypatch):
    synced = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real(fd)))
    j = Journal("virtual", path=tmp_path / "j.jsonl")
    j.key()
    synced.clear()
    j.done(j.add(rec()))
    assert len(synced) == 2


# ---- authenticated lines ------------------------------------------------------------------
def test_a_line_edited_copied_or_without_its_hmac_is_refused_naming_file_and_line(tmp_path):
    """Each line carries an HMAC of the controller's key (the state folder's
    ``journal/key``, 0600): an edited line, a line from another controller's
    journal, or one without a MAC is refused before anything of it runs."""
    folder = tmp_path / "journal"
    j = Journal("virtual", path=folder / "virtual.jsonl")
    j.add(rec())
    key = folder / "key"
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    good = j.path.read_text()
    edited = good.replace('"lgbond0"', '"eth0"')
    j.path.write_text(good + edited)
    with pytest.raises(JournalError, match=r"virtual.jsonl:2: refused.*HMAC does not match"):
        j.pending()
    other = Journal("virtual", path=tmp_path / "other" / "virtual.jsonl")
    other.add(rec(name="lgbond1"))
    j.path.write_text(good + other.path.read_text())
    with pytest.raises(JournalError, match=r"virtual.jsonl:2: .*another controller"):
        j.pending()
    obj = json.loads(good)
    del obj["mac"]
    j.path.write_text(json.dumps(obj) + "\n")
    with pytest.raises(JournalError, match=r"virtual.jsonl:1: .*HMAC"):
        j.pending()
    j.path.write_text(good)
    key.unlink()
    with pytest.raises(JournalError, match=r"virtual.jsonl:1: .*HMAC"):
        Journal("virtual", path=folder / "virtual.jsonl").pending()


def test_a_shell_command_in_the_journal_is_refused_at_session_start_and_nothing_runs(tmp_path):
    """Even a line with a valid HMAC (written with the controller's own key)
    that carries a shell command is refused, naming the file and line, by the
    session start's replay; no line of that journal runs, the valid ones
    neither."""
    j = Journal("virtual", path=tmp_path / "journal" / "virtual.jsonl")
    j.add(rec())
    evil = {"op": "add", "id": "e0e0", "run": "x", "t": 1.0,
            "steps": [{"kind": "run", "target": "h1", "args": ["touch /tmp/owned", True]}]}
    evil["mac"] = line_mac(j.key(), evil)
    with open(j.path, "a") as f:
        f.write(json.dumps(evil) + "\n")
    rt = fake_rt()
    with pytest.raises(JournalError, match=r"virtual.jsonl:2: refused.*unknown kind 'run'"):
        replay(rt, j, say=lambda m: None)
    assert not any(s.cmds for s in rt.sessions.values()), "a line of a refused journal ran"
    assert rt.rack.calls == []


# ---- what gets journaled -------------------------------------------------------------
def test_defer_journals_before_the_change_and_clears_after_the_undo(tmp_path):
    rt = fake_rt()
    h1 = rt.node("h1")
    j = Journal("virtual", path=tmp_path / "j.jsonl")
    undo = Defer(journal=j)
    undo(node_undo(h1, "link_delete", name="lgbond0"))
    (e,) = j.pending()
    assert e.steps == [rec()]
    assert undo.run_all() == []
    assert h1.session.cmds == [build("link_delete", {"name": "lgbond0"})] and j.pending() == []


def test_an_undo_runs_the_command_a_later_process_would_replay(tmp_path):
    rt = fake_rt()
    u = node_undo(rt.node("h1"), "qdisc_delete", name="eth1", parent="clsact")
    u()
    (r,) = u.records
    assert rt.sessions["h1"].cmds == [r.command()] == ["tc qdisc del dev eth1 clsact "
                                                       "2>/dev/null; true"]


def test_a_failed_undo_stays_in_the_journal_for_the_next_session(tmp_path):
    rt = fake_rt(fail=("del",))
    j = Journal("virtual", path=tmp_path / "j.jsonl")
    undo = Defer(journal=j)
    undo(node_undo(rt.node("h1"), "link_delete", check=True, name="lgbond0", what="bond gone"))
    undo(lambda: None)      # process-local: not journaled
    failures = undo.run_all()
    assert len(failures) == 1 and "ip link del" in failures[0]
    assert [e.describe() for e in j.pending()] == ["h1: bond gone"]


def test_a_plain_callable_is_not_journaled(tmp_path):
    rt = fake_rt()
    j = Journal("virtual", path=tmp_path / "j.jsonl")
    Defer(journal=j)(rt.node("h1").run, "ip link del dev lgbond0")
    assert j.pending() == []


def test_injectors_journal_how_a_later_process_reverts_them():
    from laghil.faults.injectors import HostLinkDown, PduOutletOff, VirtualCablePull
    rt = SimpleNamespace(lab=load_lab("virtual"), rack=object())
    pull = VirtualCablePull.__new__(VirtualCablePull)
    pull.rt, pull.cable = rt, rt.lab.cable("h1-h2-a")
    assert pull.revert_records() == [UndoRecord("cable", "h1-h2-a")]
    down = HostLinkDown.__new__(HostLinkDown)
    down.host, down.port, down.far = "h1", "eth1", None
    up = node_record("h1", "link_set", name="eth1", up=True, what="eth1 up (link-down fault)")
    assert down.revert_records() == [up]
    assert up.command() == "ip link set dev eth1 up"
    # in the rack: the admin-up, then the carrier at both ends of the wire
    down.far = ("sw1", "swp1")
    assert down.revert_records() == [up, UndoRecord("port", "sw1", ("swp1",)),
                                     UndoRecord("port", "h1", ("eth1",))]
    off = PduOutletOff.__new__(PduOutletOff)
    off.pdu_name, off.outlet = "pdu1", 3
    assert off.revert_records() == [UndoRecord("pdu", "pdu1", (3,))]
    # inject registers the revert with those records, before the fault
    got = []
    off.rt, off.label, off.active, off.t_revert = SimpleNamespace(), "pdu1 outlet 3 off", False, None
    off._inject = lambda: got.append("off") or 1.0
    off.inject(defer=lambda u: got.append(u))
    assert isinstance(got[0], Undo) and got[0].records == off.revert_records() and got[1] == "off"


def test_an_upper_device_journals_its_delete_and_its_members_as_they_were():
    from laghil.drivers.bond import Bond
    rt = fake_rt()
    b = Bond(rt.node("h1"), "lgbond0", "active-backup", ["eth1", "eth2"], miimon=10)
    b._saved = [NetdevState("eth1", "52:54:00:00:01:01", 1500, True, None, ("10.0.0.1/24",)),
                NetdevState("eth2", "52:54:00:00:01:02", 9000, False, None, ())]
    (r,) = b.destroy_undo().records
    assert r.kind == "node" and r.target == "h1" and r.args[0] == "netdev_destroy"
    cmd = r.command()
    assert cmd.startswith("if [ -e /sys/class/net/lgbond0 ]; then ip link del dev lgbond0")
    assert "ip link set dev eth2 mtu 9000" in cmd and "ip link set dev eth2 down; fi" in cmd
    assert "ip addr replace 10.0.0.1/24 dev eth1" in cmd
    assert UndoRecord.from_json(json.loads(json.dumps(r.to_json()))) == r, "through the file"


def test_restore_command_refuses_what_is_not_a_mac_or_an_address():
    with pytest.raises(LaghilError, match="MAC"):
        restore_command(NetdevState("eth1", "52:54;reboot", 1500, True, None, ()))
    with pytest.raises(LaghilError, match="address"):
        restore_command(NetdevState("eth1", None, 1500, True, None, ("1.2.3.4/24;id",)))


def test_switch_undos_are_journaled_as_data():
    from laghil.drivers.switch import LinuxSwitch
    rt = fake_rt()
    sw = LinuxSwitch(rt.node("sw1"))
    j = []
    sw.port_shutdown("swp1", defer=lambda fn: j.append(fn.records))
    assert j == [[UndoRecord("switch", "sw1", ("port_no_shutdown", ["swp1"]))]]
    j.clear()
    sw.lag_member_add("lglag1", "swp3", defer=lambda fn: j.append(fn.records))
    (r,) = j[0]
    assert r.args == ("release", {"name": "swp3", "master": "lglag1", "up": True})
    assert "nomaster" in r.command()


def test_a_nos_lag_is_journaled_as_its_driver_s_removal():
    from laghil.drivers.switch.onyx import OnyxSwitch
    sw = OnyxSwitch.__new__(OnyxSwitch)
    sw.node = SimpleNamespace(name="sw3", spec=SimpleNamespace(ports={"Eth1/1": {}, "Eth1/2": {}}))
    configured = []
    sw.cli = SimpleNamespace(config=lambda lines: configured.append(lines) or "",
                             send=lambda cmd: "")
    sw.lags = lambda: {1: None}         # the switch shows the LAG: the undo removes it
    u = sw.lag_remove_undo("lglag1", ["Eth1/1", "Eth1/2"])
    assert u.records == [UndoRecord("switch", "sw3", ("lag_remove", ["lglag1",
                                                                     ["Eth1/1", "Eth1/2"]]),
                                    "delete LAG lglag1")]
    u()
    assert configured == [sw.lag_delete_lines(1, ["Eth1/1", "Eth1/2"])]


# ---- replay --------------------------------------------------------------------------
def test_replay_runs_newest_first_marks_done_and_keeps_a_failure(tmp_path):
    rt = fake_rt(fail=("explode",))
    j = Journal("virtual", path=tmp_path / "j.jsonl")
    j.add(rec())
    j.add(rec("h2", "link_delete", name="explode"))
    j.add([UndoRecord("cable", "h1-h2-a"), UndoRecord("port", "h1", ("eth1",))])
    said = []
    out = replay(rt, j, say=said.append)
    assert [o.ok for o in out] == [True, False, True]
    assert rt.rack.calls == [("cable", "h1-h2-a", True), ("port", "h1", "eth1", True)]
    assert rt.sessions["h1"].cmds == [build("link_delete", {"name": "lgbond0"})]
    assert "FAILED" in said[1] and "explode" in said[1]
    assert [e.steps[0].args[1]["name"] for e in j.pending()] == ["explode"]


def test_replay_dry_run_changes_nothing(tmp_path):
    rt = fake_rt()
    j = Journal("virtual", path=tmp_path / "j.jsonl")
    j.add(rec())
    said = []
    replay(rt, j, dry_run=True, say=said.append)
    assert rt.sessions.get("h1") is None or rt.sessions["h1"].cmds == []
    assert said[0].startswith("would restore: h1: link_delete {'name': 'lgbond0'}")
    assert len(j.pending()) == 1


def test_replay_names_an_unknown_node():
    with pytest.raises(LaghilError, match="h9"):
        replay_step(fake_rt(), rec("h9"))


# ---- the baseline --------------------------------------------------------------------
def _state(*captures):
    return {"nodes": {"h1": parse_snapshot((CAP / captures[0]).read_text())},
            "pdus": {"pdu1": {"1": True, "2": captures[1] if len(captures) > 1 else True}}}


def test_diff_against_the_baseline_on_captured_snapshots():
    base, now = _state("h1-snapshot-plain.txt"), _state("h1-snapshot-bond-rxe.txt", False)
    diff = diff_state(base, now)
    assert "h1: links bond0: not in the baseline ({'admin_up': True" in diff[0]
    assert "pdu pdu1 outlet 2: was on, now off" in diff
    assert diff_state(base, base) == []


def test_repairs_delete_only_what_laghil_makes_and_say_what_they_leave():
    base, now = _state("h1-snapshot-plain.txt"), _state("h1-snapshot-bond-rxe.txt", False)
    lab = SimpleNamespace(device_names=DeviceNames())        # lgbond0...: bond0 is not laghil's
    steps, refused = repairs(lab, base, now, {"h1": {"mgmt0"}})
    assert not any("ip link del dev bond0" in s.command() for s in steps if s.kind == "node")
    assert any("bond0 (bond) is not in the baseline and laghil did not make it" in r
               for r in refused)
    assert any("RDMA link rxe0/1" in r for r in refused)
    assert any("netns lgtest" in r for r in refused)
    assert UndoRecord("pdu", "pdu1", (2,), "outlet 2 back on") in steps


def test_repairs_of_a_left_bond_named_as_laghil_names_it():
    base, now = _state("h1-snapshot-plain.txt"), _state("h1-snapshot-bond-rxe.txt")
    lab = SimpleNamespace(device_names=DeviceNames(bond="bond0"))
    steps, refused = repairs(lab, base, now, {"h1": {"mgmt0"}}, virtual=True)
    cmds = [s.command() for s in steps if s.kind == "node"]
    assert cmds[0] == "if [ -e /sys/class/net/bond0 ]; then ip link del dev bond0; fi"
    eth2 = next(c for c in cmds if "dev eth2" in c)
    assert "nomaster" in eth2 and "address 52:54:00:00:01:02" in eth2
    assert not any("fe80" in c for c in cmds), "link-local addresses come back by themselves"
    assert not any("mgmt0" in c for c in cmds)


def test_the_management_interface_is_never_repaired():
    base = _state("h1-snapshot-plain.txt")
    now = json.loads(json.dumps(base))
    now["nodes"]["h1"]["links"]["mgmt0"]["mtu"] = 9000
    steps, refused = repairs(SimpleNamespace(device_names=DeviceNames()), base, now,
                             {"h1": {"mgmt0"}})
    assert steps == [] and "mgmt0 differs from the baseline but is the management" in refused[0]


def test_laghil_made_names():
    lab = SimpleNamespace(device_names=DeviceNames())
    assert laghil_made(lab, "lgbond0") and laghil_made(lab, "lgbond0.100")
    assert laghil_made(lab, "lglag2") and not laghil_made(lab, "bond0")
    assert not laghil_made(lab, "eth1")


def test_a_probe_journals_how_to_end_its_agents_by_their_run_id():
    from laghil.measure.probe import Probe
    rt = fake_rt()
    p = Probe(rt.node("h1"), rt.node("h2"), "192.168.201.2", duration_s=5)
    u = p.stop_undo()
    recs = u.records
    assert u.fn == p.stop and [r.target for r in recs] == ["h1", "h2"]
    assert recs[0].args == ("kill_tagged", {"tag": f"laghil-probe-run-{p._rid}",
                                            "workdir": "/tmp/laghil.f4kef4kef4"})
    cmd = recs[0].command()
    assert f"laghil-probe-run-{p._rid}" not in cmd, "the tag is split in the script"
    assert 'rm -f -- /tmp/laghil.f4kef4kef4/"$t".*' in cmd


def test_the_kill_by_tag_script_ends_only_the_tagged_processes():
    """Run by this machine's /bin/sh: a process with the tag in its command line
    and one with it in its environment end; an untagged one and the script
    itself live."""
    import subprocess
    import time
    tag = "laghil-probe-run-5eed0001"
    argv = subprocess.Popen(["bash", "-c", f"exec -a {tag} sleep 30"])
    env = subprocess.Popen(["sleep", "30"], env={"LAGHIL_TAG": tag, "PATH": os.environ["PATH"]})
    other = subprocess.Popen(["sleep", "30"])
    time.sleep(0.3)
    try:
        r = subprocess.run(["sh", "-c", kill_tagged(tag)], capture_output=True, timeout=30)
        assert r.returncode == 0
        assert argv.wait(timeout=5) == -15 and env.wait(timeout=5) == -15
        assert other.poll() is None
    finally:
        for p in (argv, env, other):
            if p.poll() is None:
                p.kill()
                p.wait()
    with pytest.raises(BadName):
        kill_tagged("x; reboot")
    with pytest.raises(BadName, match="not a laghil private folder"):
        kill_tagged(tag, "/tmp")
    assert "rm -f -- /tmp/laghil.0a1b2c3d4e/" in kill_tagged(tag, "/tmp/laghil.0a1b2c3d4e")


def test_a_namespace_s_undos_are_journaled_inside_it():
    from laghil.drivers.bond import Bond
    from laghil.node import NetnsNode
    rt = fake_rt()
    ns = NetnsNode(rt.node("h1"), "lgns1")
    u = node_undo(ns, "link_delete", name="lgbond0")
    (r,) = u.records
    assert r.args[1]["netns"] == "lgns1"
    assert r.command() == ("[ -e /run/netns/lgns1 ] || exit 0; ip netns exec lgns1 sh -c "
                           f"{shlex.quote(build('link_delete', {'name': 'lgbond0'}))}")
    u()         # in this process: the namespace node wraps the command itself
    assert rt.sessions["h1"].cmds[-1] == ("ip netns exec lgns1 sh -c "
                                          f"{shlex.quote(build('link_delete', {'name': 'lgbond0'}))}")
    b = Bond(ns, "lgbond0", "active-backup", ["eth7", "eth8"], miimon=10)
    (r,) = b.destroy_undo().records
    assert "ip netns exec lgns1 sh -c" in r.command() and r.what.startswith("delete bond")


def test_a_journal_another_user_could_have_written_is_refused_and_nothing_of_it_runs(tmp_path):
    """Its lines run on the lab at the next session start: a journal file that
    is writable by others, is a link, or is another user's is refused naming
    the file and the fix, before anything in it is replayed."""
    folder = tmp_path / "journal"
    j = Journal("virtual", path=folder / "virtual.jsonl", run_id="run1")
    j.add(rec())
    assert oct(folder.stat().st_mode & 0o777) == "0o700"
    assert oct(j.path.stat().st_mode & 0o777) == "0o600"
    rt = fake_rt()
    j.path.chmod(0o666)
    with pytest.raises(JournalError, match=r"virtual.jsonl: the journal has mode 0666, writable "
                                           r"by group and others.*`chmod 600 "):
        replay(rt, j, say=lambda m: None)
    with pytest.raises(JournalError, match="mode 0666"):
        j.add(rec())           # nor written to
    assert not any(rt.sessions.get("h1", FakeSession()).cmds), "a refused journal's line ran"
    j.path.chmod(0o600)
    (folder / "key").chmod(0o644)
    with pytest.raises(JournalError, match=r"key: the journal key has mode 0644: others could read it"):
        Journal("virtual", path=folder / "virtual.jsonl").pending()
    (folder / "key").chmod(0o600)
    folder.chmod(0o777)
    with pytest.raises(JournalError, match=r"journal: the journal folder has mode 0777.*chmod 700"):
        j.pending()
    folder.chmod(0o700)
    real = tmp_path / "elsewhere.jsonl"
    j.path.rename(real)
    j.path.symlink_to(real)
    with pytest.raises(JournalError, match="is a symbolic link"):
        j.pending()
    j.path.unlink()
    real.rename(j.path)
    if os.geteuid() == 0:                        # only root can give a file away
        os.chown(j.path, 65534, 65534)
        with pytest.raises(JournalError, match=r"owned by uid 65534, not by this user"):
            replay(rt, j, say=lambda m: None)
        assert not any(rt.sessions.get("h1", FakeSession()).cmds), "a refused journal's line ran"
        os.chown(j.path, 0, 0)
    assert len(j.pending()) == 1, "a journal of this user's, 0600, is read"


def test_the_journal_imports_no_driver_power_or_rack_module():
    """Records and the file only: the replay (above drivers, power, rack) is
    laghil.restore; no import cycle runs through the journal."""
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-c", "import sys, laghil.journal; print(' '.join("
                          "m for m in sys.modules if m.startswith('laghil')))"],
                         capture_output=True, text=True, check=True).stdout.split()
    assert not [m for m in out if m.split(".")[1:2] and m.split(".")[1] in
                ("drivers", "power", "vlab", "faults", "measure", "transport")], out
