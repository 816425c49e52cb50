"""Soft-RoCE (rxe): the virtual rack's provider and every twin's stand-in for
a hardware one. laghil adds the device on the LAG itself
(``rdma link add rxe_<lag> type rxe netdev <lag>``, its removal journaled
first), so any bond mode or team runner carries it. Its known defect: an
active-backup bond's failover breaks QPs (measured, below)."""

import re

from ...journal import node_undo
from ...kevents import kernel_events
from ...names import check_name, q
from .base import KnownDefect, RdmaError, RdmaProvider

_SKB_FAIL = re.compile(r"rdma_rxe: qp#(\d+) Failed allocating skb")


def failed_qps(events):
    """{qp number: first instant} of rxe's "qp#N Failed allocating skb" kernel
    messages in ``events`` (KernelEvents): a packet rxe could not build, e.g.
    because the source GID was being re-added (the WQE then fails)."""
    out = {}
    for e in events:
        m = _SKB_FAIL.search(e.message)
        if m:
            out.setdefault(int(m.group(1)), e.t)
    return out


# Measured in the virtual rack (Debian 6.1 guest kernel): every active-slave change
# of an active-backup bond (NETDEV_BONDING_FAILOVER) makes ib_core delete and
# re-add the bond's GIDs; rxe looks the source GID up for every packet it builds
# (rxe_init_packet), so a WQE sent or resent in that window fails with
# IBV_WC_LOC_QP_OP_ERR ("qp#N Failed allocating skb" in the kernel log) and the
# QP goes to ERR, or (seen in CI) the requester stalls with its queue full.
# 802.3ad and balance-xor never raise that event, nor does team's activebackup
# runner. A hardware RoCE LAG keeps the path in the device and is judged
# without this allowance.
AB_DEFECT = ("rxe (Soft-RoCE, Linux 6.1): an active-backup failover re-adds the bond's "
             "GIDs; a WQE built in that window fails ('qp#N Failed allocating skb') and "
             "the QP errors out (IBV_WC_LOC_QP_OP_ERR) or stalls")


def ab_defect_evidence(res, sender):
    """AB_DEFECT's evidence in an RDMA probe result, or None: every QP that
    broke (error, not RTS, or messages missing) has rxe's skb failure in the
    sender's kernel log since the probe started."""
    broken = {f["tx_qp"]["qp_num"] for f in res.flows
              if f["lost"] or f["tx_qp"].get("errors") or f["tx_qp"].get("state") != "RTS"}
    if not broken:
        return None
    since = (res.sender.get("t_start") or 0.0) - 1.0
    failed = failed_qps(kernel_events(sender, since))
    if not broken <= set(failed):
        return None
    return (f"kernel: rxe 'Failed allocating skb' for QPs {sorted(failed)}, broken QPs "
            f"{sorted(broken)}: " + "; ".join(res.problems()))


def add(node, lag, defer):
    """Soft-RoCE on LAG netdev ``lag`` of ``node``, its removal journaled
    first; refused if a device of that name exists (not laghil's to delete)."""
    dev = f"rxe_{lag}"
    check_name(dev, "RDMA device")
    node.run("modprobe rdma_rxe 2>/dev/null; modprobe rdma_ucm 2>/dev/null; true", check=False)
    if node.run(f"rdma link show {q(dev)}/1 >/dev/null 2>&1", check=False).rc == 0:
        raise RdmaError(f"{node.name}: refusing to add RDMA device {dev}: an RDMA link of that "
                        "name already exists and laghil did not make it")
    defer(node_undo(node, "rdma_link_delete", dev=dev, what=f"delete RDMA device {dev}"))
    node.run(f"rdma link add {q(dev)} type rxe netdev {q(lag)}")
    return dev


PROVIDER = RdmaProvider(
    name="rxe", capability="rxe", aggregate=r"rxe_{lag}", example="rxe_lgbond0",
    source="Soft-RoCE, added by laghil", add=add,
    known_defects=(KnownDefect(
        AB_DEFECT, applies=lambda kind, mode: kind == "bond" and mode == "active-backup",
        evidence=ab_defect_evidence),))
