"""SR-IOV VFs on a PF laghil may use (a lab port with ``sriov: true``): made
with their removal registered first, found by sysfs (``virtfn<N>/net``), set up
for a bond (MAC, trust, spoof check through the PF)."""

import re

from ..errors import LaghilError
from ..journal import node_undo
from ..names import qif
from ..wait import wait_until
from .vflag import numvfs_command


class SriovError(LaghilError):
    pass


# VF drivers by PF driver (the VF's own module is not always loaded by itself:
# a guest without udev, a host with the module blacklisted)
VF_DRIVER = {"igb": "igbvf", "ixgbe": "ixgbevf", "i40e": "iavf", "ice": "iavf",
             "mlx5_core": "mlx5_core"}
MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


def check_pf(node, pf):
    """``pf`` must be a port the lab marks ``sriov: true`` on ``node``."""
    port = node.spec.ports.get(pf)
    if port is None or not getattr(port, "sriov", False):
        raise SriovError(f"{node.name}: {pf} is not an SR-IOV PF of the lab file (a port with "
                         "sriov: true): laghil makes no VFs on it")
    return pf


def pf_driver(node, pf):
    r = node.run(f"basename \"$(readlink /sys/class/net/{qif(pf)}/device/driver)\"", check=False)
    return r.stdout.strip() or None


def create_vfs(node, pf, count, *, defer, timeout=30.0):
    """``count`` VFs on ``pf`` (none before: a PF with VFs laghil did not make
    is refused), their removal registered first; the VF netdev names, in VF order."""
    check_pf(node, pf)
    p = qif(pf)
    have = node.run(f"cat /sys/class/net/{p}/device/sriov_numvfs /sys/class/net/{p}/device/"
                    "sriov_totalvfs").stdout.split()
    if len(have) != 2:
        raise SriovError(f"{node.name}: {pf} shows no SR-IOV (sriov_numvfs/sriov_totalvfs)")
    numvfs, total = int(have[0]), int(have[1])
    if numvfs:
        raise SriovError(f"{node.name}: {pf} already has {numvfs} VFs laghil did not make: "
                         "refusing to touch them")
    if count > total:
        raise SriovError(f"{node.name}: {pf} offers {total} VFs, not {count}")
    vf_mod = VF_DRIVER.get(pf_driver(node, pf) or "")
    defer(node_undo(node, "sriov_vfs_off", pf=pf, what=f"{pf}: no VFs"))
    node.run((f"modprobe {vf_mod} 2>/dev/null; " if vf_mod else "") + numvfs_command(pf, count))

    found = []

    def missing():
        r = node.run(vf_netdevs_command([(pf, i) for i in range(count)]))
        found[:] = [x.strip() for x in r.stdout.splitlines() if x.strip()]
        return None if len(found) == count else f"VF netdevs so far: {found}"
    wait_until(missing, timeout=timeout, interval=0.5, error=SriovError,
               what=f"{node.name}: {count} VF netdev(s) of {pf}")
    return list(found)


def vf_netdevs_command(vfs):
    """Shell text printing the netdev of each (PF, VF index) of ``vfs``, one per
    line, in order (nothing for a VF not bound yet)."""
    return "; ".join(f"ls /sys/class/net/{qif(pf)}/device/virtfn{int(i)}/net 2>/dev/null | "
                     "head -n 1" for pf, i in vfs) + "; true"


def vf_command(pf, index, mac=None, trust=None, spoofchk=None):
    """``ip link set <pf> vf N ...``: what the PF lets a VF do."""
    parts = [f"ip link set dev {qif(pf)} vf {int(index)}"]
    if mac is not None:
        if not isinstance(mac, str) or not MAC.fullmatch(mac):
            raise SriovError(f"not a MAC address: {mac!r}")
        parts.append(f"mac {mac}")
    if trust is not None:
        parts.append(f"trust {'on' if trust else 'off'}")
    if spoofchk is not None:
        parts.append(f"spoofchk {'on' if spoofchk else 'off'}")
    return " ".join(parts)


def vf_mac(host_index, pf_index, vf_index=0):
    """A locally administered MAC per (host, PF, VF): stable across runs."""
    return f"02:4c:56:{host_index:02x}:{pf_index:02x}:{vf_index:02x}"
