"""Broadcom NetXtreme-C/E (bnxt_re, Broadcom's netxtreme-bnxt_en driver
package): RoCE LAG over the two PFs of one adapter presents one device
``bnxt_re_bond<n>`` (bnxt_re_create_lag takes the bond master and its two
slaves from the bonding driver's netdev_bonding_info: bonding only, not team;
Broadcom's bnxt_setupcc.sh: "-d RoCE Device Name (e.g. bnxt_re0,
bnxt_re_bond0)", "for bond, specify slave interfaces"). Which bond modes the
firmware takes is not in the sources laghil read: laghil refuses no mode and
waits for the device, naming it when it does not come."""

from .base import RdmaProvider

PROVIDER = RdmaProvider(
    name="bnxt_re", capability="bnxt_re", aggregate=r"bnxt_re_bond\d+",
    example="bnxt_re_bond0", source="bnxt_re (netxtreme-bnxt_en)",
    lag_modes={"bond": ("balance-rr", "active-backup", "balance-xor", "broadcast", "802.3ad",
                        "balance-tlb", "balance-alb"), "team": ()},
    max_members=2)
