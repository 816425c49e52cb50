"""The pool of SSH sessions of a lab: one per node, jump hosts shared."""

import threading

from ..errors import UnknownNode
from .cmdlog import CommandLog
from .redact import SECRETS
from .ssh import SshSession


class Sessions:
    """One SshSession per node, created on first ``get(name)`` and cached.

    ``targets`` maps node names to SshTargets (a dict, or a callable raising
    KeyError for unknown names). Jump hosts are sessions of the pool too, so
    nodes behind one jump host share its connection.
    """

    def __init__(self, targets, log=None, redactor=None, mode="shell"):
        self._targets = targets
        if redactor is None:
            redactor = log.redactor if log is not None else SECRETS
        self.redactor = redactor
        self.log = log if log is not None else CommandLog(redactor)
        self.mode = mode
        self.journal = None         # a laghil.journal.Journal: private folders journaled
        self._sessions = {}
        self._lock = threading.Lock()

    def get(self, name):
        """The session of node ``name``; UnknownNode if there is no such target."""
        try:
            target = self._targets(name) if callable(self._targets) else self._targets[name]
        except KeyError:
            known = ("" if callable(self._targets)
                     else f"; known: {', '.join(sorted(self._targets))}")
            raise UnknownNode(f"unknown node {name!r}{known}") from None
        return self.session_for(target)

    def session_for(self, target):
        """The cached session for ``target`` (made, with its jump chain, if new)."""
        key = (target.name, target.address, target.port, target.user)
        with self._lock:
            session = self._sessions.get(key)
        if session is not None:
            return session
        jump = self.session_for(target.jump) if target.jump is not None else None
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                session = SshSession(target, self.log, self.redactor, self.mode,
                                     jump_session=jump)
                session.journal = self.journal
                self._sessions[key] = session
        return session

    def journal_workdirs(self, journal):
        """Journal the removal of every session's private folder, the ones made
        already and those to come (a controller killed before it removed them
        leaves them to the next session's replay)."""
        with self._lock:
            self.journal = journal
            sessions = list(self._sessions.values())
        for s in sessions:
            s.set_journal(journal)

    def __iter__(self):
        with self._lock:
            return iter(list(self._sessions.values()))

    def close_all(self):
        """Close every session (nodes first, then jump hosts)."""
        with self._lock:
            sessions, self._sessions = list(self._sessions.values()), {}
        for session in sorted(sessions, key=lambda s: s.target.jump is None):
            session.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close_all()
