"""The undo stack: ``defer(fn, *args)`` registers an undo BEFORE the change it
undoes and returns its handle (:class:`Deferred`: ``.run()`` now, or
``.cancel()``), as the kernel selftests' ``defer()``; :meth:`Defer.run_all`
runs what is left, newest first, every undo even when one fails.

With a lab journal (:mod:`laghil.journal`), every undo that reaches the lab is
also written there, as data a later process can replay, before ``defer``
returns (so before the change is made); an undo that ran, or was cancelled,
removes its entry. A controller killed in the middle leaves the lab's undos for
the next session (:mod:`laghil.restore`). An undo is journaled when it carries
its records (:class:`laghil.journal.Undo`, e.g.
``defer(node_undo(node, "link_delete", name=...))``); any other callable runs in
this process only.

The pytest plugin runs one stack per test (``defer`` fixture,
fixtures/undo.py); a lab session (:mod:`laghil.session`) holds one for the
whole session (calibrate, the CLI)."""

from .journal import Undo


class Deferred:
    """The handle of one registered undo."""

    def __init__(self, stack, fn, args, kwargs, entry):
        self._stack, self.fn, self.args, self.kwargs, self.entry = stack, fn, args, kwargs, entry

    @property
    def pending(self):
        return self in self._stack._stack

    def run(self):
        """Run the undo now (once: a second call does nothing); its journal entry
        is done when it succeeded, and stays for the next session when it raised."""
        if not self.pending:
            return None
        self._stack._stack.remove(self)
        out = self.fn(*self.args, **self.kwargs)
        self._stack._done(self.entry)
        return out

    def cancel(self):
        """Forget the undo without running it (the change was never made, or
        something else undid it): out of the stack and out of the journal."""
        if self.pending:
            self._stack._stack.remove(self)
            self._stack._done(self.entry)

    def describe(self):
        name = getattr(self.fn, "__qualname__", repr(self.fn))
        return f"undo {name}({', '.join(repr(a) for a in self.args)})"


class Defer:
    """Last-in-first-out undo stack; ``journal``: a laghil.journal.Journal, or a
    callable returning one (or None) when the first undo is registered."""

    def __init__(self, journal=None):
        self._stack = []
        self._journal = journal

    def journal(self):
        j = self._journal
        return j() if callable(j) else j

    def __call__(self, fn, *args, **kwargs):
        entry = None
        journal = self.journal()
        if journal is not None:
            steps = fn.records if isinstance(fn, Undo) else None
            if steps:
                entry = journal.add(steps)
        handle = Deferred(self, fn, args, kwargs, entry)
        self._stack.append(handle)
        return handle

    def __len__(self):
        return len(self._stack)

    def _done(self, entry):
        if entry is not None:
            self.journal().done(entry)

    def run_all(self):
        """Run every undo (newest first); return the failures as messages. An
        undo interrupted by Ctrl-C is said so and the others still run."""
        failures = []
        while self._stack:
            handle = self._stack[-1]
            try:
                handle.run()
            except BaseException as e:  # noqa: BLE001 - an undo must not stop the others
                if handle in self._stack:
                    self._stack.remove(handle)
                if isinstance(e, KeyboardInterrupt):
                    failures.append(f"{handle.describe()}: interrupted")
                    continue
                failures.append(f"{handle.describe()}: {type(e).__name__}: {e}")
        return failures


def undo_failed(failures):
    """The message of undos that failed (``Defer.run_all``'s list)."""
    return "undo failed, the lab may not be as it was:\n  " + "\n  ".join(failures)
