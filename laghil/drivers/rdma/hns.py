"""HiSilicon (hns): RoCE bonding (linux-rdma for-next, "RDMA/hns: Support
RoCE bonding", v3 2025-11-12, drivers/infiniband/hw/hns/hns_roce_bond.c).
A bond ibdev ``hns_bond_*`` replaces the PFs' ``hns_*`` devices when:
- the bond mode is 1 (active-backup), 2 (balance-xor) or 4 (802.3ad)
  (is_bond_setting_supported: tx type active-backup or hash);
- a hash mode's hash is at most layer2+3 (hash_type <= NETDEV_LAG_HASH_L23:
  layer2, layer3+4, layer2+3; not the encap or vlan+srcmac policies); a
  team's hash is "unknown" to the kernel, so only its activebackup runner;
- every member is a PF of one card (same bus number), 2 up to
  ROCE_BOND_FUNC_MAX (4) of them;
- no member has VFs (is_dev_bond_supported: is_vf or pci_num_vf > 0)."""

from .base import RdmaProvider

PROVIDER = RdmaProvider(
    name="hns", capability="hns", aggregate=r"hns_bond_\d+", example="hns_bond_0",
    source="hns_roce_bond.c",
    lag_modes={"bond": ("active-backup", "balance-xor", "802.3ad"),
               "team": ("activebackup",)},
    bond_hashes=("layer2", "layer3+4", "layer2+3"), max_members=4, refuses_with_vfs=True)
