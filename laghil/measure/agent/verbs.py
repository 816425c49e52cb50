"""The verbs plumbing of rdma_agent.py (uploaded beside it): pyverbs imported
lazily (the agent imports without it), bounded rdma_cm events, RC and UD QPs
and their states, error completions folded into counts."""

import signal
import time

CONNECT_S = 20.0              # per connection, both sides
UD_QKEY = 0x1A6B11            # the Q_Key both sides' UD QPs use

WC_STATUS = {
    0: "SUCCESS", 1: "LOC_LEN_ERR", 2: "LOC_QP_OP_ERR", 3: "LOC_EEC_OP_ERR",
    4: "LOC_PROT_ERR", 5: "WR_FLUSH_ERR", 6: "MW_BIND_ERR", 7: "BAD_RESP_ERR",
    8: "LOC_ACCESS_ERR", 9: "REM_INV_REQ_ERR", 10: "REM_ACCESS_ERR", 11: "REM_OP_ERR",
    12: "RETRY_EXC_ERR", 13: "RNR_RETRY_EXC_ERR", 14: "LOC_RDD_VIOL_ERR",
    15: "REM_INV_RD_REQ_ERR", 16: "REM_ABORT_ERR", 17: "INV_EECN_ERR",
    18: "INV_EEC_STATE_ERR", 19: "FATAL_ERR", 20: "RESP_TIMEOUT_ERR", 21: "GENERAL_ERR",
}
QP_STATE = {0: "RESET", 1: "INIT", 2: "RTR", 3: "RTS", 4: "SQD", 5: "SQE", 6: "ERR", 7: "UNKNOWN"}


class Deadline(Exception):
    """A blocking rdma_cm call outlived its bound (SIGALRM)."""


def wc_error(counts, wc, t):
    """Fold an error completion into ``counts`` {status: {...}}."""
    e = counts.setdefault(wc.status, {"status": wc.status,
                                      "name": WC_STATUS.get(wc.status, str(wc.status)),
                                      "t": t, "count": 0, "vendor_err": wc.vendor_err})
    e["count"] += 1


class _Verbs:
    """pyverbs imported lazily (so that the module imports without it)."""

    def __init__(self):
        import pyverbs.cm_enums as ce
        import pyverbs.enums as e
        from pyverbs.cmid import CMID, AddrInfo, CMEvent, CMEventChannel, ConnParam
        from pyverbs.cq import CQ
        from pyverbs.mr import MR
        from pyverbs.qp import QP, QPAttr, QPCap, QPInitAttr
        from pyverbs.wr import SGE, RecvWR, SendWR
        self.ce, self.e = ce, e
        self.CMID, self.AddrInfo, self.CMEvent = CMID, AddrInfo, CMEvent
        self.CMEventChannel, self.ConnParam = CMEventChannel, ConnParam
        self.CQ, self.MR, self.QP, self.QPAttr = CQ, MR, QP, QPAttr
        self.QPCap, self.QPInitAttr = QPCap, QPInitAttr
        self.SGE, self.RecvWR, self.SendWR = SGE, RecvWR, SendWR

    def event(self, channel, expect, what, limit_s=CONNECT_S):
        """The next CM event on ``channel`` (bounded); it must be ``expect``."""
        t0 = time.monotonic()
        signal.setitimer(signal.ITIMER_REAL, limit_s)
        try:
            ev = self.CMEvent(channel)
        except (Deadline, Exception) as ex:     # EINTR from the alarm surfaces either way
            if time.monotonic() - t0 >= limit_s * 0.99:
                raise Deadline(f"{what}: no rdma_cm event within {limit_s:g} s") from None
            raise RuntimeError(f"{what}: {ex}") from None
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        if ev.event_type != expect:
            name = ev.event_str()
            ev.ack_cm_event()
            raise RuntimeError(f"{what}: unexpected rdma_cm event {name}")
        return ev

    def qp(self, cmid, cq, send_wr, recv_wr):
        init = self.QPInitAttr(qp_type=self.e.IBV_QPT_RC, scq=cq, rcq=cq,
                               cap=self.QPCap(max_send_wr=send_wr, max_recv_wr=recv_wr,
                                              max_send_sge=1, max_recv_sge=1))
        return self.QP(cmid.pd, init, self.QPAttr())

    def ud_resources(self, device):
        """(context, PD) of RDMA device ``device`` (UD runs without rdma_cm)."""
        from pyverbs.device import Context
        from pyverbs.pd import PD
        ctx = Context(name=device)
        return ctx, PD(ctx)

    def ud_qp(self, pd, cq, send_wr, recv_wr, port=1):
        """A UD QP in RTS (pyverbs moves a UD QP through INIT/RTR/RTS when given
        its attributes: port, P_Key index 0, UD_QKEY)."""
        init = self.QPInitAttr(qp_type=self.e.IBV_QPT_UD, scq=cq, rcq=cq,
                               cap=self.QPCap(max_send_wr=send_wr, max_recv_wr=recv_wr,
                                              max_send_sge=1, max_recv_sge=1))
        attr = self.QPAttr(port_num=port)
        attr.qkey = UD_QKEY
        attr.pkey_index = 0
        return self.QP(pd, init, attr)

    def ud_ah(self, pd, remote_gid, sgid_index, port=1):
        from pyverbs.addr import AH, GID, AHAttr, GlobalRoute
        gr = GlobalRoute(dgid=GID(remote_gid), sgid_index=sgid_index)
        return AH(pd, attr=AHAttr(gr=gr, is_global=1, port_num=port))

    def to_rts(self, cmid, qp, retry_cnt=None, timeout=None):
        """INIT -> RTR -> RTS with the CM's attributes; ours for the requester's
        retry_cnt and local ACK timeout."""
        e = self.e
        for state in (e.IBV_QPS_INIT, e.IBV_QPS_RTR, e.IBV_QPS_RTS):
            attr, mask = cmid.init_qp_attr(state)
            if state == e.IBV_QPS_RTS:
                if retry_cnt is not None:
                    attr.retry_cnt = retry_cnt
                    mask |= e.IBV_QP_RETRY_CNT
                if timeout is not None:
                    attr.timeout = timeout
                    mask |= e.IBV_QP_TIMEOUT
            qp.modify(attr, mask)

    def qp_info(self, qp, ud=False):
        e = self.e
        try:
            if ud:      # no ACK timeout nor retries on UD
                attr, _ = qp.query(e.IBV_QP_STATE)
                return {"qp_num": qp.qp_num,
                        "state": QP_STATE.get(attr.qp_state, str(attr.qp_state))}
            attr, _ = qp.query(e.IBV_QP_STATE | e.IBV_QP_TIMEOUT | e.IBV_QP_RETRY_CNT)
            return {"qp_num": qp.qp_num, "state": QP_STATE.get(attr.qp_state, str(attr.qp_state)),
                    "retry_cnt": attr.retry_cnt, "timeout": attr.timeout}
        except Exception as ex:          # noqa: BLE001 - reported, not fatal
            return {"qp_num": qp.qp_num, "state": "UNKNOWN", "query_error": str(ex)}


def _on_alarm(_signum, _frame):
    raise Deadline()
