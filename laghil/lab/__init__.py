"""Lab files: the model of a rack (nodes, ports, cables) and its loader.

    from laghil.lab import load_lab
    lab = load_lab("rack3")            # labs/rack3.yaml, or a path
    lab.far_end("srv1", "ens1f0np0")   # PortRef(node='sw3', port='Eth1/1')
"""

from .load import available_labs, default_labs_dir, lab_schema, load_lab
from .model import (
    CAPABILITIES,
    FAULT_KINDS,
    PDU_MODELS,
    Bmc,
    Cable,
    Defaults,
    Fault,
    Host,
    Lab,
    Management,
    ManagementDefaults,
    Outlet,
    Pdu,
    Port,
    PortRef,
    Problem,
    RdmaDevice,
    Switch,
    UnknownCable,
    UnknownPort,
    VirtualSettings,
    vlab_state_dir,
)

__all__ = [
    "CAPABILITIES", "FAULT_KINDS", "PDU_MODELS",
    "Bmc", "Cable", "Defaults", "Fault", "Host", "Lab", "Management",
    "ManagementDefaults", "Outlet", "Pdu", "Port", "PortRef", "Problem",
    "RdmaDevice", "Switch", "UnknownCable", "UnknownPort", "VirtualSettings",
    "available_labs", "default_labs_dir", "lab_schema", "load_lab", "vlab_state_dir",
]
