"""The virtual rack's PDU: a real SNMP v1/v2c agent emulating an APC rPDU2.

:class:`SnmpPduAgent` is a pysnmp command responder listening on UDP
``127.0.0.1:<port>``, run on its own asyncio loop in a background thread
(``start()`` / ``stop()``, or ``with``). It serves, for each outlet ``n``:

* ``rPDU2OutletSwitchedControlCommand.n`` (read-write): write 1 immediateOn,
  2 immediateOff, 3 immediateReboot (off, then on after ``reboot_duration`` s);
  any other value is refused with ``wrongValue``. Reading it answers 1 when
  the outlet is on and 2 when off, as APC firmware does.
* ``rPDU2OutletSwitchedStatusState.n`` (read-only): 1 off, 2 on.
* plus ``sysDescr.0`` and ``sysName.0``; GETNEXT / GETBULK walk all of it.

The OIDs are those of :mod:`laghil.power.apc_rpdu2`, so the lab model
``virtual`` is driven by the same code as a real APC rPDU2.

A request with a wrong community gets no answer at all, like a real agent
(the client times out). The community is never logged.

What an outlet does is up to a *backend*: any object with
``on_set(outlet, on: bool)`` and ``is_on(outlet) -> bool``. Two are provided:

* :class:`FakeBackend`: a dict of outlet states that records every set
  (unit tests, no QEMU);
* :class:`RackBackend`: outlet -> guest through the lab's ``feeds``, calling
  :meth:`Rack.power_off` / :meth:`Rack.power_on`.

:class:`VirtualPdu` wires an agent to a lab's ``virtual`` PDU.

Power-on semantics: like a real PDU, an outlet reports the *commanded* state
at once. The relay switches instantly and the server boots afterwards, so
``on`` reads back immediately while the guest takes 15-25 s to answer SSH:
wait for the node itself, not for the PDU. Power-off is done before the SET is
answered, so when the PDU acknowledges ``off`` the guest's power is really gone.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
from typing import Iterable, Mapping, Optional, Protocol

from ..errors import RackError
from ..power import apc_rpdu2
from ..power.pdu import VIRTUAL_COMMUNITY  # used when a virtual PDU names no community_env

log = logging.getLogger(__name__)

SYS_DESCR_OID = (1, 3, 6, 1, 2, 1, 1, 1, 0)
SYS_NAME_OID = (1, 3, 6, 1, 2, 1, 1, 5, 0)
_CONTROL = tuple(int(x) for x in apc_rpdu2.CONTROL_OID.split("."))
_STATUS = tuple(int(x) for x in apc_rpdu2.STATUS_OID.split("."))


class OutletBackend(Protocol):
    """What the agent's outlets act on."""

    def on_set(self, outlet: int, on: bool) -> None:
        """Switch ``outlet`` on or off (called in the agent's thread)."""

    def is_on(self, outlet: int) -> bool:
        """The outlet's state as the PDU reports it."""


# --------------------------------------------------------------------------
# Backends

class FakeBackend:
    """Outlet states in a dict; every ``on_set`` is appended to :attr:`sets`."""

    def __init__(self, outlets: Iterable[int], initial: bool = True):
        self._lock = threading.Lock()
        self.states = {int(n): bool(initial) for n in outlets}
        self.sets: list[tuple[int, bool]] = []

    def on_set(self, outlet, on):
        with self._lock:
            self.sets.append((outlet, on))
            self.states[outlet] = on

    def is_on(self, outlet):
        with self._lock:
            return self.states[outlet]


class RackBackend:
    """Outlets of a virtual lab's PDU driving the guests of its :class:`Rack`.

    An outlet whose ``feeds`` is a guest powers it: off calls
    ``rack.power_off(node)`` before the SET is answered; on records the
    outlet as on at once and runs ``rack.power_on(node)`` (a boot, 15-25 s) in
    a background thread. Outlets feeding nothing (or a node that is not a
    guest) are plain relays. Errors of a background power-on are logged and
    kept in :attr:`errors` (switching an outlet off while its guest is still
    booting kills that boot, which shows there too).
    """

    def __init__(self, rack, feeds: Mapping[int, Optional[str]]):
        self.rack = rack
        guests = set(getattr(rack, "plans", {}) or ())
        self.nodes = {int(n): node for n, node in feeds.items() if node in guests}
        self._commanded = {int(n): True for n in feeds if int(n) not in self.nodes}
        self._booting: dict[int, threading.Thread] = {}
        self.errors: list[str] = []
        self.off_instants: dict[int, float] = {}

    def on_set(self, outlet, on):
        self._commanded[outlet] = on
        node = self.nodes.get(outlet)
        if node is None:
            return
        if not on:
            self.off_instants[outlet] = self.rack.power_off(node)
            return
        thread = self._booting.get(outlet)
        if thread is not None and thread.is_alive():
            return  # already booting
        thread = threading.Thread(target=self._boot, args=(outlet, node),
                                  name=f"vpdu-boot-{node}", daemon=True)
        self._booting[outlet] = thread
        thread.start()

    def _boot(self, outlet, node):
        try:
            self.rack.power_on(node)
        except Exception as e:  # reported, not raised: nobody waits for this thread
            msg = f"virtual PDU outlet {outlet}: power-on of {node} failed: {e}"
            log.error("%s", msg)
            self.errors.append(msg)

    def is_on(self, outlet):
        if outlet in self._commanded:
            return self._commanded[outlet]
        return self.rack.is_powered(self.nodes[outlet])

    def wait_booted(self, timeout: float = 300.0) -> None:
        """Wait for background power-ons to finish (for an orderly shutdown)."""
        deadline = time.monotonic() + timeout
        for thread in list(self._booting.values()):
            thread.join(max(0.0, deadline - time.monotonic()))


# --------------------------------------------------------------------------
# The MIB: what the command responders call

class _OutletMib:
    """Instrumentation of the emulated objects (the interface pysnmp's
    command responders call: read / read-next / write of var-binds)."""

    def __init__(self, agent: "SnmpPduAgent"):
        self.agent = agent
        self.outlets = sorted(agent.outlets)
        self.oids = sorted([SYS_DESCR_OID, SYS_NAME_OID]
                           + [_CONTROL + (n,) for n in self.outlets]
                           + [_STATUS + (n,) for n in self.outlets])

    def _value(self, oid: tuple):
        from pysnmp.proto import rfc1902, rfc1905

        if oid == SYS_DESCR_OID:
            return rfc1902.OctetString("laghil virtual PDU (APC rPDU2 emulation)")
        if oid == SYS_NAME_OID:
            return rfc1902.OctetString(self.agent.name)
        for column, on_off in ((_CONTROL, (apc_rpdu2.CMD_ON, apc_rpdu2.CMD_OFF)),
                               (_STATUS, (apc_rpdu2.STATE_ON, apc_rpdu2.STATE_OFF))):
            if oid[:len(column)] == column:
                if len(oid) == len(column) + 1 and oid[-1] in self.agent.outlets:
                    on = self.agent.backend.is_on(oid[-1])
                    return rfc1902.Integer32(on_off[0] if on else on_off[1])
                return rfc1905.noSuchInstance
        return rfc1905.noSuchObject

    def read_variables(self, *var_binds, **context):
        return [(name, self._value(tuple(name))) for name, _ in var_binds]

    def read_next_variables(self, *var_binds, **context):
        from pysnmp.proto import rfc1902, rfc1905

        out = []
        for name, _ in var_binds:
            nxt = next((o for o in self.oids if o > tuple(name)), None)
            if nxt is None:
                out.append((name, rfc1905.endOfMibView))
            else:
                out.append((rfc1902.ObjectName(nxt), self._value(nxt)))
        return out

    def write_variables(self, *var_binds, **context):
        from pysnmp.proto import rfc1902
        from pysnmp.smi import error as smi_error

        commands = []
        for idx, (name, value) in enumerate(var_binds):  # validate all, then act
            oid = tuple(name)
            if oid[:len(_CONTROL)] != _CONTROL or len(oid) != len(_CONTROL) + 1 \
                    or oid[-1] not in self.agent.outlets:
                raise smi_error.NotWritableError(name=name, idx=idx)
            if not rfc1902.Integer32.tagSet.isSuperTagSetOf(value.tagSet):
                raise smi_error.WrongTypeError(name=name, idx=idx)
            if int(value) not in (apc_rpdu2.CMD_ON, apc_rpdu2.CMD_OFF, apc_rpdu2.CMD_REBOOT):
                raise smi_error.WrongValueError(name=name, idx=idx)
            commands.append((oid[-1], int(value)))
        for idx, (outlet, command) in enumerate(commands):
            try:
                self.agent._command(outlet, command)
            except Exception as e:
                log.error("virtual PDU %s: outlet %s command %s failed: %s",
                          self.agent.name, outlet, command, e)
                raise smi_error.CommitFailedError(name=var_binds[idx][0], idx=idx)
        return list(var_binds)


# --------------------------------------------------------------------------
# The agent

class SnmpPduAgent:
    """An SNMP agent on UDP ``host:port`` emulating an APC rPDU2's outlets.

    ``port=0`` picks a free port (read :attr:`port` after :meth:`start`).
    """

    def __init__(self, backend: OutletBackend, outlets: Iterable[int], community: str, *,
                 host: str = "127.0.0.1", port: int = 0, name: str = "virtual-pdu",
                 reboot_duration: float = 5.0):
        if not community:
            raise ValueError("an SNMP agent needs a community")
        self.backend = backend
        self.outlets = frozenset(int(n) for n in outlets)
        self.name = name
        self.host = host
        self.port = port
        self.reboot_duration = reboot_duration
        self._community = community
        self._sock: Optional[socket.socket] = None
        self._thread: Optional[threading.Thread] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._ready = threading.Event()
        self._error: Optional[BaseException] = None
        self._timers: list[asyncio.TimerHandle] = []

    def __repr__(self):  # no community
        return f"SnmpPduAgent({self.name!r}, {self.host}:{self.port}, outlets={sorted(self.outlets)})"

    # ---- life cycle ------------------------------------------------------

    def start(self, timeout: float = 10.0) -> "SnmpPduAgent":
        """Bind the UDP port and serve in a background thread; return self."""
        if self._thread is not None:
            raise RackError(f"virtual PDU {self.name}: agent already started")
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind((self.host, self.port))
        except OSError as e:
            sock.close()
            raise RackError(f"virtual PDU {self.name}: cannot listen on UDP "
                            f"{self.host}:{self.port}: {e.strerror or e}") from None
        self._sock = sock
        self.port = sock.getsockname()[1]
        self._ready.clear()
        self._thread = threading.Thread(target=self._serve, name=f"vpdu-{self.name}", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout) or self._error is not None:
            why = self._error or f"not ready within {timeout:g} s"
            self.stop()
            raise RackError(f"virtual PDU {self.name}: SNMP agent failed to start: {why}")
        log.info("virtual PDU %s: SNMP agent on udp %s:%s", self.name, self.host, self.port)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving and release the port (idempotent)."""
        thread, loop = self._thread, self._loop
        if thread is not None:
            if loop is not None and not loop.is_closed():
                try:
                    loop.call_soon_threadsafe(loop.stop)
                except RuntimeError:  # loop already closed
                    pass
            thread.join(timeout)
        if self._sock is not None:
            self._sock.close()
        self._thread = self._loop = self._sock = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # ---- the agent's thread ------------------------------------------------

    def _serve(self):
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        engine = None
        try:
            engine = loop.run_until_complete(self._setup())
        except BaseException as e:  # reported by start()
            self._error = e
            self._ready.set()
        else:
            self._ready.set()
            loop.run_forever()
        finally:
            for timer in self._timers:
                timer.cancel()
            if engine is not None:
                try:
                    engine.close_dispatcher()
                except Exception:  # closing: nothing left to do about it
                    pass
            loop.run_until_complete(asyncio.sleep(0))
            loop.close()

    async def _setup(self):
        from pysnmp.carrier.asyncio.dgram import udp
        from pysnmp.entity import config, engine as snmp_engine
        from pysnmp.entity.rfc3413 import cmdrsp, context

        engine = snmp_engine.SnmpEngine()
        transport = udp.UdpAsyncioTransport(loop=asyncio.get_running_loop())
        config.add_transport(engine, udp.DOMAIN_NAME, transport.open_server_mode(sock=self._sock))
        config.add_v1_system(engine, "laghil-pdu", self._community)  # v1 and v2c
        ctx = context.SnmpContext(engine)
        ctx.unregister_context_name(b"")
        ctx.register_context_name(b"", _OutletMib(self))
        for responder in (cmdrsp.GetCommandResponder, cmdrsp.NextCommandResponder,
                          cmdrsp.BulkCommandResponder, cmdrsp.SetCommandResponder):
            responder(engine, ctx)
        return engine

    def _command(self, outlet: int, command: int):
        """Carry out one rPDU2OutletSwitchedControlCommand (in the agent's thread)."""
        self._timers = [t for t in self._timers if not t.cancelled()]
        if command == apc_rpdu2.CMD_REBOOT:
            log.info("virtual PDU %s: outlet %s reboot (%g s off)", self.name, outlet,
                     self.reboot_duration)
            self.backend.on_set(outlet, False)
            self._timers.append(self._loop.call_later(
                self.reboot_duration, self._safe_set, outlet, True))
            return
        on = command == apc_rpdu2.CMD_ON
        log.info("virtual PDU %s: outlet %s %s", self.name, outlet, "on" if on else "off")
        self.backend.on_set(outlet, on)

    def _safe_set(self, outlet, on):
        try:
            self.backend.on_set(outlet, on)
        except Exception as e:
            log.error("virtual PDU %s: outlet %s delayed switch failed: %s", self.name, outlet, e)


# --------------------------------------------------------------------------
# Wiring to a lab

class VirtualPdu(SnmpPduAgent):
    """The SNMP agent of a lab's ``virtual`` PDU.

    ``rack`` is the lab's :class:`~laghil.vlab.rack.Rack` (outlets switch its
    guests, see :class:`RackBackend`) or None for the fake backend (a
    :class:`FakeBackend`, all outlets on): unit tests without QEMU.
    ``port`` defaults to the PDU's ``port`` in the lab; ``community`` to the
    value of its ``community_env`` variable, else :data:`VIRTUAL_COMMUNITY`.
    ``pdu_name`` may be omitted when the lab has one virtual PDU.
    """

    def __init__(self, lab, rack=None, port: Optional[int] = None,
                 community: Optional[str] = None, *, pdu_name: Optional[str] = None,
                 env: Optional[Mapping[str, str]] = None, reboot_duration: float = 5.0):
        env = os.environ if env is None else env
        pdu_name = pdu_name or _the_virtual_pdu(lab)
        pdu = lab.pdus.get(pdu_name)
        if pdu is None or pdu.model != "virtual":
            raise RackError(f"lab {lab.name!r}: {pdu_name!r} is not a pdu of model virtual")
        if community is None:
            community = (env.get(pdu.community_env) if pdu.community_env else None) \
                or VIRTUAL_COMMUNITY
        feeds = {n: o.feeds for n, o in pdu.outlets.items()}
        backend = FakeBackend(feeds) if rack is None else RackBackend(rack, feeds)
        super().__init__(backend, feeds, community, host=pdu.address,
                         port=pdu.port if port is None else port, name=pdu_name,
                         reboot_duration=reboot_duration)


def _the_virtual_pdu(lab) -> str:
    names = [n for n, p in lab.pdus.items() if p.model == "virtual"]
    if len(names) != 1:
        raise RackError(f"lab {lab.name!r} has {len(names)} pdus of model virtual "
                        f"({', '.join(names) or 'none'}): pass pdu_name")
    return names[0]
