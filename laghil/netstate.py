"""Snapshot of a node's network state, and the difference between two snapshots.

The session takes one snapshot of every node before the run and one after; any
difference (a link left behind, a member still enslaved, a MAC or MTU changed,
an address, an RDMA link or a netns left) fails the session. Parsing is pure:
``parse_snapshot(text)`` takes the output of ``SNAPSHOT_COMMAND``.
"""

import json

from .parsing import parser

SECTIONS = ("links", "addrs", "rdma", "netns")

# One command, one round trip: each section is JSON after a marker line.
SNAPSHOT_COMMAND = (
    "echo @@links; ip -d -j link show; "
    "echo @@addrs; ip -j addr show; "
    "echo @@rdma; (command -v rdma >/dev/null && rdma -j link show 2>/dev/null) || echo '[]'; "
    "echo @@netns; ip -j netns list 2>/dev/null || echo '[]'"
)


def _sections(text):
    out, cur, buf = {}, None, []
    for line in text.splitlines():
        if line.startswith("@@") and line[2:].strip() in SECTIONS:
            if cur:
                out[cur] = "\n".join(buf)
            cur, buf = line[2:].strip(), []
        else:
            buf.append(line)
    if cur:
        out[cur] = "\n".join(buf)
    return out


def _json(text):
    text = (text or "").strip()
    return json.loads(text) if text else []


def parse_links(data):
    """`ip -d -j link show` -> {ifname: {state fields that must survive a run}}."""
    links = {}
    for l in data:
        info = l.get("linkinfo") or {}
        links[l["ifname"]] = {
            "admin_up": "UP" in (l.get("flags") or []),
            "operstate": l.get("operstate"),
            "mac": l.get("address"),
            "mtu": l.get("mtu"),
            "master": l.get("master"),
            "kind": info.get("info_kind"),
            "slave_kind": info.get("info_slave_kind"),
            "link_netnsid": l.get("link_netnsid"),
        }
    return links


def parse_addrs(data):
    """`ip -j addr show` -> {ifname: sorted ["addr/prefix", ...]}. Addresses the
    kernel manages itself ("dynamic": SLAAC from a router advertisement, with a
    lifetime) are left out: they come and go with the network, not with the
    suite (the virtual rack's slirp advertises fec0::/64 whenever it likes)."""
    out = {}
    for l in data:
        addrs = sorted(f"{a['local']}/{a['prefixlen']}" for a in l.get("addr_info") or []
                       if "local" in a and not a.get("dynamic"))
        if addrs:
            out[l["ifname"]] = addrs
    return out


def parse_rdma_links(data):
    """`rdma -j link show` -> {"dev/port": {"state", "netdev"}}."""
    return {f"{l['ifname']}/{l['port']}": {"state": l.get("state"), "netdev": l.get("netdev")}
            for l in data}


def parse_netns(data):
    return sorted(n["name"] for n in data if "name" in n)


@parser('the network-state snapshot (ip -j link/addr, rdma, netns)')
def parse_snapshot(text):
    """Output of SNAPSHOT_COMMAND -> a plain, comparable dict."""
    s = _sections(text)
    return {
        "links": parse_links(_json(s.get("links"))),
        "addrs": parse_addrs(_json(s.get("addrs"))),
        "rdma": parse_rdma_links(_json(s.get("rdma"))),
        "netns": parse_netns(_json(s.get("netns"))),
    }


def diff_snapshots(before, after, node=""):
    """Human-readable differences between two parsed snapshots (empty list: same)."""
    pre = f"{node}: " if node else ""
    out = []
    for section in ("links", "addrs", "rdma", "lags"):
        b, a = before.get(section, {}), after.get(section, {})
        for name in sorted(set(b) | set(a)):
            if name not in a:
                out.append(f"{pre}{section} {name}: gone after the run (was {b[name]})")
            elif name not in b:
                out.append(f"{pre}{section} {name}: left behind by the run ({a[name]})")
            elif a[name] != b[name]:
                if isinstance(b[name], dict):
                    for k in sorted(set(b[name]) | set(a[name])):
                        if b[name].get(k) != a[name].get(k):
                            out.append(f"{pre}{section} {name}: {k} was {b[name].get(k)!r}, "
                                       f"now {a[name].get(k)!r}")
                else:
                    out.append(f"{pre}{section} {name}: was {b[name]}, now {a[name]}")
    for ns in sorted(set(before.get("netns", [])) ^ set(after.get("netns", []))):
        state = "left behind by the run" if ns in after.get("netns", []) else "gone after the run"
        out.append(f"{pre}netns {ns}: {state}")
    return out
