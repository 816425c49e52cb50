"""The lab session: what a process holds while it works on a lab, in one order,
written here and nowhere else. Its users are thin: the pytest plugin's
``lab_rt`` (fixtures/lab.py), the CLI's lab commands and ``laghil measure
calibrate --lab``.

Going in:
1. the controller's lock on the lab (:mod:`laghil.lock`): one laghil of this
   machine per lab;
2. the runtime (:mod:`laghil.runtime`): the virtual rack booted when ``boot``
   (else a rack that is not running is refused, naming the command that starts
   it), SSH sessions on demand;
3. the lease on the lab's hosts (:mod:`laghil.lease`): a second controller,
   from any machine, is refused naming the holder; renewed in the background;
4. the lab's virtual PDU agents (after the lease: two controllers must not
   both serve them);
5. with ``clean``: the undo journal replayed (what a killed run left) and the
   lab compared with its baseline (:func:`laghil.labstate.clean_start`);
6. every SSH session's private folder journaled for removal.

Coming out, whatever happened: the session's own undo stack run
(:attr:`LabSession.defer`), the journal compacted (what a failed undo left
stays for the next session), the lease given back, the runtime closed (the
rack stopped if this session booted it and ``keep_rack`` is not set), the lock
released."""

from contextlib import contextmanager
from dataclasses import dataclass, field

from .errors import LaghilError
from .journal import Journal
from .labstate import LabDirty, clean_start
from .lease import LeaseHeld
from .lock import LabLock
from .runtime import LabRuntime
from .undo import Defer, undo_failed


class SessionError(LaghilError):
    """The session could not start; the message names the lab and the step."""


@dataclass
class LabSession:
    lab: object
    rt: LabRuntime
    lease: object
    journal: Journal
    start: dict | None = None           # clean_start's report (None: not ``clean``)
    defer: Defer = field(default=None)  # the session's own undo stack, journaled

    def __post_init__(self):
        if self.defer is None:
            self.defer = Defer(journal=self.journal)

    @property
    def state(self):
        """The lab's state at the start (per node), when the session compared it."""
        return self.start["state"]["nodes"] if self.start else None


@contextmanager
def held_lab(lab, *, boot=True, keep_rack=False, clean=True, restore=False,
             save_baseline=False, dry_run=False, lease_ttl=None, log=None, guard=None,
             say=print):
    """Hold lab ``lab`` (a laghil.lab.Lab) for the ``with`` block; yields a
    :class:`LabSession`. ``boot``: boot the virtual rack if it is down (else
    refuse); ``keep_rack``: a rack booted here outlives the session;
    ``clean``: replay the journal and compare with the baseline first
    (``restore``, ``save_baseline``, ``dry_run``: as clean_start); ``log``: the
    CommandLog of every command (its redactor masks the lab's secrets);
    ``guard``: the runtime's disruption guard. A step that fails raises
    SessionError (LabDirty for a lab that differs from its baseline) with
    everything taken so far given back."""
    lock = LabLock(lab.name).acquire()
    rt = lease = journal = None
    try:
        try:
            rt = LabRuntime(lab, log=log, redactor=log.redactor if log is not None else None,
                            say=say)
        except LaghilError as e:            # a secret it cannot mask: nothing started
            raise SessionError(f"lab {lab.name}: {e}") from None
        rt.disruption_guard = guard
        if rt.rack is not None and not boot and not rt.rack.is_running():
            raise SessionError(f"lab {lab.name}: the virtual rack is not running; start it "
                               f"with `laghil vlab up --lab {lab.name}`")
        try:
            rt.start(pdus=False, detach=keep_rack)
        except LaghilError as e:
            raise SessionError(f"lab {lab.name}: cannot start: {e}") from None
        if rt.boot_seconds:
            say(f"vlab {lab.name}: booted {len(rt.rack.plans)} guests in "
                f"{rt.boot_seconds:.1f} s")
        lease = rt.lease(ttl=lease_ttl)
        try:
            lease.acquire()
        except LeaseHeld as e:
            lease = None
            raise SessionError(f"lab {lab.name}: {e}") from None
        except LaghilError as e:
            lease = None
            raise SessionError(f"lab {lab.name}: cannot take the lease on the lab: {e}") from None
        lease.start_renewing()
        rt.lease_held = lease
        try:
            rt.start_pdus()
        except LaghilError as e:
            raise SessionError(f"lab {lab.name}: cannot start its virtual PDU: {e}") from None
        journal = Journal(lab.name, run_id=lease.run_id)
        start = None
        if clean:
            try:
                start = clean_start(rt, journal, restore=restore, save_baseline=save_baseline,
                                    dry_run=dry_run, say=say)
            except LabDirty:
                raise
            except LaghilError as e:
                raise SessionError(f"lab {lab.name}: cannot restore or compare with its "
                                   f"baseline: {e}") from None
        if not dry_run:
            rt.sessions.journal_workdirs(journal)
        session = LabSession(lab, rt, lease, journal, start)
        try:
            yield session
        finally:
            failures = session.defer.run_all()
            if failures:
                say(f"lab {lab.name}: {undo_failed(failures)}")
        if lease.renew_failures:
            say(f"lab {lab.name}: lease renewals failed {len(lease.renew_failures)} time(s), "
                f"last: {lease.renew_failures[-1]}")
    finally:
        if journal is not None and not dry_run:
            try:
                journal.compact()
            except LaghilError as e:
                say(f"lab {lab.name}: journal not compacted: {e}")
        if lease is not None:
            lease.release()
        if rt is not None:
            rt.close(stop_rack=False if keep_rack else None)
        lock.release()
