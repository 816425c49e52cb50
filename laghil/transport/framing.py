"""What the SSH transport puts on the wire and reads back, free of any
connection: the Result of a command, the exec-mode command text with its remote
kill, the shell-mode framing (start and end markers carrying the exit status)
and the marker scanner, and the internal outcomes a channel can have."""

import shlex
from dataclasses import dataclass

KILL_AFTER_S = 2          # remote `timeout -k`: SIGKILL this long after SIGTERM
BUF = 1 << 16


@dataclass(frozen=True)
class Result:
    """Outcome of one remote command. ``stdout``/``stderr`` are exactly what the
    command wrote (decoded as UTF-8, invalid bytes replaced)."""

    node: str
    command: str
    rc: int
    stdout: str
    stderr: str
    duration_s: float

    @property
    def ok(self):
        return self.rc == 0

    def __post_init__(self):
        # the output knows its node: a parser fed it names the node in its error
        if self.node and type(self.stdout) is str:
            object.__setattr__(self, "stdout", NodeText(self.stdout, self.node))


class NodeText(str):
    """A command's output, carrying the name of the node that printed it
    (:func:`laghil.parsing.parser` names it when the output cannot be read)."""

    def __new__(cls, text, node):
        s = super().__new__(cls, text)
        s.node = node
        return s


def remote_command(cmd, timeout, sudo=False):
    """The shell text that runs ``cmd`` under ``/bin/sh -c`` with a remote kill.

    When the node has ``timeout`` (coreutils) the command runs as
    ``[sudo -n] timeout -k 2 <timeout> sh -c <cmd>``, which SIGTERMs and then
    SIGKILLs the command's whole process group when the timeout expires (exit
    status 124, or 137 after SIGKILL). Without ``timeout`` only the controller
    side timeout applies.
    """
    sudo_ = "sudo -n " if sudo else ""
    inner = "sh -c " + shlex.quote(cmd)
    return (f"if command -v timeout >/dev/null 2>&1; then "
            f"exec {sudo_}timeout -k {KILL_AFTER_S} {timeout:.3f} {inner}; "
            f"else exec {sudo_}{inner}; fi")


def framed(tag, remote):
    """Shell text running ``remote`` in a subshell between start and end markers
    of ``tag``.

    Start markers on both streams come first (output before them is stray and
    ignored; their absence when the channel dies means the command never
    started, so it is safe to retry); the end markers follow, preceded by a
    newline that the reader strips, and on stdout carry the status.
    """
    return (f"printf '%s:s\\n' '{tag}'; printf '%s:s\\n' '{tag}' >&2; "
            f"( {remote} ) </dev/null; __laghil_rc=$?; "
            f"printf '\\n%s:e:%d\\n' '{tag}' \"$__laghil_rc\"; "
            f"printf '\\n%s:e\\n' '{tag}' >&2\n")


class Stale(Exception):
    """The connection or channel was unusable before the command was sent: safe to retry."""


class Lost(Exception):
    """The channel ended after the command was sent: it may or may not have run."""


class Deadline(Exception):
    """The controller-side deadline passed; carries the partial output."""

    def __init__(self, out=b"", err=b""):
        super().__init__("deadline")
        self.out, self.err = bytes(out), bytes(err)


class Marks:
    """Finds one command's start and end markers in a growing stream buffer."""

    def __init__(self, start, end, status=False):
        self.start, self.end, self.status = start, end, status
        self.begin = None    # index just after the start marker
        self.stop = None     # index of the end marker (its leading newline)
        self.rc = None       # exit status following the end marker (status=True)
        self._scan = 0       # searches resume here, minus a marker's length

    def update(self, buf):
        """Look at new data in ``buf``; return True once every marker was found."""
        if self.begin is None:
            i = buf.find(self.start, max(0, self._scan - len(self.start)))
            self._scan = len(buf)
            if i < 0:
                return False
            self.begin = self._scan = i + len(self.start)
        if self.stop is None:
            i = buf.find(self.end, max(self.begin, self._scan - len(self.end)))
            self._scan = len(buf)
            if i < 0:
                return False
            self.stop = i
        if self.status and self.rc is None:
            j = buf.find(b"\n", self.stop + len(self.end))
            if j < 0:
                return False
            self.rc = int(buf[self.stop + len(self.end):j])
        return True


def decode(data):
    return bytes(data).decode("utf-8", errors="replace")
