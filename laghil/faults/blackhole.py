"""A RoCE v2 blackhole: every RoCE v2 packet (UDP 4791) arriving at a node's
netdev dropped by a tc ingress filter, for as long as the test says. Used as
the negative control of the RDMA probe (an outage past an RC QP's survival
bound must be reported as a lost connection).

    hole = RoceBlackhole(node, "lgbond0")
    hole.prepare(defer=defer)   # modules loaded and the ingress qdisc added, undo first
    t_on = hole.on()            # the one timed step: add the filter
    hole.off()

Under emulation the first load of the tc modules takes seconds (3 s seen in CI):
``prepare`` does it before the traffic, so that ``on`` lands where it is meant.
"""

import time

from ..journal import node_undo
from ..names import qif

ROCE_V2_PORT = 4791


class RoceBlackhole:
    def __init__(self, node, dev):
        self.node, self.dev = node, dev
        self._dev = qif(dev)
        self.t_on = self.t_off = None

    def prepare(self, *, defer):
        defer(node_undo(self.node, "qdisc_delete", name=self.dev, parent="ingress",
                        what=f"{self.dev}: RoCE blackhole removed"))
        self.node.run("modprobe -q cls_u32 2>/dev/null; modprobe -q act_gact 2>/dev/null; "
                      f"tc qdisc add dev {self._dev} ingress")
        return self

    def on(self):
        """Drop RoCE v2 from now on; returns the instant (controller clock, after the add)."""
        self.node.run(f"tc filter add dev {self._dev} parent ffff: protocol ip prio 1 u32 "
                      f"match ip protocol 17 0xff match ip dport {ROCE_V2_PORT} 0xffff "
                      "action drop")
        self.t_on = time.time()
        return self.t_on

    def off(self):
        self.node.run(f"tc filter del dev {self._dev} parent ffff: prio 1")
        self.t_off = time.time()
        return self.t_off
