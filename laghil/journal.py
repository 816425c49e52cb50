"""The undo journal of a lab: every undo that reaches the lab, written as data
(node, action, arguments) to a file of that lab BEFORE the change it undoes is
made, flushed to disk, and marked done when the undo has run. A controller that
dies (SIGKILL, a CI timeout, a rebooted runner) leaves its pending undos in the
journal; the next session, or ``laghil lab restore``, replays them newest first
(:mod:`laghil.restore`).

Records (:class:`UndoRecord`) are what a later process can replay with nothing
but the lab file, and nothing else: an undo action on a node from the fixed
vocabulary of :mod:`laghil.undo_actions` with checked parameters (the command
is built from them when it runs, never read from the file), a virtual cable or
port back up, a switch undo through its driver (:data:`SWITCH_UNDOS`), a PDU
outlet back on. Every one is idempotent: replaying an undo that already ran
changes nothing. An undo carries its records (:class:`Undo`); an undo without
records runs in its own process only.

The file is JSON lines, append-only while a run lives, each line authenticated
with the controller's key (HMAC-SHA256, :func:`journal_key`)::

    {"op": "add", "id": "...", "run": "...", "t": 1764600000.1, "steps": [{record}, ...], "mac": "..."}
    {"op": "done", "id": "...", "mac": "..."}

A last line cut short by a crash is ignored (its change was never made: the
line is written before the change). Any other malformed line, a record outside
the vocabulary, or a line whose HMAC does not match is a JournalError naming
the file and line, raised before anything of the journal runs.
"""

import hashlib
import hmac
import json
import os
import re
import secrets
import stat
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from .errors import BadName, LaghilError
from .names import check_name
from .paths import state_root
from .undo_actions import build, check_params


class JournalError(LaghilError):
    pass


# kind -> (what the target names, how many arguments, their types)
KINDS = {
    "node": ("node", (str, dict)),           # undo action (laghil.undo_actions), parameters
    "cable": ("cable", ()),                  # virtual cable: carrier back at both ends
    "port": ("node", (str,)),                # virtual NIC of node: carrier back (port)
    "switch": ("switch", (str, list)),       # driver method (SWITCH_UNDOS), its arguments
    "pdu": ("pdu", (int,)),                  # outlet back on
}
# the switch driver methods a journal may call, with their arguments' types
# (nothing else is reachable from a file; the driver checks the names again)
SWITCH_UNDOS = {"port_no_shutdown": (str,), "lag_remove": (str, list),
               # Open vSwitch (laghil.drivers.switch.ovs): its records, each idempotent
               "ovs_iface_add": (str, str), "ovs_iface_del": (str, str),
               "ovs_bridge_remove": (str, list),
               "ovs_port_add": (str, str, list), "ovs_port_del": (str, str),
               "ovs_bond_rebuild": (str, list, list), "ovs_port_vlans": (str, list),
               # the NOS drivers (laghil.drivers.switch.nos): each idempotent
               "nos_l2_remove": (list, list), "nos_l2_join": (str, list),
               "nos_l2_leave": (str,), "nos_channel_join": (str, str, str),
               "nos_channel_leave": (str, str), "nos_lag_rebuild": (str, list, list),
               # Cumulus (laghil.drivers.switch.cumulus): NVUE paths set or unset
               "nvue_set": (list,), "nvue_unset": (list,),
               # SONiC (laghil.drivers.switch.sonic)
               "sonic_l2_remove": (list, list), "sonic_l2_join": (str, list),
               "sonic_l2_remove_member": (str, list), "sonic_member_add": (str, str),
               "sonic_member_del": (str, str), "sonic_lag_rebuild": (str, list, list)}
_CLI_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9_./:-]{0,63}")


def _cli_words(args):
    for a in args:
        for w in (a if isinstance(a, list) else [a]):
            if not isinstance(w, str) or not _CLI_WORD.fullmatch(w):
                return False
    return True


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
        try:
            check_name(self.target, KINDS[self.kind][0])
        except BadName as e:
            raise JournalError(f"undo record {self.kind}: {e}") from None
        if len(self.args) != len(types) or not all(
                isinstance(a, t) and not (t is int and isinstance(a, bool))
                for a, t in zip(self.args, types)):
            raise JournalError(f"undo record {self.kind} {self.target}: arguments "
                               f"{list(self.args)!r} (expected {[t.__name__ for t in types]})")
        if self.kind == "node":
            try:
                object.__setattr__(self, "args", (self.args[0],
                                                  check_params(self.args[0], self.args[1])))
            except BadName as e:
                raise JournalError(f"undo record node {self.target}: {e}") from None
        if self.kind == "switch":
            method, margs = self.args
            want = SWITCH_UNDOS.get(method)
            if want is None:
                raise JournalError(f"undo record switch {self.target}: {method!r} is not a "
                                   f"switch undo ({', '.join(SWITCH_UNDOS)})")
            if len(margs) != len(want) or not all(isinstance(a, t) for a, t in zip(margs, want)) \
                    or not _cli_words(margs):
                raise JournalError(f"undo record switch {self.target}: {method} {margs!r} "
                                   f"(expected {[t.__name__ for t in want]} of CLI words)")

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

    def command(self):
        """The shell command of a node record, built from its checked data."""
        return build(*self.args)

    def describe(self):
        if self.what:
            return f"{self.target}: {self.what}"
        if self.kind == "node":
            return f"{self.target}: {self.args[0]} {self.args[1]}"
        if self.kind == "cable":
            return f"cable {self.target}: carrier back at both ends"
        if self.kind == "port":
            return f"{self.target}:{self.args[0]}: carrier back"
        if self.kind == "switch":
            return f"{self.target}: {self.args[0]} {' '.join(map(str, self.args[1]))}"
        return f"pdu {self.target}: outlet {self.args[0]} on"


def node_record(node, action, what="", **params):
    """The record of undo ``action`` on ``node`` (a Node, or its name); a node
    that is a network namespace of its host records its namespace."""
    name = node if isinstance(node, str) else node.name
    netns = getattr(node, "netns", None)
    if netns:
        params["netns"] = netns
    return UndoRecord("node", name, (action, params), what)


class Undo:
    """An undo: a callable and the records a later process replays instead
    (none: it is not journaled, it runs in its own process only)."""

    def __init__(self, fn, records=(), what=""):
        self.fn = fn
        self.records = [records] if isinstance(records, UndoRecord) else list(records)
        self.__qualname__ = what or getattr(fn, "__qualname__", repr(fn))

    def __call__(self, *args, **kwargs):
        return self.fn(*args, **kwargs)

    def __repr__(self):
        return f"<Undo {self.__qualname__}>"


def node_undo(node, action, *, check=False, what="", **params):
    """The undo that runs node ``action`` (laghil.undo_actions) on ``node``, the
    same command now as a later process would replay from the journal."""
    rec = node_record(node, action, what, **params)
    cmd = build(action, {k: v for k, v in rec.args[1].items() if k != "netns"})
    return Undo(lambda: node.run(cmd, check=check), rec, what or f"{action} on {rec.target}")


@dataclass
class Entry:
    id: str
    run: str
    t: float
    steps: list = field(default_factory=list)

    def describe(self):
        return "; ".join(s.describe() for s in self.steps)


def journal_path(lab_name, env=None):
    return state_root(env) / "journal" / f"{check_name(lab_name, 'lab name')}.jsonl"


def check_private(path, folder=False, secret=False):
    """Refuse (JournalError naming ``path`` and the fix) a journal file or
    folder that another user could have written: a symbolic link, not owned
    by this user, or writable by group or others. Its lines are run on the lab
    at the next session start: nothing of such a file is read. Absent: fine."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    what = "journal folder" if folder else "journal key" if secret else "journal"
    me = os.geteuid()
    if stat.S_ISLNK(st.st_mode):
        raise JournalError(f"{path}: the {what} is a symbolic link, not what laghil made: "
                           "refused, nothing in it is replayed; remove the link")
    if st.st_uid != me:
        raise JournalError(f"{path}: the {what} is owned by uid {st.st_uid}, not by this user "
                           f"(uid {me}): refused, nothing in it is replayed; remove it if it "
                           "is not yours")
    if secret and st.st_mode & 0o077:
        raise JournalError(f"{path}: the {what} has mode {st.st_mode & 0o777:04o}: others could "
                           "read it and sign journal lines; refused, nothing is replayed; "
                           f"`chmod 600 {path}` if only you could read it so far, else remove "
                           "it (the journals it signed are then refused)")
    if st.st_mode & 0o022:
        who = " and ".join(w for w, bit in (("group", 0o020), ("others", 0o002))
                           if st.st_mode & bit)
        fix = f"chmod 700 {path}" if folder else f"chmod 600 {path}"
        raise JournalError(f"{path}: the {what} has mode {st.st_mode & 0o777:04o}, writable by "
                           f"{who}: anyone could add an undo to it; refused, nothing in it "
                           f"is replayed; `{fix}` if its contents are yours")


def journal_key(folder, make=True):
    """The controller's key that authenticates its journal lines: 32 random
    bytes in ``folder``/key (0600, made on first use with ``make``), refused
    like a journal another user could have written (:func:`check_private`).
    Controllers that share a state folder share it, and so each other's
    journals; a line written with another key is refused."""
    path = Path(folder) / "key"
    check_private(path, secret=True)
    if make and not path.exists():
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except FileExistsError:
            pass                                # another controller made it first
        else:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32) + "\n")
                f.flush()
                os.fsync(f.fileno())
    if not path.exists():
        return None
    text = path.read_text().strip()
    if not re.fullmatch(r"[0-9a-f]{64}", text):
        raise JournalError(f"{path}: not a journal key (64 hex digits): remove it (the "
                           "journals it authenticated are then refused)")
    return bytes.fromhex(text)


def line_mac(key, obj):
    """HMAC-SHA256 of a journal line's object (without its "mac"), hex."""
    body = json.dumps({k: v for k, v in obj.items() if k != "mac"}, sort_keys=True,
                      separators=(",", ":"))
    return hmac.new(key, body.encode(), hashlib.sha256).hexdigest()


class Journal:
    """The undo journal of one lab (thread-safe; every write flushed and fsynced)."""

    def __init__(self, lab_name, path=None, run_id=None, env=None):
        self.lab_name = lab_name
        self.path = Path(path) if path is not None else journal_path(lab_name, env)
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self._lock = threading.Lock()
        self._key = None

    def key(self, make=True):
        """This journal's key (None: none yet, and not ``make``)."""
        if self._key is None:
            self._key = journal_key(self.path.parent, make)
        return self._key

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
    def _line(self, obj):
        return json.dumps({**obj, "mac": line_mac(self.key(), obj)},
                          separators=(",", ":")) + "\n"

    def _append(self, obj):
        with self._lock:
            self._check()
            line = self._line(obj)
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
        if not all(isinstance(st, UndoRecord) for st in steps):
            raise JournalError(f"journal: not undo records: {steps!r}")
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
        return parse_journal(text, str(self.path), self.key(make=False) or b"")

    def compact(self):
        """Rewrite the file with only the pending entries (none: remove it)."""
        with self._lock:
            self._check(make=False)
            if not self.path.exists():
                return
            pend = parse_journal(self.path.read_text(), str(self.path),
                                 self.key(make=False) or b"")
            if not pend:
                self.path.unlink()
                return
            tmp = self.path.with_suffix(".tmp")
            if os.path.lexists(tmp):
                os.unlink(tmp)                  # a crashed compact's (the folder is private)
            with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                                   0o600), "w") as f:
                for e in pend:
                    f.write(self._line({"op": "add", "id": e.id, "run": e.run, "t": e.t,
                                        "steps": [st.to_json() for st in e.steps]}))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)


def parse_journal(text, where="journal", key=None):
    """Pending entries of a journal's text (pure). A last line without its newline
    (cut by a crash mid-write) is ignored; any other bad line raises JournalError
    naming ``where`` and the line, as does, with ``key``, a line whose HMAC does
    not match (``key`` b"": there is no key, so no line can be trusted)."""
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
            if key is not None and not (isinstance(obj.get("mac"), str) and hmac.compare_digest(
                    obj["mac"], line_mac(key, obj) if key else "")):
                raise JournalError("its HMAC does not match this controller's journal key: "
                                   "not written by laghil with this state folder (copied, "
                                   "edited, or from another controller)")
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
            raise JournalError(f"{where}:{i}: refused, nothing of this journal is replayed "
                               f"({e}): {line[:120]!r}; if the lab needs no restore, remove the "
                               "file") from None
    return [e for k, e in entries.items() if k not in done]
