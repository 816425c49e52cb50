"""Raritan PX2 / PX3 PDUs, over SNMP (PDU2-MIB, outletSwitchControlTable).

PDU2-MIB objects used (index ``pduId.outletId``; pduId is 1 for a
stand-alone PDU, so ``<n>`` below is ``1.<outlet>``):

* ``switchingOperation`` ``1.3.6.1.4.1.13742.6.4.1.2.1.2.1.<outlet>``
  (read-write): 0 off, 1 on, 2 cycle.
* ``outletSwitchingState`` ``1.3.6.1.4.1.13742.6.4.1.2.1.3.1.<outlet>``
  (read-only): 7 on, 8 off (other values: in transition or unavailable).

Same OIDs and values as labgrid's ``driver/power/raritan.py``.
"""

from .snmp import DEFAULT_RETRIES, DEFAULT_TIMEOUT, PowerError, describe_target, snmp_get, snmp_set_int

CONTROL_OID = "1.3.6.1.4.1.13742.6.4.1.2.1.2.1"  # switchingOperation, pduId 1
STATUS_OID = "1.3.6.1.4.1.13742.6.4.1.2.1.3.1"   # outletSwitchingState, pduId 1
CMD_OFF, CMD_ON, CMD_CYCLE = 0, 1, 2
STATE_ON, STATE_OFF = 7, 8
SNMP_VERSION = "2c"


def power_set(host, port, community, index, value: bool, *, timeout=DEFAULT_TIMEOUT,
              retries=DEFAULT_RETRIES, name=None) -> None:
    """Switch outlet ``index`` on (``value`` true) or off."""
    snmp_set_int(host, port, community, f"{CONTROL_OID}.{int(index)}",
                 CMD_ON if value else CMD_OFF, timeout, retries=retries,
                 version=SNMP_VERSION, name=name)


def power_get(host, port, community, index, *, timeout=DEFAULT_TIMEOUT,
              retries=DEFAULT_RETRIES, name=None) -> bool:
    """Whether outlet ``index`` is on."""
    oid = f"{STATUS_OID}.{int(index)}"
    state = snmp_get(host, port, community, oid, timeout, retries=retries,
                     version=SNMP_VERSION, name=name)
    if state == STATE_ON:
        return True
    if state == STATE_OFF:
        return False
    raise PowerError(f"{describe_target(host, port, name)}: SNMP GET {oid}: "
                     f"unexpected outletSwitchingState {state!r} (expected 7 on or 8 off)")
