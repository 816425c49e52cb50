"""NVIDIA/Mellanox ConnectX (mlx5): RoCE LAG. Enslaving both PFs of one card
to a bond or team makes the driver replace the per-PF devices (mlx5_0,
mlx5_1) with one ``mlx5_bond_<n>``; laghil adds nothing and waits for it.
Modes from drivers/net/ethernet/mellanox/mlx5/core/lag/lag.c
(mlx5_lag_netdev_event: tx types active-backup and hash; team's runners map
to the same); each QP's LAG port is read with mlx5dv_query_qp_lag_port."""

from .base import RdmaProvider

PROVIDER = RdmaProvider(
    name="mlx5", capability="mlx5", aggregate=r"mlx5_bond_\d+", example="mlx5_bond_0",
    source="mlx5 lag.c",
    lag_modes={"bond": ("active-backup", "balance-xor", "802.3ad"),
               "team": ("activebackup", "loadbalance", "lacp")},
    max_members=2, lag_port_sampling=True)
