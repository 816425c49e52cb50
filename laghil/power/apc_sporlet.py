"""APC MasterSwitch "sPDU" (older AP79xx / AP92xx), over SNMP v1.

PowerNet-MIB object used (``<n>`` is the outlet number, 1-based):

* ``sPDUOutletCtl`` ``1.3.6.1.4.1.318.1.1.4.4.2.1.3.<n>`` (read-write).
  Write 1 outletOn, 2 outletOff, 3 outletReboot (5/6/7: with delay).
  Read 1 outletOn, 2 outletOff, 4 outletUnknown: the same OID is the status.

These units often speak SNMP v1 only, so v1 is used (as labgrid's ``apc.py`` does).
"""

from .snmp import OutletMib

MODEL = "apc-sporlet"      # as lab files name it (pdus.<name>.model)

CONTROL_OID = "1.3.6.1.4.1.318.1.1.4.4.2.1.3"  # sPDUOutletCtl
STATUS_OID = CONTROL_OID
CMD_ON, CMD_OFF, CMD_REBOOT = 1, 2, 3
STATE_ON, STATE_OFF = 1, 2
SNMP_VERSION = "1"


MIB = OutletMib(CONTROL_OID, STATUS_OID, CMD_ON, CMD_OFF, STATE_ON, STATE_OFF,
                "sPDUOutletCtl", SNMP_VERSION)
power_set = MIB.power_set
power_get = MIB.power_get
