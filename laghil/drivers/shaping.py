"""tbf shaping of a port's egress: the virtual rack's ground truth for throughput."""

from ..journal import node_undo
from ..names import qif
from ..undo_actions import qdisc_delete


def shape(node, port, rate_mbit, *, defer, burst_kb=32, latency_ms=50):
    """Limit ``port``'s egress to ``rate_mbit`` with tbf; the undo (back to the
    default qdisc) is registered first."""
    defer(node_undo(node, "qdisc_delete", name=port, parent="root", what=f"{port} unshaped"))
    node.run(f"tc qdisc replace dev {qif(port)} root tbf rate {float(rate_mbit)}mbit "
             f"burst {int(burst_kb)}kb latency {int(latency_ms)}ms")


def unshape_command(port):
    return qdisc_delete(port, "root")


def unshape(node, port):
    node.run(unshape_command(port))
