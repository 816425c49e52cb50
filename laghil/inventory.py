"""Inventory of a host: kernel, NIC driver/firmware, RDMA devices, bonding/team.

Parsers are pure functions of the tools' output; ``INVENTORY_COMMAND`` collects
everything in one round trip.
"""

import json

from .names import qif
from .parsing import parser


@parser('ethtool -i')
def parse_ethtool_i(text):
    """`ethtool -i <if>` -> {"driver", "version", "firmware-version", "bus-info", ...}."""
    info = {}
    for line in text.splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            info[k.strip()] = v.strip()
    return info


@parser('rdma -j dev show')
def parse_rdma_dev(text):
    """`rdma -j dev show` -> sorted device names."""
    text = text.strip()
    return sorted(d["ifname"] for d in json.loads(text)) if text else []


def inventory_command(ports):
    parts = ["echo @@kernel; uname -r",
             "echo @@bonding; (test -d /sys/module/bonding || modprobe -n -q bonding) && echo yes || echo no",
             "echo @@team; (test -d /sys/module/team || modprobe -n -q team) && command -v teamd >/dev/null && echo yes || echo no",
             "echo @@rdma; (command -v rdma >/dev/null && rdma -j dev show 2>/dev/null) || echo '[]'"]
    for p in ports:
        parts.append(f"echo @@ethtool:{p}; ethtool -i {qif(p)} 2>&1")
    return "; ".join(parts)


@parser('the node inventory')
def parse_inventory(text):
    """Output of inventory_command -> {"kernel", "bonding", "team", "rdma", "ports": {...}}."""
    sections, cur = {}, None
    for line in text.splitlines():
        if line.startswith("@@"):
            cur = line[2:].strip()
            sections[cur] = []
        elif cur:
            sections[cur].append(line)
    get = lambda k: "\n".join(sections.get(k, []))  # noqa: E731
    ports = {}
    for k in sections:
        if k.startswith("ethtool:"):
            info = parse_ethtool_i(get(k))
            ports[k.split(":", 1)[1]] = {
                "driver": info.get("driver", ""),
                "version": info.get("version", ""),
                "firmware": info.get("firmware-version", ""),
                "bus": info.get("bus-info", ""),
            }
    return {
        "kernel": get("kernel").strip(),
        "bonding": get("bonding").strip() == "yes",
        "team": get("team").strip() == "yes",
        "rdma": parse_rdma_dev(get("rdma")),
        "ports": ports,
    }


def read_inventory(rt):
    """{host: parse_inventory(...)} of every host of a running lab session, one
    round trip each; a host that cannot be read gets ``{"error": why}``. On a
    virtual rack each host also records the QEMU that emulates it (``qemu``:
    "10.0.2 (TCG)"), the rack's part of the platform."""
    qemu = None
    if getattr(rt, "rack", None) is not None:
        from .vlab.qemu import check_qemu
        try:
            qemu = ".".join(map(str, check_qemu())) + " (TCG)"
        except Exception as e:  # noqa: BLE001 - the inventory says what it could not read
            qemu = f"unknown: {e}"
    out = {}
    for h in rt.hosts:
        try:
            inv = parse_inventory(h.run(inventory_command(h.ports)).stdout)
        except Exception as e:  # noqa: BLE001
            inv = {"error": f"{type(e).__name__}: {e}"}
        if qemu:
            inv["qemu"] = qemu
        out[h.name] = inv
    return out
