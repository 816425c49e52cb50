"""Replay of a lab's undo journal (:mod:`laghil.journal`): what a later process
does with a killed run's pending undos. Each record is carried out from its
data: a node action's command built by :mod:`laghil.undo_actions`, a virtual
cable or port through the rack, a switch undo through the switch's driver, an
outlet through the PDU control. This module sits above the drivers, the power
control and the rack; the journal itself imports none of them."""

import time
from dataclasses import dataclass

from .errors import LaghilError
from .journal import Entry, JournalError, SWITCH_UNDOS


@dataclass
class Outcome:
    entry: Entry
    ok: bool
    detail: str = ""

    def line(self):
        return (f"{'restored' if self.ok else 'FAILED'}: {self.entry.describe()}"
                + (f" ({self.detail})" if self.detail else ""))


def replay_step(rt, rec):
    """Carry out one undo record on the lab of runtime ``rt``."""
    if rec.kind == "node":
        rt.node(rec.target).run(rec.command(), check=True)
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
        method, args = rec.args
        assert method in SWITCH_UNDOS           # checked when the record was read
        driver = switch_driver(rt.node(rec.target))
        if not hasattr(driver, method):         # an OVS record against another platform
            raise JournalError(f"switch {rec.target}: {method} is not an undo of its "
                               f"{driver.platform} driver (the lab file changed platform?)")
        getattr(driver, method)(*args)
    elif rec.kind == "pdu":
        from .power.pdu import PduControl
        if rec.target not in rt.lab.pdus:
            raise JournalError(f"pdu {rec.target}: not in lab {rt.lab.name!r}")
        PduControl(rt.lab, rec.target, env=rt.env).on(rec.args[0])


def replay(rt, journal, *, dry_run=False, say=print):
    """Replay the journal's pending undos newest first; each step's outcome said
    and returned. A replayed entry is marked done; a failed one stays for the
    next restore. ``dry_run``: say what would be done, change nothing. A journal
    with a line that is not laghil's (JournalError) runs nothing of it."""
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
