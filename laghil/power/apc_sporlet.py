"""APC MasterSwitch "sPDU" (older AP79xx / AP92xx), over SNMP v1.

PowerNet-MIB object used (``<n>`` is the outlet number, 1-based):

* ``sPDUOutletCtl`` ``1.3.6.1.4.1.318.1.1.4.4.2.1.3.<n>`` (read-write).
  Write 1 outletOn, 2 outletOff, 3 outletReboot (5/6/7: with delay).
  Read 1 outletOn, 2 outletOff, 4 outletUnknown: the same OID is the status.

These units often speak SNMP v1 only, so v1 is used (as labgrid's ``apc.py`` does).
"""

from .snmp import DEFAULT_RETRIES, DEFAULT_TIMEOUT, PowerError, describe_target, snmp_get, snmp_set_int

CONTROL_OID = "1.3.6.1.4.1.318.1.1.4.4.2.1.3"  # sPDUOutletCtl
STATUS_OID = CONTROL_OID
CMD_ON, CMD_OFF, CMD_REBOOT = 1, 2, 3
STATE_ON, STATE_OFF = 1, 2
SNMP_VERSION = "1"


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
                     f"unexpected sPDUOutletCtl {state!r} (expected 1 outletOn or 2 outletOff)")
