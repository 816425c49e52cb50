"""Every switch platform driver against the operations laghil calls on a
switch (issue 23): the list is read from the code that calls them (suites,
fixtures, the library: ``driver.<op>(`` / ``drv.<op>(``) and the session's
reads, so an operation a suite starts calling is listed here at once. An
operation a driver leaves to the base class (or answers with ``_cannot``:
"not driven by laghil's ... driver yet") fails, unless it is one of the known
gaps below: each of those is a strict xfail, listed in every unit run's
summary, which fails the day it is driven and not taken off the list."""

import inspect
import re
from pathlib import Path

import pytest

from laghil.drivers.switch import DRIVERS
from laghil.drivers.switch.base import SwitchDriver

ROOT = Path(__file__).resolve().parent.parent
CALL = re.compile(r"\b(?:drv|driver)\.([a-z_]+)\(")
# read at session start, in the lab baseline and in a restore (laghil.labstate:
# a switch without a shell), and by `laghil lab check`
SESSION_OPS = {"snapshot", "describe"}


def called_operations():
    ops = set(SESSION_OPS)
    for folder in ("suites", "fixtures", "laghil"):
        for f in (ROOT / folder).rglob("*.py"):
            ops |= set(CALL.findall(f.read_text()))
    interface = {n for n, v in vars(SwitchDriver).items()
                 if callable(v) and not n.startswith("_")}
    return sorted(ops & interface)


# (platform, operation) not driven yet, and why: the list shrinks, never silently
KNOWN_GAPS = {
    **{(p, op): "a NOS's log is read by platform show commands laghil has no samples "
                "for yet"
       for p in ("eos", "nxos", "onyx")
       for op in ("log_mark", "kernel_faults")},
    ("onyx", "fdb_on"): "Onyx's MAC table: no sample of `show mac-address-table` yet",
    **{(p, "member_blackhole"): "a data-plane drop that spares LACP needs the NOS's ACLs"
       for p in ("eos", "nxos", "onyx")},
    ("sonic", "offload_evidence"): "SONiC's hardware LAG table (ASIC_DB's SAI LAG objects): "
                                   "no sample of it yet",
    ("sonic", "member_blackhole"): "a data-plane drop that spares LACP needs SONiC's ACLs",
}


# an operation the base class builds on another: driven only where that one is
BUILT_ON = {"fdb_on": "fdb"}


def driven(cls, op):
    """Does ``cls`` drive ``op``: its own method, not the base's refusal?"""
    if op in BUILT_ON and not driven(cls, BUILT_ON[op]):
        return False
    return "self._cannot(" not in inspect.getsource(getattr(cls, op))


def test_the_operations_are_read_from_the_callers():
    ops = called_operations()
    for must in ("bridge_create", "lag_create", "lag_state", "port_shutdown",
                 "lag_member_remove", "lag_delete", "fdb_on", "offload_evidence", "snapshot"):
        assert must in ops, f"{must} not found among the called operations {ops}"


def _cases():
    for platform, cls in sorted(DRIVERS.items()):
        for op in called_operations():
            if op == "snapshot" and cls.has_shell:
                continue            # a switch with a shell is read by laghil's shell snapshot
            why = KNOWN_GAPS.get((platform, op))
            marks = [pytest.mark.xfail(strict=True, reason=why)] if why else []
            yield pytest.param(cls, op, id=f"{platform}-{op}", marks=marks)


@pytest.mark.parametrize("cls,op", list(_cases()))
def test_every_driver_drives_every_operation_laghil_calls(cls, op):
    assert driven(cls, op), (f"{cls.platform}: {op} is not driven by laghil's "
                             f"{cls.platform} driver (add it, or list the gap in KNOWN_GAPS)")


def test_known_gaps_name_real_platforms_and_operations():
    ops = set(called_operations())
    for platform, op in KNOWN_GAPS:
        assert platform in DRIVERS and op in ops, (platform, op)
