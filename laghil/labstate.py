"""The clean-lab baseline: the lab's network state when nothing of a run is on
it, recorded once (``laghil lab baseline``) and compared at the start of every
session, so that a run never takes a lab a killed run left broken for normal.

The state is the session check's snapshot of every SSH node (links with admin
state, carrier, MAC, MTU and master, addresses, bonds/teams/VLANs/bridges by
kind, RDMA links, namespaces; a Linux switch's LAGs and port admin state are
its netdevs) plus every PDU outlet's power state.

:func:`repairs` turns a difference into the steps that put the lab back
(journaled records, :mod:`laghil.journal`), and the differences it will not
repair, each with why: it only deletes what laghil itself makes (the lab's
``defaults.devices`` names), never touches the management interface, and
cannot bring back what only a person can (an address somebody removed).
"""

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .drivers.rdma import added_by_laghil
from .errors import LaghilError
from .journal import UndoRecord, node_record
from .names import check_name
from .netstate import SNAPSHOT_COMMAND, diff_snapshots, parse_snapshot
from .paths import state_root

BASELINE_VERSION = 1


class BaselineError(LaghilError):
    pass


def baseline_path(lab_name, env=None):
    return state_root(env) / "baselines" / f"{check_name(lab_name, 'lab name')}.json"


def node_snapshot(rt, n):
    """The state of one node: the shell snapshot, or for a switch without a shell
    what its driver reads (``unread`` says what it could not, the error
    included when the switch did not answer); never a shell command to it."""
    if n.has_shell:
        return parse_snapshot(n.run(SNAPSHOT_COMMAND).stdout)
    from .drivers.switch import switch_driver
    try:
        return switch_driver(n).snapshot()
    except LaghilError as e:
        return {"unread": [f"everything: {rt.redactor.redact(str(e))}"]}


def unread(state):
    """{node: [what was not read]} of a lab state (switches read through a driver)."""
    return {n: s["unread"] for n, s in sorted(state["nodes"].items()) if s.get("unread")}


def snapshot_nodes(rt):
    """{node: parsed snapshot} for every SSH node, taken in parallel."""
    nodes = rt.ssh_nodes

    def one(n):
        return n.name, node_snapshot(rt, n)
    with ThreadPoolExecutor(max_workers=max(1, len(nodes))) as ex:
        return dict(ex.map(one, nodes))


def outlet_states(rt):
    """{pdu: {outlet: on}} of every outlet the lab declares ({} where a PDU does
    not answer: said as such, the node snapshots still count)."""
    from .power.pdu import PduControl
    out = {}
    for name, pdu in rt.lab.pdus.items():
        try:
            ctl = PduControl(rt.lab, name, env=rt.env)
            out[name] = {str(o): bool(ctl.state(o)) for o in sorted(pdu.outlets)}
        except LaghilError as e:
            out[name] = {"error": rt.redactor.redact(str(e))}
    return out


def lab_state(rt):
    return {"version": BASELINE_VERSION, "lab": rt.lab.name, "taken": round(time.time(), 3),
            "nodes": snapshot_nodes(rt), "pdus": outlet_states(rt)}


def write_baseline(state, path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)
    return path


def load_baseline(path):
    """The baseline at ``path``, or None when there is none; BaselineError
    naming the file when it is not one."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        d = json.loads(path.read_text())
    except ValueError as e:
        raise BaselineError(f"{path}: not a laghil baseline (JSON: {e})") from None
    if not isinstance(d, dict) or d.get("version") != BASELINE_VERSION \
            or not isinstance(d.get("nodes"), dict):
        raise BaselineError(f"{path}: not a laghil baseline of version {BASELINE_VERSION} "
                            "(record one with `laghil lab baseline`)")
    return d


def diff_state(baseline, current):
    """Human-readable differences, baseline -> now (empty: the lab is clean)."""
    out = []
    for name in sorted(set(baseline["nodes"]) | set(current["nodes"])):
        if name not in current["nodes"]:
            out.append(f"{name}: in the baseline, not in the lab now")
            continue
        if name not in baseline["nodes"]:
            out.append(f"{name}: not in the baseline (record a new one after changing the lab)")
            continue
        out += [d.replace("after the run", "since the baseline").replace("left behind by the "
                                                                         "run", "not in the baseline")
                for d in diff_snapshots(baseline["nodes"][name], current["nodes"][name], node=name)]
    for pdu, outlets in sorted(baseline.get("pdus", {}).items()):
        now = current.get("pdus", {}).get(pdu, {})
        for o, on in sorted(outlets.items()):
            if o == "error" or "error" in now:
                continue
            if now.get(o) != on:
                out.append(f"pdu {pdu} outlet {o}: was {'on' if on else 'off'}, now "
                           f"{'on' if now.get(o) else 'off' if o in now else 'unknown'}")
    return out


def laghil_made(lab, ifname):
    """Is ``ifname`` one of the netdevs laghil makes on this lab (its
    ``defaults.devices`` names and what it builds on them: VLANs, probes of
    driver defaults)?"""
    n = lab.device_names
    return any(ifname == p or ifname.startswith(p) for p in (n.bond, n.team, n.bridge,
                                                               n.switch_lag))


def repairs(lab, baseline, current, management=None, virtual=False):
    """(steps, refused): the journal records that bring the lab back to its
    baseline, in order (deletes first, then members, links, addresses, power),
    and the differences left alone, each with the reason. ``management``:
    {node: {ifname}} never touched."""
    steps, refused = [], []
    management = management or {}
    for node in sorted(baseline["nodes"]):
        if node not in current["nodes"]:
            continue
        b, c = baseline["nodes"][node], current["nodes"][node]
        mgmt = management.get(node, set())
        bl, cl = b.get("links", {}), c.get("links", {})
        for name in sorted(set(cl) - set(bl)):
            kind = cl[name].get("kind")
            if not laghil_made(lab, name):
                refused.append(f"{node}: {name} ({kind or 'netdev'}) is not in the baseline and "
                               "laghil did not make it (not one of the lab's device names): left "
                               "alone, remove it by hand if it should not be there")
                continue
            steps.append(node_record(node, "team_delete" if kind == "team" else "link_delete",
                                     what=f"delete {kind or 'netdev'} {name} (not in the "
                                          "baseline, laghil's)", name=name))
        for name in sorted(set(bl) - set(cl)):
            refused.append(f"{node}: {name} is in the baseline and gone now: laghil cannot make "
                           "it again (a driver unloaded, a NIC removed?)")
        for name in sorted(set(bl) & set(cl)):
            want, now = bl[name], cl[name]
            if want == now:
                continue
            if name in mgmt:
                refused.append(f"{node}: {name} differs from the baseline but is the management "
                               "interface: never touched")
                continue
            fix = {}
            if now.get("master") != want.get("master"):
                fix.update({"master": want["master"]} if want.get("master") else
                           {"nomaster": True})
            if now.get("mac") != want.get("mac") and want.get("mac"):
                fix["mac"] = want["mac"]
            if now.get("mtu") != want.get("mtu") and want.get("mtu"):
                fix["mtu"] = int(want["mtu"])
            if fix or now.get("admin_up") != want.get("admin_up"):
                steps.append(node_record(node, "link_as", what=f"{name} as in the baseline",
                                         name=name, up=bool(want.get("admin_up")), **fix))
            if (want.get("operstate") == "UP" and now.get("operstate") != "UP"
                    and want.get("admin_up") and now.get("admin_up")):
                if virtual:
                    steps.append(UndoRecord("port", node, (name,),
                                            f"{name}: virtual carrier back"))
                else:
                    refused.append(f"{node}: {name} has no carrier (baseline: up): a cable, a "
                                   "switch port or the far end; not something laghil changes "
                                   "from here")
        ba, ca = b.get("addrs", {}), c.get("addrs", {})
        for name in sorted(set(ba) | set(ca)):
            if name in mgmt or (name not in cl):
                continue
            extra = sorted(set(ca.get(name, [])) - set(ba.get(name, [])))
            gone = sorted(set(ba.get(name, [])) - set(ca.get(name, [])))
            if extra and laghil_made(lab, name):
                continue    # deleted with the device
            for a in extra:
                steps.append(node_record(node, "addr_del", name=name, addr=a,
                                         what=f"{name}: address {a} not in the baseline"))
            for a in gone:
                if a.lower().startswith("fe80:"):
                    continue    # link-local: the kernel makes it again when the link is up
                steps.append(node_record(node, "addr_replace", name=name, addr=a,
                                         what=f"{name}: address {a} of the baseline"))
        for link in sorted(set(c.get("rdma", {})) - set(b.get("rdma", {}))):
            dev = link.split("/")[0]
            netdev = (c["rdma"][link] or {}).get("netdev") or ""
            if laghil_made(lab, netdev) and added_by_laghil(dev, netdev):
                steps.append(node_record(node, "rdma_link_delete", dev=dev,
                                         what=f"RDMA link {dev} over {netdev}"))
            else:
                refused.append(f"{node}: RDMA link {link} not in the baseline and not laghil's")
        for lag in sorted(set(c.get("lags", {})) - set(b.get("lags", {}))):
            refused.append(f"{node}: {lag} is not in the baseline: a switch without a shell is "
                           "changed only by a journaled undo of laghil's (`laghil lab restore`); "
                           "remove it by hand if it should not be there")
        for ns in sorted(set(c.get("netns", [])) - set(b.get("netns", []))):
            if ns.startswith(lab.device_names.netns):
                steps.append(node_record(node, "netns_delete", ns=ns,
                                         what=f"delete netns {ns} (laghil's)"))
            else:
                refused.append(f"{node}: netns {ns} not in the baseline and not laghil's (not "
                               f"{lab.device_names.netns}*): left alone")
    for pdu, outlets in sorted(baseline.get("pdus", {}).items()):
        now = current.get("pdus", {}).get(pdu, {})
        for o, on in sorted(outlets.items()):
            if o == "error" or "error" in now or now.get(o) == on or o not in now:
                continue
            if on:
                steps.append(UndoRecord("pdu", pdu, (int(o),), f"outlet {o} back on"))
            else:
                refused.append(f"pdu {pdu} outlet {o}: off in the baseline, on now: laghil "
                               "never switches an outlet off to restore a lab")
    return steps, refused


# ---- the start of a session ------------------------------------------------------------
class LabDirty(LaghilError):
    """The lab differs from its clean baseline; ``diff`` lists how."""

    def __init__(self, message, diff):
        super().__init__(message)
        self.diff = list(diff)


def management_of(rt):
    """{node: {ifname}}: the interfaces each SSH session runs over (and what they sit on)."""
    from .drivers.netdev import read_netdevs
    return {n.name: set(read_netdevs(n).management) for n in rt.shell_nodes}


def apply_repairs(rt, steps, journal, say=print):
    """Run each repair step, journaled first (a crash mid-repair leaves the rest
    for the next restore); [(step, ok, detail)]."""
    from .restore import replay_step
    out = []
    for step in steps:
        entry = journal.add(step) if journal is not None else None
        try:
            replay_step(rt, step)
        except LaghilError as e:
            out.append((step, False, rt.redactor.redact(str(e))))
            say(f"baseline {rt.lab.name}: FAILED: {step.describe()}: {out[-1][2]}")
            continue
        if entry is not None:
            journal.done(entry)
        out.append((step, True, ""))
        say(f"baseline {rt.lab.name}: restored: {step.describe()}")
    if journal is not None:
        journal.compact()
    return out


def settled_state(rt, baseline, tries=4, wait=1.0):
    """The lab's state, re-read while it still differs from ``baseline`` (carrier
    and operstate take a moment after a restore)."""
    state = lab_state(rt)
    for _ in range(tries - 1):
        if baseline is None or not diff_state(baseline, state):
            break
        time.sleep(wait)
        state = lab_state(rt)
    return state


def clean_start(rt, journal, *, baseline_file=None, restore=False, save_baseline=False,
                dry_run=False, say=print):
    """What a session does before its first test: replay the lab's journal
    (newest first), then compare the lab with its baseline. A difference raises
    LabDirty with the diff unless ``restore``, which journals and runs the
    repairs it can and says what it could not. With no baseline, ``save_baseline``
    records the state now as the lab's baseline. Returns a report dict (for
    results.json and report.html) whose ``state`` is the lab's state now."""
    from .restore import replay
    report = {"restored": [], "baseline": None, "diff": [], "repaired": [], "refused": [],
              "saved_baseline": None}
    report["restored"] = [{"ok": o.ok, "what": o.entry.describe(), "detail": o.detail,
                           "run": o.entry.run}
                          for o in replay(rt, journal, dry_run=dry_run, say=say)]
    path = Path(baseline_file) if baseline_file else baseline_path(rt.lab.name, rt.env)
    base = load_baseline(path)
    state = settled_state(rt, base) if report["restored"] else lab_state(rt)
    report["unread"] = unread(state)
    for node, what in report["unread"].items():
        say(f"baseline {rt.lab.name}: switch {node} has no shell: read through its "
            f"{rt.lab.switches[node].platform} driver; not read: {'; '.join(what)}")
    if base is None:
        if save_baseline and not dry_run:
            write_baseline(state, path)
            report["saved_baseline"] = str(path)
            say(f"baseline {rt.lab.name}: none yet; recorded this clean start as the lab's "
                f"baseline ({path})")
        else:
            say(f"baseline {rt.lab.name}: none recorded ({path}); the lab is not compared with a "
                f"clean state: record one with `laghil lab baseline --lab {rt.lab.name}` or "
                "--save-baseline")
        report["state"] = state
        return report
    report["baseline"] = str(path)
    diff = diff_state(base, state)
    report["diff"] = diff
    if diff and (restore or dry_run):
        steps, refused = repairs(rt.lab, base, state, management_of(rt), rt.rack is not None)
        report["refused"] = refused
        if dry_run:
            for s in steps:
                say(f"would repair: {s.describe()}")
            for r in refused:
                say(f"would not repair: {r}")
            report["state"] = state
            return report
        report["repaired"] = [{"ok": ok, "what": s.describe(), "detail": d}
                              for s, ok, d in apply_repairs(rt, steps, journal, say)]
        for r in refused:
            say(f"baseline {rt.lab.name}: not repaired: {r}")
        state = settled_state(rt, base)
        diff = diff_state(base, state)
    report["state"] = state
    if diff:
        raise LabDirty(f"lab {rt.lab.name}: differs from its baseline ({path}) in "
                       f"{len(diff)} way(s):\n  " + "\n  ".join(diff[:40])
                       + ("" if restore else "\nrun with --restore to repair what laghil can "
                                             f"(or `laghil lab restore --lab {rt.lab.name}`)")
                       + ("\nnot repaired:\n  " + "\n  ".join(report["refused"])
                          if report["refused"] else ""), diff)
    return report
