"""PDU outlet power control over SNMP.

One small module per PDU model (the labgrid shape), each exposing
``power_set(host, port, community, index, value)`` and
``power_get(host, port, community, index) -> bool``:

* :mod:`.apc_rpdu2` (lab model ``apc-rpdu2``, and ``virtual``: the virtual rack's
  agent emulates an rPDU2),
* :mod:`.apc_sporlet` (``apc-sporlet``),
* :mod:`.raritan_px` (``raritan-px``).

:class:`PduControl` drives a lab's PDU by name: the community comes from the
environment variable the lab names, outlets marked ``protected`` are never
switched off, and every switch is verified by reading the status back::

    from laghil.power import PduControl
    pdu = PduControl(lab, "pdu3")
    t_off = pdu.off(3)      # wall-clock instant the outlet went off
    pdu.on(3)
"""

from .snmp import PowerError
from .pdu import MODEL_MODULES, PduControl, UnknownOutlet

__all__ = ["MODEL_MODULES", "PduControl", "PowerError", "UnknownOutlet"]
