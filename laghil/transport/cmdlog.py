"""Record of every remote command, for per-test reports.

Each command run by the transport (successful, failed, timed out or lost with its
connection) becomes a :class:`CommandRecord`. The caller sets
:attr:`CommandLog.current_test` (e.g. from a pytest hook) so that records can be
grouped per test; :meth:`CommandLog.format` renders them as text::

    [node1] $ ip -br link show bond0  (rc=0, 0.012 s)
        bond0  UP  52:54:00:12:34:56 <BROADCAST,MULTICAST,MASTER,UP>
        ! some stderr line

Everything goes through a :class:`~laghil.transport.redact.Redactor` before it
is stored, so a secret never reaches a record, a report or the Python log.
"""

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Optional

from .redact import SECRETS

logger = logging.getLogger("laghil.transport")

KEEP_CHARS = 64 * 1024   # per stream, stored in a record (head + tail)
SHOW_CHARS = 4 * 1024    # per stream, shown by format() (head + tail)
MAX_RECORDS = 100_000    # oldest records are dropped beyond this


@dataclass(frozen=True)
class CommandRecord:
    """One remote command as it happened (already redacted and truncated)."""

    node: str
    command: str
    rc: Optional[int]          # None when no exit status came back (timeout, lost connection)
    duration_s: float
    stdout: str
    stderr: str
    started: float             # epoch seconds
    test: Optional[str] = None
    error: Optional[str] = None  # why rc is None / the transport error, if any

    @property
    def status(self):
        """``rc=N``, or a short word when there is no exit status."""
        if self.rc is not None:
            return f"rc={self.rc}"
        return "error" if not self.error or "timed out" not in self.error else "timeout"


def truncate(text, limit):
    """Keep the head and the tail of ``text`` within about ``limit`` characters."""
    if text is None or len(text) <= limit:
        return text
    half = limit // 2
    omitted = len(text) - 2 * half
    return f"{text[:half]}\n[... {omitted} characters omitted ...]\n{text[-half:]}"


class CommandLog:
    """Thread-safe, redacting list of CommandRecords.

    ``current_test`` is stamped on every new record; ``logger_level`` (or None)
    is the level of the one-line Python log message emitted per command.
    """

    def __init__(self, redactor=None, keep_chars=KEEP_CHARS, max_records=MAX_RECORDS,
                 logger_level=logging.INFO):
        self.redactor = redactor if redactor is not None else SECRETS
        self.keep_chars = keep_chars
        self.logger_level = logger_level
        self.current_test = None
        self._records = deque(maxlen=max_records)
        self._lock = threading.Lock()

    def add(self, node, command, rc, duration_s, stdout="", stderr="", started=None,
            error=None):
        """Redact, truncate and store one command; return its CommandRecord."""
        red = self.redactor.redact
        rec = CommandRecord(
            node=node,
            command=red(command),
            rc=rc,
            duration_s=float(duration_s),
            stdout=truncate(red(stdout or ""), self.keep_chars),
            stderr=truncate(red(stderr or ""), self.keep_chars),
            started=time.time() if started is None else started,
            test=self.current_test,
            error=red(error),
        )
        with self._lock:
            self._records.append(rec)
        if self.logger_level is not None and logger.isEnabledFor(self.logger_level):
            extra = f": {rec.error}" if rec.error else ""
            logger.log(self.logger_level, "[%s] $ %s  (%s, %.3f s)%s",
                       rec.node, rec.command, rec.status, rec.duration_s, extra)
        return rec

    @property
    def records(self):
        """A snapshot list of all records, oldest first."""
        with self._lock:
            return list(self._records)

    def __len__(self):
        return len(self._records)

    def records_for(self, test):
        """The records stamped with test name ``test``, oldest first."""
        return [r for r in self.records if r.test == test]

    def clear(self):
        with self._lock:
            self._records.clear()

    def format(self, records=None, show_chars=SHOW_CHARS):
        """Render ``records`` (default: all) as a human-readable text block.

        One header line per command, then its stdout indented by four spaces and
        its stderr lines prefixed with ``! ``; each stream is cut to about
        ``show_chars`` characters (head and tail kept).
        """
        if records is None:
            records = self.records
        out = []
        for r in records:
            command = r.command.replace("\n", "\n    > ")
            out.append(f"[{r.node}] $ {command}  ({r.status}, {r.duration_s:.3f} s)")
            if r.error:
                out.append(f"    !! {r.error}")
            for prefix, text in (("    ", r.stdout), ("    ! ", r.stderr)):
                text = truncate(text, show_chars)
                if text:
                    out.extend(prefix + line for line in text.rstrip("\n").split("\n"))
        return "\n".join(out) + ("\n" if out else "")
