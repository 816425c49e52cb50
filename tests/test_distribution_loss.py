"""Where a distribution probe's lost packets went (laghil.measure.distribution):
/proc/net/snmp's Udp counters parsed on this machine's capture (taken right
after a loopback socket that never read had 1991 datagrams dropped), and the
loss placed by the hosts' counters: in the receiving host's socket buffer,
in the sending host, or between the members (the LAG, the switch, the wire)."""

from pathlib import Path
from types import SimpleNamespace

import pytest

from laghil.errors import LaghilError
from laghil.measure.distribution import Distribution, parse_udp_snmp

CAP = Path(__file__).parent / "data" / "captures"


def test_udp_counters_of_proc_net_snmp():
    udp = parse_udp_snmp((CAP / "controller-proc-net-snmp.txt").read_text())
    assert udp["RcvbufErrors"] == 1991 and udp["InErrors"] == 1991
    assert udp["SndbufErrors"] == 0 and udp["InDatagrams"] > udp["RcvbufErrors"]
    assert "UdpLite" not in str(udp), "only the Udp: lines"
    with pytest.raises(LaghilError, match="no Udp: header"):
        parse_udp_snmp("Ip: Forwarding\nIp: 1\n")


def dist(sent, received, tx, rx=None, rcvbuf=0, sndbuf=0):
    flows = [{"tx_count": sent, "rx_count": received}]
    return Distribution(tx, sent, [(47501, 47000)], SimpleNamespace(flows=flows),
                        rx or {}, {"RcvbufErrors": rcvbuf, "InErrors": rcvbuf} if rx else {},
                        {"SndbufErrors": sndbuf})


@pytest.mark.parametrize("d,where", [
    (dist(7200, 7200, {"eth1": 3600, "eth2": 3610}, {"eth1": 3605, "eth2": 3600}),
     "nothing lost"),
    (dist(7200, 6900, {"eth1": 3600, "eth2": 3610}, {"eth1": 3605, "eth2": 3600}, rcvbuf=300),
     "lost in the receiving host's socket buffer"),
    (dist(7200, 6900, {"eth1": 3500, "eth2": 3400}, {"eth1": 3505, "eth2": 3400}),
     "lost in the sending host"),
    (dist(7200, 6900, {"eth1": 3600, "eth2": 3610}, {"eth1": 3605, "eth2": 3300}),
     "lost between the sender's members and the receiver's"),
    (dist(7200, 6900, {"eth1": 3600, "eth2": 3610}, {"eth1": 3605, "eth2": 3600}),
     "not placed by these counters"),
])
def test_the_hosts_counters_place_a_loss(d, where):
    text = d.where_lost()
    assert text.startswith(where), text
    assert f"probe sent {d.sent}, received {d.received()}" in text
