"""Inventory of a host: kernel, NIC driver/firmware, RDMA devices, bonding/team.

Parsers are pure functions of the tools' output; ``INVENTORY_COMMAND`` collects
everything in one round trip.
"""

import json
import re

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


@parser('/etc/os-release')
def parse_os_release(text):
    """/etc/os-release -> {"name", "id", "version_id"} (PRETTY_NAME, ID, VERSION_ID)."""
    kv = {}
    for line in text.splitlines():
        k, sep, v = line.partition("=")
        if sep and k.strip().isupper():
            kv[k.strip()] = v.strip().strip('"').strip("'")
    return {"name": kv.get("PRETTY_NAME") or kv.get("NAME", ""), "id": kv.get("ID", ""),
            "version_id": kv.get("VERSION_ID", "")}


@parser('devlink -j dev info')
def parse_devlink_info(text):
    """`devlink -j dev info` -> {handle: {"driver", "serial", "board_id", "fixed",
    "running", "stored"}}: every version the driver reports, by type; {} when no
    device registers with devlink (igb and virtio_net do not)."""
    text = text.strip()
    if not text:
        return {}
    d = json.loads(text).get("info") or {}
    out = {}
    for handle, info in d.items():
        v = info.get("versions") or {}
        fixed = dict(v.get("fixed") or {})
        out[handle] = {"driver": info.get("driver", ""),
                       "serial": info.get("serial_number", ""),
                       "board_id": fixed.get("board.id") or fixed.get("fw.psid", ""),
                       "fixed": fixed, "running": dict(v.get("running") or {}),
                       "stored": dict(v.get("stored") or {})}
    return out


PCI_FIELDS = ("vendor", "device", "subsystem_vendor", "subsystem_device")


@parser('the PCI ids of a port')
def parse_pci_ids(text):
    """`key=0x8086` lines (a port's /sys/class/net/P/device/{vendor,device,
    subsystem_vendor,subsystem_device}) -> {key: "8086"}; a port with no PCI
    function (a VLAN, a veth) has none."""
    out = {}
    for line in text.splitlines():
        k, sep, v = line.partition("=")
        v = v.strip()
        if sep and k.strip() in PCI_FIELDS and v.startswith("0x"):
            out[k.strip()] = v[2:].lower()
    return out


# the tools a certifier needs the versions of: (name, command, the version in its output)
TOOL_VERSIONS = (
    ("iproute2", "ip -V", r"iproute2-(\d[\w.]*)|ip utility, (\d[\w.]*)"),
    ("teamd", "teamd --version", r"teamd\s+([\w.]+)"),
    ("rdma-core", "dpkg-query -W -f='${Version}\\n' rdma-core || rpm -q --qf "
                  "'%{VERSION}\\n' rdma-core", r"^\s*([0-9][\w.+~-]*)\s*$"),
    ("perftest", "ib_send_bw --version", r"Version:\s*([\w.]+)"),
)


def parse_tool_versions(sections):
    """{tool: its output} -> {tool: version, or None when not installed or not said}."""
    out = {}
    for name, _, pattern in TOOL_VERSIONS:
        m = re.search(pattern, sections.get(name, ""), re.M)
        out[name] = next((g for g in m.groups() if g), None) if m else None
    return out


def inventory_command(ports):
    parts = ["echo @@kernel; uname -r",
             "echo @@os; cat /etc/os-release 2>/dev/null",
             "echo @@devlink; devlink -j dev info 2>/dev/null || true",
             "echo @@bonding; (test -d /sys/module/bonding || modprobe -n -q bonding) && echo yes || echo no",
             "echo @@team; (test -d /sys/module/team || modprobe -n -q team) && command -v teamd >/dev/null && echo yes || echo no",
             "echo @@rdma; (command -v rdma >/dev/null && rdma -j dev show 2>/dev/null) || echo '[]'"]
    parts += [f"echo @@tool:{name}; ({cmd}) 2>&1 | head -3" for name, cmd, _ in TOOL_VERSIONS]
    for p in ports:
        q = qif(p)
        parts.append(f"echo @@ethtool:{p}; ethtool -i {q} 2>&1")
        parts.append(f"echo @@pci:{p}; for f in {' '.join(PCI_FIELDS)}; do "
                     f"echo $f=$(cat /sys/class/net/{q}/device/$f 2>/dev/null); done")
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
    devlink = parse_devlink_info(get("devlink")) if "devlink" in sections else {}
    for k in sections:
        if k.startswith("ethtool:"):
            name = k.split(":", 1)[1]
            info = parse_ethtool_i(get(k))
            port = ports[name] = {
                "driver": info.get("driver", ""),
                "version": info.get("version", ""),
                "firmware": info.get("firmware-version", ""),
                "bus": info.get("bus-info", ""),
            }
            port.update(parse_pci_ids(get(f"pci:{name}")))
            dl = devlink.get(f"pci/{port['bus']}") if port["bus"] else None
            if dl:
                port["devlink"] = dl
    out = {
        "kernel": get("kernel").strip(),
        "bonding": get("bonding").strip() == "yes",
        "team": get("team").strip() == "yes",
        "rdma": parse_rdma_dev(get("rdma")),
        "ports": ports,
    }
    if "os" in sections:
        out["os"] = parse_os_release(get("os"))
    tools = {k.split(":", 1)[1]: get(k) for k in sections if k.startswith("tool:")}
    if tools:
        out["tools"] = parse_tool_versions(tools)
    return out


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
    out.update(read_switches(rt))
    return out


def read_switches(rt):
    """{switch: {"switch": {"platform", "version", "lag_limit", "error"}}} of every
    switch of the lab, through its platform driver (a NOS has no shell): the
    platform and NOS version a certifier and a profile's platform record. A
    switch that cannot be read says why."""
    from .check import describe_switch
    out = {}
    for name in sorted(getattr(rt.lab, "switches", None) or {}):
        try:
            d = describe_switch(rt, name)
        except Exception as e:  # noqa: BLE001 - the inventory says what it could not read
            d = {"platform": rt.lab.switches[name].platform, "version": None,
                 "error": f"{type(e).__name__}: {e}"}
        out[name] = {"switch": {k: d.get(k) for k in ("platform", "version", "lag_limit",
                                                       "error") if d.get(k)}}
    return out


def switches_of(inventory):
    """{switch: {"platform", "version", ...}} of a run's inventory."""
    return {n: dict(inv["switch"]) for n, inv in sorted((inventory or {}).items())
            if isinstance(inv, dict) and isinstance(inv.get("switch"), dict)}
