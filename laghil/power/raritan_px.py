"""Raritan PX2 / PX3 PDUs, over SNMP (PDU2-MIB, outletSwitchControlTable).

PDU2-MIB objects used (index ``pduId.outletId``; pduId is 1 for a
stand-alone PDU, so ``<n>`` below is ``1.<outlet>``):

* ``switchingOperation`` ``1.3.6.1.4.1.13742.6.4.1.2.1.2.1.<outlet>``
  (read-write): 0 off, 1 on, 2 cycle.
* ``outletSwitchingState`` ``1.3.6.1.4.1.13742.6.4.1.2.1.3.1.<outlet>``
  (read-only): 7 on, 8 off (other values: in transition or unavailable).

Same OIDs and values as labgrid's ``driver/power/raritan.py``.
"""

from .snmp import OutletMib

MODEL = "raritan-px"      # as lab files name it (pdus.<name>.model)

CONTROL_OID = "1.3.6.1.4.1.13742.6.4.1.2.1.2.1"  # switchingOperation, pduId 1
STATUS_OID = "1.3.6.1.4.1.13742.6.4.1.2.1.3.1"   # outletSwitchingState, pduId 1
CMD_OFF, CMD_ON, CMD_CYCLE = 0, 1, 2
STATE_ON, STATE_OFF = 7, 8
SNMP_VERSION = "2c"


MIB = OutletMib(CONTROL_OID, STATUS_OID, CMD_ON, CMD_OFF, STATE_ON, STATE_OFF,
                "outletSwitchingState", SNMP_VERSION)
power_set = MIB.power_set
power_get = MIB.power_get
