"""The undo journal of a lab: every undo that reaches the lab, written as data
(node, action, arguments) to a file of that lab BEFORE the change it undoes is
made, flushed to disk, and marked done when the undo has run. A controller that
dies (SIGKILL, a CI timeout, a rebooted runner) leaves its pending undos in the
journal; the next session, or ``laghil lab restore``, replays them newest first.

Records (:class:`UndoRecord`) are what a later process can replay with nothing
but the lab file: a shell command on a node, a virtual cable or port back up, a
switch port back up through its driver, a PDU outlet back on. Every one is
idempotent: replaying an undo that already ran changes nothing.

The file is JSON lines, append-only while a run lives::

    {"op": "add", "id": "...", "run": "...", "t": 1764600000.1, "steps": [{record}, ...]}
    {"op": "done", "id": "..."}

A last line cut short by a crash is ignored (its change was never made: the
line is written before the change). Any other malformed line is a JournalError
naming the file and line.
"""

import json
import os
import stat
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from .errors import LaghilError
from .names import check_name
from .vlab.paths import state_root


class JournalError(LaghilError):
    pass


# kind -> (what the target names, how many arguments, their types)
KINDS = {
    "run": ("node", (str, bool)),            # shell command, check
    "cable": ("cable", ()),                  # virtual cable: carrier back at both ends
    "port": ("node", (str,)),                # virtual NIC of node: carrier back (port)
    "switch": ("switch", (str, str)),        # driver method (SWITCH_UNDOS), port
    "switch_config": ("switch", (str,)),     # NOS configuration lines (newline-separated)
    "pdu": ("pdu", (int,)),                  # outlet back on
}
# the switch driver methods a journal may call (nothing else is reachable from a file)
SWITCH_UNDOS = ("port_no_shutdown",)


@dataclass(frozen=True)
class UndoRecord:
    kind: str
    target: str
    args: tuple = ()
    what: str = ""

    def __post_init__(self):
        if self.kind not in KINDS:
            raise JournalError(f"undo record: unknown kind {self.kind!r} "
                               f"(one of {', '.join(KINDS)})")
        _, types = KINDS[self.kind]
        if not isinstance(self.target, str) or not self.target:
            raise JournalError(f"undo record {self.kind}: target must be a name, "
                               f"not {self.target!r}")
        if len(self.args) != len(types) or not all(
                isinstance(a, t) and not (t is int and isinstance(a, bool))
                for a, t in zip(self.args, types)):
            raise JournalError(f"undo record {self.kind} {self.target}: arguments "
                               f"{list(self.args)!r} (expected {[t.__name__ for t in types]})")
        if self.kind == "switch" and self.args[0] not in SWITCH_UNDOS:
            raise JournalError(f"undo record switch {self.target}: {self.args[0]!r} is not a "
                               f"switch undo ({', '.join(SWITCH_UNDOS)})")

    def to_json(self):
        return {"kind": self.kind, "target": self.target, "args": list(self.args),
                "what": self.what}

    @classmethod
    def from_json(cls, d):
        if not isinstance(d, dict):
            raise JournalError(f"undo record: expected an object, not {type(d).__name__}")
        args = d.get("args", [])
        if not isinstance(args, list):
            raise JournalError(f"undo record: args must be a list, not {type(args).__name__}")
        return cls(d.get("kind"), d.get("target"), tuple(args), str(d.get("what") or ""))

    def describe(self):
        if self.what:
            return f"{self.target}: {self.what}"
        if self.kind == "run":
            return f"{self.target}: run {self.args[0]!r}"
        if self.kind == "cable":
            return f"cable {self.target}: carrier back at both ends"
        if self.kind == "port":
            return f"{self.target}:{self.args[0]}: carrier back"
        if self.kind == "switch":
            return f"{self.target}: {self.args[0]} {self.args[1]}"
        if self.kind == "switch_config":
            return f"{self.target}: configure {self.args[0]!r}"
        return f"pdu {self.target}: outlet {self.args[0]} on"


def run_record(node, cmd, check=True, what=""):
    return UndoRecord("run", node, (str(cmd), bool(check)), what)


@dataclass
class Entry:
    id: str
    run: str
    t: float
    steps: list = field(default_factory=list)

    def describe(self):
        return "; ".join(s.describe() for s in self.steps)


@dataclass
class Outcome:
    entry: Entry
    ok: bool
    detail: str = ""

    def line(self):
        return (f"{'restored' if self.ok else 'FAILED'}: {self.entry.describe()}"
                + (f" ({self.detail})" if self.detail else ""))


def journal_path(lab_name, env=None):
    return state_root(env) / "journal" / f"{check_name(lab_name, 'lab name')}.jsonl"


def check_private(path, folder=False):
    """Refuse (JournalError naming ``path`` and the fix) a journal file or
    folder that another user could have written: a symbolic link, not owned
    by this user, or writable by group or others. Its lines are run on the lab
    at the next session start: nothing of such a file is read. Absent: fine."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    what = "journal folder" if folder else "journal"
    me = os.geteuid()
    if stat.S_ISLNK(st.st_mode):
        raise JournalError(f"{path}: the {what} is a symbolic link, not what laghil made: "
                           "refused, nothing in it is replayed; remove the link")
    if st.st_uid != me:
        raise JournalError(f"{path}: the {what} is owned by uid {st.st_uid}, not by this user "
                           f"(uid {me}): refused, nothing in it is replayed; remove it if it "
                           "is not yours")
    if st.st_mode & 0o022:
        who = " and ".join(w for w, bit in (("group", 0o020), ("others", 0o002))
                           if st.st_mode & bit)
        fix = f"chmod 700 {path}" if folder else f"chmod 600 {path}"
        raise JournalError(f"{path}: the {what} has mode {st.st_mode & 0o777:04o}, writable by "
                           f"{who}: anyone could add an undo to it; refused, nothing in it "
                           f"is replayed; `{fix}` if its contents are yours")


class Journal:
    """The undo journal of one lab (thread-safe; every write flushed and fsynced)."""

    def __init__(self, lab_name, path=None, run_id=None, env=None):
        self.lab_name = lab_name
        self.path = Path(path) if path is not None else journal_path(lab_name, env)
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self._lock = threading.Lock()

    def __repr__(self):
        return f"<Journal {self.lab_name} {self.path}>"

    def _check(self, make=True):
        """The folder made 0700 if new (``make``); folder and file refused if
        another user could have written them (:func:`check_private`)."""
        if make:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        check_private(self.path.parent, folder=True)
        check_private(self.path)

    # ---- writing ---------------------------------------------------------------------
    def _append(self, obj):
        line = json.dumps(obj, separators=(",", ":")) + "\n"
        with self._lock:
            self._check()
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW,
                         0o600)
            try:
                os.write(fd, line.encode())
                os.fsync(fd)
            finally:
                os.close(fd)

    def add(self, steps):
        """Journal one undo (a record or a list of them, replayed in order);
        returns its id, to be passed to :meth:`done` once it ran."""
        steps = [steps] if isinstance(steps, UndoRecord) else list(steps)
        if not steps:
            raise JournalError("journal: an undo with no steps")
        entry_id = uuid.uuid4().hex[:16]
        self._append({"op": "add", "id": entry_id, "run": self.run_id, "t": round(time.time(), 3),
                      "steps": [s.to_json() for s in steps]})
        return entry_id

    def done(self, entry_id):
        self._append({"op": "done", "id": entry_id})

    # ---- reading ---------------------------------------------------------------------
    def pending(self):
        """The entries added and not done, oldest first."""
        self._check(make=False)
        if not self.path.exists():
            return []
        text = self.path.read_text()
        return parse_journal(text, str(self.path))

    def compact(self):
        """Rewrite the file with only the pending entries (none: remove it)."""
        with self._lock:
            self._check(make=False)
            if not self.path.exists():
                return
            pend = parse_journal(self.path.read_text(), str(self.path))
            if not pend:
                self.path.unlink()
                return
            tmp = self.path.with_suffix(".tmp")
            if os.path.lexists(tmp):
                os.unlink(tmp)                  # a crashed compact's (the folder is private)
            with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                                   0o600), "w") as f:
                for e in pend:
                    f.write(json.dumps({"op": "add", "id": e.id, "run": e.run, "t": e.t,
                                        "steps": [s.to_json() for s in e.steps]},
                                       separators=(",", ":")) + "\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)


def parse_journal(text, where="journal"):
    """Pending entries of a journal's text (pure). A last line without its newline
    (cut by a crash mid-write) is ignored; any other bad line raises JournalError
    naming ``where`` and the line."""
    entries, done = {}, set()
    lines = text.split("\n")
    complete = text.endswith("\n")
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        last = i == len(lines) and not complete
        try:
            obj = json.loads(line)
            if not isinstance(obj, dict) or obj.get("op") not in ("add", "done") \
                    or not isinstance(obj.get("id"), str):
                raise JournalError("expected {op: add|done, id: ...}")
            if obj["op"] == "done":
                done.add(obj["id"])
                continue
            steps = obj.get("steps")
            if not isinstance(steps, list) or not steps:
                raise JournalError("an add without steps")
            t = obj.get("t", 0.0)
            entries[obj["id"]] = Entry(obj["id"], str(obj.get("run", "?")),
                                       float(t) if isinstance(t, (int, float)) else 0.0,
                                       [UndoRecord.from_json(s) for s in steps])
        except (ValueError, JournalError) as e:
            if last:
                break       # the write a crash cut short: its change was never made
            raise JournalError(f"{where}:{i}: not a journal line ({e}): {line[:120]!r}") from None
    return [e for k, e in entries.items() if k not in done]


# ---- replay ----------------------------------------------------------------------------
def replay_step(rt, rec):
    """Carry out one undo record on the lab of runtime ``rt``."""
    if rec.kind == "run":
        rt.node(rec.target).run(rec.args[0], check=rec.args[1])
    elif rec.kind == "cable":
        if rt.rack is None:
            raise JournalError(f"cable {rec.target}: a virtual cable, and lab {rt.lab.name!r} "
                               "is not the virtual rack")
        rt.rack.set_cable(rt.lab.cable(rec.target), True)
    elif rec.kind == "port":
        if rt.rack is None:
            raise JournalError(f"{rec.target}:{rec.args[0]}: a virtual NIC, and lab "
                               f"{rt.lab.name!r} is not the virtual rack")
        rt.lab.node(rec.target)
        rt.rack.set_port(rec.target, rec.args[0], True)
    elif rec.kind == "switch":
        from .drivers.switch import switch_driver
        getattr(switch_driver(rt.node(rec.target)), rec.args[0])(rec.args[1])
    elif rec.kind == "switch_config":
        from .drivers.switch import switch_driver
        driver = switch_driver(rt.node(rec.target))
        cli = getattr(driver, "cli", None)
        if cli is None:
            raise JournalError(f"switch {rec.target}: platform {driver.platform} takes no "
                               "configuration lines")
        cli.config(rec.args[0].split("\n"))
    elif rec.kind == "pdu":
        from .power.pdu import PduControl
        if rec.target not in rt.lab.pdus:
            raise JournalError(f"pdu {rec.target}: not in lab {rt.lab.name!r}")
        PduControl(rt.lab, rec.target, env=rt.env).on(rec.args[0])


def replay(rt, journal, *, dry_run=False, say=print):
    """Replay the journal's pending undos newest first; each step's outcome said
    and returned. A replayed entry is marked done; a failed one stays for the
    next restore. ``dry_run``: say what would be done, change nothing."""
    outcomes = []
    for entry in reversed(journal.pending()):
        if dry_run:
            say(f"would restore: {entry.describe()} (run {entry.run}, "
                f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(entry.t))})")
            outcomes.append(Outcome(entry, True, "dry run"))
            continue
        try:
            for step in entry.steps:
                replay_step(rt, step)
        except LaghilError as e:
            out = Outcome(entry, False, str(rt.redactor.redact(str(e))))
        else:
            out = Outcome(entry, True)
            journal.done(entry.id)
        say(f"journal {journal.lab_name}: {out.line()}")
        outcomes.append(out)
    if not dry_run:
        journal.compact()
    return outcomes


def undo_steps(fn, args=(), kwargs=None):
    """The journal records of an undo ``fn(*args, **kwargs)``, or None when it
    does not reach the lab in a way a later process could (or need) replay: an
    object whose method is the undo says so through ``undo_records(method, args,
    kwargs)``; a :class:`Replayable` carries its records."""
    if isinstance(fn, Replayable):
        return fn.records
    owner = getattr(fn, "__self__", None)
    method = getattr(fn, "__name__", None)
    hook = getattr(owner, "undo_records", None)
    if hook is None or method is None:
        return None
    recs = hook(method, tuple(args), dict(kwargs or {}))
    if recs is None:
        return None
    return [recs] if isinstance(recs, UndoRecord) else list(recs)


class Replayable:
    """An undo callable with the records a later process replays instead."""

    def __init__(self, fn, records):
        self.fn = fn
        self.records = [records] if isinstance(records, UndoRecord) else list(records)
        self.__qualname__ = getattr(fn, "__qualname__", repr(fn))

    def __call__(self, *args, **kwargs):
        return self.fn(*args, **kwargs)
