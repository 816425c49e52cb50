"""Synchronous SNMP GET / SET of one integer, for the PDU drivers.

A thin blocking wrapper over pysnmp 7's asyncio hlapi. Requests run on one
asyncio loop in a daemon thread with one shared ``SnmpEngine`` (building an
engine loads MIBs and costs ~0.1 s, too much per outlet poll); callers block
on the result, so this works from plain code, from several threads and from
inside another running event loop alike.

Every failure becomes a :class:`PowerError` that names the PDU (its lab name
when given, and ``address:port``), the OID and the cause. The community string
is a secret: it is never part of a message, and is masked again from any text
that comes back from pysnmp.

Timeouts are bounded: one request waits ``timeout`` seconds and is sent at
most ``retries + 1`` times; a hard guard of that total plus a little slack
stops the call even if pysnmp misbehaves.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
from typing import Optional

from ..errors import LaghilError
from ..transport.redact import MASK

DEFAULT_TIMEOUT = 2.0   # seconds for one request
DEFAULT_RETRIES = 1     # resends after the first request
SNMP_VERSIONS = {"1": 0, "2c": 1}  # laghil name -> pysnmp mpModel
_GUARD_SLACK = 3.0      # seconds over timeout * tries before the hard guard fires


class PowerError(LaghilError):
    """A PDU outlet could not be driven or read (or was refused on purpose)."""


def describe_target(host: str, port: int, name: Optional[str] = None) -> str:
    """``pdu3 (10.3.0.5:161)``, or ``10.3.0.5:161`` when there is no name."""
    where = f"{host}:{port}"
    return f"{name} ({where})" if name else where


def total_wait(timeout: float, retries: int) -> float:
    """The longest a GET or SET can wait for an answer, in seconds."""
    return timeout * (retries + 1)


def snmp_get(host: str, port: int, community: str, oid: str,
             timeout: float = DEFAULT_TIMEOUT, *, retries: int = DEFAULT_RETRIES,
             version: str = "2c", name: Optional[str] = None):
    """Read ``oid``; return an ``int`` for integer syntaxes, else the value's text."""
    from pyasn1.type import univ

    value = _call("GET", host, port, community, oid, None, timeout, retries, version, name)
    return int(value) if isinstance(value, univ.Integer) else value.prettyPrint()


def snmp_set_int(host: str, port: int, community: str, oid: str, value: int,
                 timeout: float = DEFAULT_TIMEOUT, *, retries: int = DEFAULT_RETRIES,
                 version: str = "2c", name: Optional[str] = None) -> None:
    """Write the INTEGER ``value`` to ``oid``; return once the agent acknowledged it."""
    _call("SET", host, port, community, oid, int(value), timeout, retries, version, name)


# --------------------------------------------------------------------------

_WRITE_REFUSED = "read-only community, or SNMP write disabled on the PDU?"
_STATUS_HINTS = {
    "noSuchName": "no such object: wrong PDU model or outlet number?",
    "notWritable": _WRITE_REFUSED,
    "readOnly": _WRITE_REFUSED,
    "noAccess": _WRITE_REFUSED,
    "authorizationError": _WRITE_REFUSED,
    "wrongValue": "the PDU refused the value",
}


class _NoAnswer(Exception):
    pass


class _AgentError(Exception):
    pass


def _call(op, host, port, community, oid, value, timeout, retries, version, name):
    if version not in SNMP_VERSIONS:
        raise ValueError(f"unknown SNMP version {version!r}; allowed: {', '.join(SNMP_VERSIONS)}")
    if timeout <= 0 or retries < 0:
        raise ValueError("timeout must be > 0 and retries >= 0")
    head = f"{describe_target(host, port, name)}: SNMP {op} {oid}"
    wait = total_wait(timeout, retries)

    def fail(cause):
        text = str(cause)
        if community:
            text = text.replace(community, MASK)
        return PowerError(f"{head}: {text}")

    try:
        return _run_sync(lambda engine: _request(engine, op, host, port, community, oid, value,
                                                 timeout, retries, SNMP_VERSIONS[version]),
                         wait + _GUARD_SLACK)
    except _NoAnswer:
        raise fail(f"no response within {wait:g} s (wrong community or unreachable)") from None
    except _AgentError as e:
        raise fail(e) from None
    except (asyncio.TimeoutError, concurrent.futures.TimeoutError):
        raise fail(f"no result within {wait + _GUARD_SLACK:g} s (SNMP engine stuck)") from None
    except Exception as e:  # pysnmp/pyasn1 errors: bad address, bad OID...
        raise fail(f"{type(e).__name__}: {e}") from None


async def _request(engine, op, host, port, community, oid, value, timeout, retries, mp_model):
    # Imported here so that importing laghil.power stays cheap.
    from pysnmp.hlapi.v3arch.asyncio import (
        CommunityData, ContextData, ObjectIdentity, ObjectType, UdpTransportTarget,
        get_cmd, set_cmd,
    )
    from pysnmp.proto import errind
    from pysnmp.proto.rfc1902 import Integer32
    from pysnmp.proto.rfc1905 import NoSuchInstance, NoSuchObject

    target = await UdpTransportTarget.create((host, port), timeout=timeout, retries=retries)
    auth = CommunityData(community, mpModel=mp_model)
    if op == "GET":
        var = ObjectType(ObjectIdentity(oid))
        err_ind, err_status, err_index, var_binds = await get_cmd(
            engine, auth, target, ContextData(), var, lookupMib=False)
    else:
        var = ObjectType(ObjectIdentity(oid), Integer32(value))
        err_ind, err_status, err_index, var_binds = await set_cmd(
            engine, auth, target, ContextData(), var, lookupMib=False)

    if err_ind:
        if isinstance(err_ind, errind.RequestTimedOut):
            raise _NoAnswer()
        raise _AgentError(str(err_ind))
    if err_status:
        what = err_status.prettyPrint()
        hint = _STATUS_HINTS.get(what)
        raise _AgentError(f"agent answered error-status {what} (index {int(err_index)})"
                          + (f": {hint}" if hint else ""))
    if not var_binds:
        raise _AgentError("agent answered with no variable")
    got = var_binds[0][1]
    if isinstance(got, (NoSuchObject, NoSuchInstance)):
        raise _AgentError("agent has no such object at this OID: "
                          "wrong PDU model or outlet number?")
    if op == "SET" and int(got) != value:
        raise _AgentError(f"agent acknowledged {got.prettyPrint()} instead of {value}")
    return got


class _Client:
    """The shared event loop thread and SNMP engine (created on first use)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._loop = None
        self._engine = None
        self._pid = None

    def submit(self, make_coro, guard: float):
        """Run ``make_coro(engine)`` on the client loop; wait at most ``guard`` s."""
        loop, engine = self._ensure()
        future = asyncio.run_coroutine_threadsafe(make_coro(engine), loop)
        try:
            return future.result(guard)
        except concurrent.futures.TimeoutError:
            future.cancel()
            self.reset()  # a stuck engine must not poison later calls
            raise

    def _ensure(self):
        with self._lock:
            if self._loop is None or self._pid != os.getpid():
                from pysnmp.hlapi.v3arch.asyncio import SnmpEngine

                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="laghil-snmp", daemon=True).start()
                self._engine = asyncio.run_coroutine_threadsafe(
                    _make_engine(SnmpEngine), loop).result(30)
                self._loop, self._pid = loop, os.getpid()
            return self._loop, self._engine

    def reset(self):
        """Drop the engine and stop the loop; the next call starts afresh."""
        with self._lock:
            loop, engine = self._loop, self._engine
            self._loop = self._engine = None
        if loop is not None and self._pid == os.getpid():
            def close():
                try:
                    engine.close_dispatcher()
                finally:
                    loop.stop()
            loop.call_soon_threadsafe(close)


async def _make_engine(factory):
    return factory()


_CLIENT = _Client()


def _run_sync(make_coro, guard: float):
    """Run ``make_coro(engine)`` to completion from synchronous code, bounded by ``guard`` s."""
    return _CLIENT.submit(make_coro, guard)


class OutletMib:
    """The outlet control/status objects of one PDU MIB: what each per-model
    module (labgrid shape) declares, and the power_set/power_get they expose."""

    def __init__(self, control_oid, status_oid, cmd_on, cmd_off, state_on, state_off,
                 status_name, version="2c"):
        self.control_oid, self.status_oid = control_oid, status_oid
        self.cmd_on, self.cmd_off = cmd_on, cmd_off
        self.state_on, self.state_off = state_on, state_off
        self.status_name, self.version = status_name, version

    def power_set(self, host, port, community, index, value, *, timeout=DEFAULT_TIMEOUT,
                  retries=DEFAULT_RETRIES, name=None):
        """Switch outlet ``index`` on (``value`` true) or off, immediately."""
        snmp_set_int(host, port, community, f"{self.control_oid}.{int(index)}",
                     self.cmd_on if value else self.cmd_off, timeout, retries=retries,
                     version=self.version, name=name)

    def power_get(self, host, port, community, index, *, timeout=DEFAULT_TIMEOUT,
                  retries=DEFAULT_RETRIES, name=None):
        """Whether outlet ``index`` is on."""
        oid = f"{self.status_oid}.{int(index)}"
        state = snmp_get(host, port, community, oid, timeout, retries=retries,
                         version=self.version, name=name)
        if state == self.state_on:
            return True
        if state == self.state_off:
            return False
        raise PowerError(f"{describe_target(host, port, name)}: SNMP GET {oid}: unexpected "
                         f"{self.status_name} {state!r} (expected {self.state_on} on or "
                         f"{self.state_off} off)")
