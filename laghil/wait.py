"""One bounded wait: poll a check until it holds or a deadline passes.

    wait_until(lambda: None if bond_is_up() else "members down", timeout=10,
               what="h1: lgbond0 ready")

A check returns ``None`` when the condition holds, else what it saw (any value
that tells the reader why it does not hold yet). A check may also raise
:class:`NotYet` with what it saw, e.g. when a parser meets output that is not
complete yet. After ``timeout`` seconds :class:`WaitTimeout` says what was
waited for, how long, and what was last seen. Every poll-until-it-holds in
laghil is this one: each stops by itself. (A deadline that several steps share,
as a connection's handshake and login or a command's reads, is a budget, not a
poll: those are written where they are spent.)
"""

import time

from .errors import LaghilError


class WaitTimeout(LaghilError):
    """The condition did not hold within the deadline; ``last`` is what was last seen."""

    def __init__(self, what, timeout, last, polls):
        self.what, self.timeout, self.last, self.polls = what, timeout, last, polls
        super().__init__(f"{what}: not within {timeout:g} s ({polls} polls); last seen: {last}")


class NotYet(Exception):
    """Raised by a check: not yet, and here is what was seen."""

    def __init__(self, seen):
        super().__init__(seen)
        self.seen = seen


def wait_until(check, *, timeout, what, interval=0.1, error=None, clock=time.monotonic,
               sleep=time.sleep):
    """Call ``check()`` every ``interval`` s until it returns None; return the
    seconds it took. ``error`` (an exception class taking one message) replaces
    WaitTimeout for callers whose users expect their own error type; the
    message is the same."""
    if timeout < 0 or interval <= 0:
        raise ValueError(f"wait_until({what!r}): timeout {timeout} and interval {interval} "
                         "must be >= 0 and > 0")
    t0 = clock()
    deadline = t0 + timeout
    polls = 0
    while True:
        polls += 1
        try:
            seen = check()
        except NotYet as e:
            seen = e.seen if e.seen is not None else "not yet"
        if seen is None:
            return clock() - t0
        now = clock()
        if now >= deadline:
            exc = WaitTimeout(what, timeout, seen, polls)
            if error is not None:
                raise error(str(exc)) from exc
            raise exc
        sleep(min(interval, max(0.0, deadline - now)))
