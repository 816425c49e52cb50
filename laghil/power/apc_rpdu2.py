"""APC Switched Rack PDU, 2nd generation (AP84xx / AP86xx / AP89xx), over SNMP.

PowerNet-MIB objects used (``<n>`` is the outlet number, 1-based):

* ``rPDU2OutletSwitchedControlCommand`` ``1.3.6.1.4.1.318.1.1.26.9.2.4.1.5.<n>``
  (read-write): 1 immediateOn, 2 immediateOff, 3 immediateReboot
  (4-7 delayed variants, 8 cancelPendingCommand; unused here).
* ``rPDU2OutletSwitchedStatusState`` ``1.3.6.1.4.1.318.1.1.26.9.2.3.1.5.<n>``
  (read-only): 1 off, 2 on.

The virtual rack's SNMP PDU (:mod:`laghil.vlab.snmp_pdu`) emulates exactly these.
Same shape as labgrid's ``driver/power/*.py``: ``power_set`` / ``power_get``.
"""

from .snmp import DEFAULT_RETRIES, DEFAULT_TIMEOUT, PowerError, describe_target, snmp_get, snmp_set_int

CONTROL_OID = "1.3.6.1.4.1.318.1.1.26.9.2.4.1.5"  # rPDU2OutletSwitchedControlCommand
STATUS_OID = "1.3.6.1.4.1.318.1.1.26.9.2.3.1.5"   # rPDU2OutletSwitchedStatusState
CMD_ON, CMD_OFF, CMD_REBOOT = 1, 2, 3
STATE_OFF, STATE_ON = 1, 2
SNMP_VERSION = "2c"


def power_set(host, port, community, index, value: bool, *, timeout=DEFAULT_TIMEOUT,
              retries=DEFAULT_RETRIES, name=None) -> None:
    """Switch outlet ``index`` on (``value`` true) or off, immediately."""
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
                     f"unexpected rPDU2OutletSwitchedStatusState {state!r} (expected 1 off or 2 on)")
