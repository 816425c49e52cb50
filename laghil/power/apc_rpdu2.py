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

from .snmp import OutletMib

MODEL = "apc-rpdu2"      # as lab files name it (pdus.<name>.model)

CONTROL_OID = "1.3.6.1.4.1.318.1.1.26.9.2.4.1.5"  # rPDU2OutletSwitchedControlCommand
STATUS_OID = "1.3.6.1.4.1.318.1.1.26.9.2.3.1.5"   # rPDU2OutletSwitchedStatusState
CMD_ON, CMD_OFF, CMD_REBOOT = 1, 2, 3
STATE_OFF, STATE_ON = 1, 2
SNMP_VERSION = "2c"


MIB = OutletMib(CONTROL_OID, STATUS_OID, CMD_ON, CMD_OFF, STATE_ON, STATE_OFF,
                "rPDU2OutletSwitchedStatusState", SNMP_VERSION)
power_set = MIB.power_set
power_get = MIB.power_get
