"""Drive one PDU of a lab: switch outlets off and on, verified by read-back.

:class:`PduControl` resolves the PDU model's driver module, reads the SNMP
community from the environment variable the lab names (and registers it with
the secrets redactor), and refuses to switch off any outlet marked
``protected``. Only outlets listed in the lab file can be driven: an outlet
nobody described may power anything.

Each switch sends the command, then polls the outlet's status until it reads
the new state (bounded by ``verify_timeout``), and returns the wall-clock
instant (``time.time()``) of the change:

* when the first read-back already shows the new state, the instant the PDU
  acknowledged the command (the relay switched between sending and that
  acknowledgement, a LAN round trip);
* otherwise, the instant the read that first saw the new state was sent.

:attr:`PduControl.last_switch` keeps all the instants of the last switch.
"""

from __future__ import annotations

import os
import time
from typing import Mapping, NamedTuple, Optional

from ..transport.redact import SECRETS, Redactor
from ..wait import wait_until
from . import apc_rpdu2, apc_sporlet, raritan_px
from .snmp import DEFAULT_RETRIES, DEFAULT_TIMEOUT, PowerError, describe_target

# model (as lab files name it, each module's MODEL) -> its module: the one source
# of the PDU models a lab file may name (laghil.lab.fields reads it)
MODEL_MODULES = {m.MODEL: m for m in (apc_rpdu2, apc_sporlet, raritan_px)}
MODEL_MODULES["virtual"] = apc_rpdu2    # the virtual rack's agent emulates an APC rPDU2
VIRTUAL_COMMUNITY = "laghil-virtual"  # a virtual PDU's community when it names no community_env
DEFAULT_VERIFY_TIMEOUT = 10.0  # seconds to read the new state back
DEFAULT_POLL_INTERVAL = 0.2


class UnknownOutlet(PowerError, KeyError):
    """An outlet number the lab file does not list for that PDU."""

    def __str__(self):  # KeyError would repr() the message
        return str(self.args[0]) if self.args else "unknown outlet"


class SwitchTiming(NamedTuple):
    """Wall-clock instants (``time.time()``) of one verified switch."""

    outlet: int
    on: bool
    sent: float       # just before the SET was sent
    acked: float      # the PDU acknowledged the SET
    confirmed: float  # a read-back showed the new state (instant that read was sent)
    changed: float    # what off()/on() returned (see the module doc)


class PduControl:
    """The outlets of PDU ``pdu_name`` of ``lab``.

    ``env`` (default ``os.environ``) supplies the community through the PDU's
    ``community_env``. ``timeout``/``retries`` bound each SNMP request;
    ``verify_timeout`` bounds the read-back after a switch.
    """

    def __init__(self, lab, pdu_name: str, env: Optional[Mapping[str, str]] = None, *,
                 timeout: float = DEFAULT_TIMEOUT, retries: int = DEFAULT_RETRIES,
                 verify_timeout: float = DEFAULT_VERIFY_TIMEOUT,
                 poll_interval: float = DEFAULT_POLL_INTERVAL,
                 redactor: Redactor = SECRETS):
        pdu = lab.pdus.get(pdu_name)
        if pdu is None:
            raise PowerError(f"lab {lab.name!r} has no pdu {pdu_name!r}; pdus: "
                             f"{', '.join(lab.pdus) or '(none)'}")
        self.lab, self.name, self.pdu = lab, pdu_name, pdu
        self.model = pdu.model
        self.driver = MODEL_MODULES[pdu.model]
        self.address, self.port = pdu.address, pdu.port
        self.timeout, self.retries = timeout, retries
        self.verify_timeout, self.poll_interval = verify_timeout, poll_interval
        self.last_switch: Optional[SwitchTiming] = None
        self._community = self._read_community(os.environ if env is None else env)
        redactor.add(self._community)

    def __repr__(self):  # never the community
        return f"PduControl({self.name!r}, {self.model}, {self.address}:{self.port})"

    @property
    def where(self) -> str:
        """``pdu3 (10.3.0.5:161)``: how messages name this PDU."""
        return describe_target(self.address, self.port, self.name)

    def _read_community(self, env) -> str:
        var = self.pdu.community_env
        if var is None:
            if self.model == "virtual":
                return VIRTUAL_COMMUNITY
            raise PowerError(f"{self.where}: the lab file gives no community_env: name the "
                             "environment variable that holds the PDU's SNMP write community")
        community = env.get(var)
        if not community:
            raise PowerError(f"{self.where}: environment variable {var} (community_env) is not "
                             "set: export the PDU's SNMP write community in it")
        return community

    # ---- outlets ------------------------------------------------------------

    @property
    def outlets(self) -> list[int]:
        """The outlet numbers the lab file lists for this PDU."""
        return sorted(self.pdu.outlets)

    def _outlet(self, outlet):
        try:
            number = int(outlet)
        except (TypeError, ValueError):
            number = None
        if number is None or number not in self.pdu.outlets:
            raise UnknownOutlet(f"pdu {self.name} has no outlet {outlet!r} in lab "
                                f"{self.lab.name!r}; outlets: "
                                f"{', '.join(map(str, self.outlets)) or '(none)'}")
        return number, self.pdu.outlets[number]

    def feeds(self, outlet) -> Optional[str]:
        """The node that ``outlet`` powers (None when it feeds no lab node)."""
        return self._outlet(outlet)[1].feeds

    def outlet_of(self, node: str) -> int:
        """The outlet that powers ``node``; PowerError if none of this PDU's does."""
        for number in self.outlets:
            if self.pdu.outlets[number].feeds == node:
                return number
        raise PowerError(f"no outlet of pdu {self.name} feeds node {node!r}")

    # ---- actions --------------------------------------------------------------

    def _snmp_args(self):
        return dict(timeout=self.timeout, retries=self.retries, name=self.name)

    def state(self, outlet) -> bool:
        """Whether ``outlet`` is on, as the PDU reports it."""
        number, _ = self._outlet(outlet)
        return self.driver.power_get(self.address, self.port, self._community, number,
                                     **self._snmp_args())

    def off(self, outlet) -> float:
        """Switch ``outlet`` off; verified; return the wall-clock instant of the change.

        A ``protected`` outlet is refused before anything is sent to the PDU.
        """
        number, spec = self._outlet(outlet)
        if spec.protected:
            load = spec.feeds or (repr(spec.label) if spec.label else "an unnamed load")
            raise PowerError(f"outlet {number} of pdu {self.name} is protected (feeds {load}): "
                             "refusing to switch it off")
        return self._switch(number, False)

    def on(self, outlet) -> float:
        """Switch ``outlet`` on; verified; return the wall-clock instant of the change.

        The instant is when the outlet got power, not when the server it feeds
        finished booting: wait for the node itself before using it.
        """
        number, _ = self._outlet(outlet)
        return self._switch(number, True)

    def _switch(self, number: int, on: bool) -> float:
        sent = time.time()
        self.driver.power_set(self.address, self.port, self._community, number, on,
                              **self._snmp_args())
        acked = time.time()
        reads = []          # wall-clock instant of each read-back

        def read_back():
            reads.append(time.time())
            try:
                now_on = self.driver.power_get(self.address, self.port, self._community,
                                               number, **self._snmp_args())
            except PowerError as e:  # transient loss or transitional state: read again
                return f"error: {e}"
            return None if now_on == on else ("on" if now_on else "off")

        wait_until(read_back, timeout=self.verify_timeout, interval=self.poll_interval,
                   what=f"{self.where}: outlet {number} did not read back "
                        f"{'on' if on else 'off'} after the command", error=PowerError)
        changed = acked if len(reads) == 1 else reads[-1]
        self.last_switch = SwitchTiming(number, on, sent, acked, reads[-1], changed)
        return changed
