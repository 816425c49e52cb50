"""The bonding driver's transmit hash, as the kernel computes it (an oracle).

``member_index(policy, ...)`` is the index into the bond's usable-slave array that
a packet takes in balance-xor, 802.3ad, and balance-tlb/alb with tlb_dynamic_lb=0
(drivers/net/bonding/bond_main.c, kernel 6.1: ``bond_xmit_hash`` then
``slaves->arr[hash % count]``). The array holds the usable members in enslave
order. From it the suites predict how many packets each member must carry for a
set of flows (docs/measurement.md item 7: "the share each member should get from the
xmit_hash_policy") and which flows must not notice the loss of another member.

Byte order follows the kernel on a little-endian host (x86_64): addresses and
ports are network-order bytes read as a native (little-endian) u32.
"""

import ipaddress

POLICIES = ("layer2", "layer2+3", "layer3+4")
ETH_P_IP = 0x0800
_M32 = 0xFFFFFFFF


def _mac_last(mac):
    return int(str(mac).split(":")[-1], 16)


def _le32(b):
    return int.from_bytes(b, "little")


def eth_hash(src_mac, dst_mac, ethertype=ETH_P_IP):
    """bond_eth_hash: h_dest[5] ^ h_source[5] ^ h_proto."""
    return _mac_last(dst_mac) ^ _mac_last(src_mac) ^ ethertype


def _ip_hash(h, src_ip, dst_ip, layer34):
    h ^= _le32(ipaddress.IPv4Address(dst_ip).packed) ^ _le32(ipaddress.IPv4Address(src_ip).packed)
    h &= _M32
    h ^= h >> 16
    h ^= h >> 8
    return h >> 1 if layer34 else h


def xmit_hash(policy, src_mac, dst_mac, src_ip=None, dst_ip=None, sport=None, dport=None):
    """The u32 hash of an IPv4 TCP/UDP packet under ``policy``."""
    if policy == "layer2":
        return eth_hash(src_mac, dst_mac)
    if policy == "layer2+3":
        return _ip_hash(eth_hash(src_mac, dst_mac), src_ip, dst_ip, False)
    if policy == "layer3+4":
        ports = _le32(int(sport).to_bytes(2, "big") + int(dport).to_bytes(2, "big"))
        return _ip_hash(ports, src_ip, dst_ip, True)
    raise ValueError(f"xmit hash policy {policy!r} has no oracle (have: {', '.join(POLICIES)})")


def member_index(policy, count, **packet):
    if count < 1:
        raise ValueError("no usable member")
    return xmit_hash(policy, **packet) % count


def predict(policy, members, flows, src_mac, dst_mac, src_ip, dst_ip):
    """{member: [flow indexes]} for UDP/TCP ``flows`` [(sport, dport)] over ``members``
    (the usable members in enslave order)."""
    out = {m: [] for m in members}
    for i, (sport, dport) in enumerate(flows):
        k = member_index(policy, len(members), src_mac=src_mac, dst_mac=dst_mac,
                         src_ip=src_ip, dst_ip=dst_ip, sport=sport, dport=dport)
        out[members[k]].append(i)
    return out


def telling_src_base(policy, members, n_flows, dport_base, packet, want=0.75, search=(501, 3000)):
    """A source-port base for ``n_flows`` consecutive flows (sport base+i ->
    dport_base+i) whose predicted split is uneven but uses every member, the
    largest share closest to ``want``: a split that a round-robin or a wrong hash
    would not produce by accident, so that matching it confirms the hash."""
    best, best_err = None, None
    for off in range(search[0], search[1], 2):
        flows = [(dport_base + off + i, dport_base + i) for i in range(n_flows)]
        placed = predict(policy, members, flows, **packet)
        counts = [len(v) for v in placed.values()]
        if min(counts) == 0:
            continue
        err = abs(max(counts) / n_flows - want)
        if best_err is None or err < best_err:
            best, best_err = dport_base + off, err
        if err == 0:
            break
    return best


def spread_client_ports(policy, members, dports, packet, sport_from=40000, limit=4096):
    """A source port per destination port such that flow i lands on member
    i % len(members): flows a LAG can carry at its full aggregate. None when the
    policy cannot place them so (layer2: one member for every flow to one peer)."""
    out = []
    for i, dport in enumerate(dports):
        want = i % len(members)
        for sport in range(sport_from, sport_from + limit):
            if sport in out:
                continue
            if member_index(policy, len(members), sport=sport, dport=dport, **packet) == want:
                out.append(sport)
                break
        else:
            return None
    return out
