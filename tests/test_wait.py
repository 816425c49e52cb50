"""The one bounded wait: returns how long it took, stops at its deadline, and
says what it waited for and what it last saw."""

import pytest

from laghil.errors import LaghilError
from laghil.wait import NotYet, WaitTimeout, wait_until


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t

    def sleep(self, s):
        self.t += s


def test_returns_the_seconds_it_took_once_the_check_holds():
    clock, seen = Clock(), iter(["down", "down", None])
    took = wait_until(lambda: next(seen), timeout=5, interval=0.5, what="carrier up",
                      clock=clock, sleep=clock.sleep)
    assert took == pytest.approx(1.0)


def test_times_out_naming_what_and_the_last_seen_value():
    clock = Clock()
    n = []

    def check():
        n.append(1)
        return {"h1:eth1": False, "n": len(n)}
    with pytest.raises(WaitTimeout) as e:
        wait_until(check, timeout=2, interval=0.5, what="h1: lgbond0 ready", clock=clock,
                   sleep=clock.sleep)
    assert str(e.value).startswith("h1: lgbond0 ready: not within 2 s (5 polls); last seen: ")
    assert "'n': 5" in str(e.value) and clock.t == pytest.approx(102.0)
    assert isinstance(e.value, LaghilError)


def test_a_check_may_raise_not_yet_and_callers_may_want_their_own_error():
    clock = Clock()

    class MyError(LaghilError):
        pass

    def check():
        raise NotYet("half a JSON document")
    with pytest.raises(MyError, match="iperf3 result: not within 1 s .* half a JSON document"):
        wait_until(check, timeout=1, what="iperf3 result", error=MyError, clock=clock,
                   sleep=clock.sleep)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError):
        wait_until(lambda: None, timeout=1, interval=0, what="x")
