"""An SSH session's private folder on its node (laghil.transport.ssh): made
on first use by ``mktemp -d``, checked again where a node may have lost it,
journaled for removal and removed at the session's end. A part of
:class:`~laghil.transport.ssh.SshSession`, which holds its state."""

import logging
import shlex

from ..errors import TransportError
from ..undo_actions import WORKDIR_RE

log = logging.getLogger("laghil.transport")

# A session's private folder on its node: made by mktemp -d (mode 0700, owned by
# whoever the session runs commands as, a name nobody could have chosen before),
# under the login user's own runtime directory when it has one, else /tmp.
# Every agent, result file and capture of the session lives in it.
MAKE_WORKDIR = ('r="${XDG_RUNTIME_DIR:-}"; d=; '
                'if [ -n "$r" ] && [ -d "$r" ] && [ ! -L "$r" ] && [ -O "$r" ]; then '
                'd=$(mktemp -d "$r/laghil.XXXXXXXXXX" 2>/dev/null); fi; '
                '{ [ -n "$d" ] || d=$(mktemp -d /tmp/laghil.XXXXXXXXXX); } && chmod 700 "$d" '
                '&& echo "$d"')


class PrivateFolder:
    """The private-folder methods of SshSession."""

    def workdir(self, verify=False):
        """The session's private folder on the node (:data:`MAKE_WORKDIR`), made
        on first use and kept for the session's life. ``verify``: check on the
        node that it is still there, a folder (not a link) of the session's user
        with mode 0700, and make a new one if not (a node that was rebooted or
        power cycled lost it)."""
        with self._lock:
            if self._workdir is not None and verify:
                d = shlex.quote(self._workdir)
                r = self.run(f'[ -d {d} ] && [ ! -L {d} ] && [ -O {d} ] && '
                             f'[ "$(stat -c %a {d})" = 700 ]', check=False)
                if r.rc != 0:
                    log.info("%s: private folder %s gone or changed: a new one", self.name,
                             self._workdir)
                    self._workdir = None
            if self._workdir is None:
                r = self.run(MAKE_WORKDIR)
                lines = r.stdout.strip().splitlines()
                path = lines[-1].strip() if lines else ""
                if not WORKDIR_RE.fullmatch(path):
                    raise TransportError(f"{self.name}: mktemp -d for laghil's private folder "
                                         f"gave {path!r}, not a folder laghil.XXXXXXXXXX")
                self._workdir = path
                self._journal_workdir()
            return self._workdir

    def set_journal(self, journal):
        """Journal the removal of this session's private folder in ``journal``
        (the one made already, and any made later)."""
        with self._lock:
            self.journal = journal
            if self._workdir is not None and self._workdir_entry is None:
                self._journal_workdir()

    def _journal_workdir(self):
        if self.journal is not None:
            from ..journal import node_record
            self._workdir_entry = self.journal.add(node_record(
                self.name, "workdir_remove", workdir=self._workdir,
                what=f"remove laghil's private folder {self._workdir}"))

    def remove_workdir(self):
        """Remove the session's private folder (at the end of a session); the
        path it had, or None when it made none."""
        with self._lock:
            d, self._workdir = self._workdir, None
            entry, self._workdir_entry = self._workdir_entry, None
        if d is not None:
            self.run(f"rm -rf -- {shlex.quote(d)}", timeout=30)
            if entry is not None:
                self.journal.done(entry)
        return d
