"""SR-IOV VF LAG on mlx5 (switchdev): the set-up order, its refusals, and the
parsers of what the driver shows (devlink e-switch JSON, the LAG debugfs files,
the kernel log, the per-port physical counters).

The order that activates VF LAG (NVIDIA's documentation, Mellanox ovs-tests'
``config()``; the kernel refuses other orders): VFs created on both PFs, the VFs
unbound, ``devlink dev eswitch set pci/<pf> mode switchdev`` on both PFs, the
bond over exactly the two PFs (active-backup, balance-xor or 802.3ad) in the
initial network namespace, the LAG active, then the VFs bound again. Every
command builder here checks its input; :func:`plan_vf_lag` refuses what the
driver would refuse, with the driver's own words, before any command runs.
"""

import re
from dataclasses import dataclass, field

from ..errors import LaghilError
from ..names import check_name, qif
from ..parsing import parser

# what the mlx5 LAG accepts (lag.c: TX types active-backup and hash)
VF_LAG_MODES = ("active-backup", "balance-xor", "802.3ad")
MAX_VFS = 64                         # "PF is configured with more than 64 VFs"
PCI = re.compile(r"^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$")
DEBUGFS_FILES = ("state", "type", "port_sel_mode", "flags", "mapping", "members")

# the driver's own messages (drivers/net/ethernet/mellanox/mlx5/core/lag/lag.c)
MSG_TX_TYPE = "Can't activate LAG offload, TX type isn't supported"
MSG_TOO_MANY_VFS = "PF is configured with more than 64 VFs"
MSG_VFS_BOUND = "Make sure all VFs are unbound prior to VF LAG activation or deactivation"


class VfLagError(LaghilError):
    pass


class VfLagRefused(VfLagError):
    """A VF LAG set-up the driver would refuse, refused before any command."""


def check_pci(value, what="PCI address"):
    if not isinstance(value, str) or not PCI.fullmatch(value):
        raise VfLagError(f"{what} {value!r} is not a PCI address (dddd:bb:dd.f, lower case)")
    return value


# ---- the plan -------------------------------------------------------------------------
@dataclass(frozen=True)
class VfLagPlan:
    node: str
    pfs: tuple                 # (netdev, pci) of both PFs, in bond order
    numvfs: int
    mode: str
    netns: str | None = None   # where the bond is made (None: the initial namespace)
    steps: list = field(default_factory=list, compare=False)


def plan_vf_lag(node, pfs, numvfs, mode, netns=None):
    """The commands that activate VF LAG over ``pfs`` [(netdev, pci), (netdev,
    pci)] with ``numvfs`` VFs each, in order, as (what, command) pairs; the bond
    itself (step "bond") is made by the bond driver with its undo. VfLagRefused
    names the rule and quotes the driver for what the kernel would refuse."""
    if len(pfs) != 2:
        raise VfLagRefused(f"{node}: VF LAG is over exactly two PFs of one card, not {len(pfs)}")
    for dev, pci in pfs:
        qif(dev)
        check_pci(pci, f"{node}: {dev}'s PCI address")
    if mode not in VF_LAG_MODES:
        raise VfLagRefused(f"{node}: a {mode} bond cannot carry VF LAG (the driver: "
                           f"\"{MSG_TX_TYPE}\"); modes: {', '.join(VF_LAG_MODES)}")
    if not 1 <= int(numvfs) <= MAX_VFS:
        raise VfLagRefused(f"{node}: {numvfs} VFs per PF: 1..{MAX_VFS} (the driver: "
                           f"\"{MSG_TOO_MANY_VFS}\")")
    if netns is not None:
        raise VfLagRefused(f"{node}: the bond must be in the initial network namespace, not "
                           f"{check_name(netns, 'netns')!r} (mlx5 tracks LAG uppers there only)")
    steps = []
    for dev, _pci in pfs:
        steps.append((f"{int(numvfs)} VFs on {dev}", numvfs_command(dev, numvfs)))
    for dev, _pci in pfs:
        steps.append((f"{dev}'s VFs unbound", vf_driver_command(dev, "unbind")))
    for dev, pci in pfs:
        steps.append((f"{dev} e-switch switchdev", eswitch_mode_command(pci, "switchdev")))
    steps.append(("bond", None))
    steps.append(("LAG active", lag_state_command(pfs[0][1])))
    for dev, _pci in pfs:
        steps.append((f"{dev}'s VFs bound", vf_driver_command(dev, "bind")))
    return VfLagPlan(node, tuple(pfs), int(numvfs), mode, netns, steps)


def undo_actions(pfs):
    """What puts both PFs back, in order, as journal actions (laghil.undo_actions):
    VFs removed, then the e-switch back to legacy (the bond is the bond driver's
    undo). Idempotent."""
    out = [("sriov_vfs_off", {"pf": dev}) for dev, _ in pfs]
    out += [("eswitch_legacy", {"pci": pci}) for _, pci in pfs]
    return out


# ---- command builders -----------------------------------------------------------------
def numvfs_command(pf, n):
    """``n`` VFs on ``pf`` (0 first: the kernel refuses a change from one
    non-zero count to another)."""
    d = f"/sys/class/net/{qif(pf)}/device/sriov_numvfs"
    n = int(n)
    if not 0 <= n <= MAX_VFS:
        raise VfLagError(f"{pf}: {n} VFs (0..{MAX_VFS})")
    return f"echo 0 > {d}" + (f" && echo {n} > {d}" if n else "")


def vf_driver_command(pf, action):
    """Unbind (or bind again) every VF of ``pf`` from its driver."""
    if action not in ("bind", "unbind"):
        raise VfLagError(f"VF driver action {action!r} (bind or unbind)")
    d = f"/sys/class/net/{qif(pf)}/device"
    if action == "unbind":
        return (f"for v in {d}/virtfn*; do [ -e \"$v/driver\" ] || continue; "
                "b=$(basename \"$(readlink -f \"$v\")\"); echo \"$b\" > \"$v/driver/unbind\"; done")
    return (f"for v in {d}/virtfn*; do [ -e \"$v\" ] || continue; [ -e \"$v/driver\" ] && continue; "
            "b=$(basename \"$(readlink -f \"$v\")\"); echo \"$b\" > /sys/bus/pci/drivers_probe; done")


def eswitch_mode_command(pci, mode):
    if mode not in ("legacy", "switchdev"):
        raise VfLagError(f"e-switch mode {mode!r} (legacy or switchdev)")
    return f"devlink dev eswitch set pci/{check_pci(pci)} mode {mode}"


def eswitch_show_command(pci):
    return f"devlink -j dev eswitch show pci/{check_pci(pci)}"


def lag_state_command(pci):
    """Every LAG debugfs file of PF ``pci``, one round trip (a file the driver
    refuses while the LAG is inactive answers with the read error)."""
    d = f"/sys/kernel/debug/mlx5/{check_pci(pci)}/lag"
    return "; ".join(f"echo @@{f}; cat {d}/{f} 2>&1" for f in DEBUGFS_FILES) + "; true"


def ports_command():
    return "devlink -j port show"


def phy_counters_command(pf):
    return f"ethtool -S {qif(pf)}"


# ---- parsers --------------------------------------------------------------------------
@parser("devlink -j dev eswitch show")
def parse_eswitch(text):
    """``devlink -j dev eswitch show pci/X`` -> {"pci/X": {"mode", "inline-mode",
    "encap-mode"}} (iproute2 prints one object per device under "dev")."""
    import json
    d = json.loads(text)
    devs = d["dev"]
    if not isinstance(devs, dict):
        raise VfLagError(f"devlink: 'dev' is a {type(devs).__name__}, not an object")
    return {k: {a: v.get(a) for a in ("mode", "inline-mode", "encap-mode")}
            for k, v in devs.items()}


@dataclass(frozen=True)
class LagDebugfs:
    state: str                   # "active" | "disabled"
    type: str | None             # "roce" | "switchdev" | "multipath" | "multiport_eswitch"
    port_sel_mode: str | None    # "queue_affinity" | "hash" | "mpesw"
    flags: dict                  # {"shared_fdb": "on", "fdb_selection_mode": "native"}
    mapping: list                # queue affinity: [(virtual, physical)]; hash: [(port, port)]
    members: list                # PCI addresses of the member PFs

    @property
    def active(self):
        return self.state == "active"

    def active_ports(self):
        """The physical ports that carry traffic now (1-based)."""
        return sorted({p for _, p in self.mapping})


@parser("the mlx5 LAG debugfs files")
def parse_lag_debugfs(text):
    """Output of :func:`lag_state_command` -> LagDebugfs. A file the kernel
    refuses (EINVAL while the LAG is inactive: type, port_sel_mode, flags,
    mapping) reads as None / empty."""
    parts, cur = {}, None
    for line in text.splitlines():
        if line.startswith("@@") and line[2:] in DEBUGFS_FILES:
            cur = line[2:]
            parts[cur] = []
        elif cur is not None:
            parts[cur].append(line.strip())

    def value(name):
        lines = [x for x in parts.get(name, []) if x]
        if not lines or any("Invalid argument" in x or "No such file" in x for x in lines):
            return None
        return lines
    state = value("state")
    if state is None:
        raise VfLagError("no LAG debugfs 'state' (no mlx5 PF at that address, or debugfs "
                         "not mounted: mount -t debugfs none /sys/kernel/debug)")
    flags = {}
    for ln in value("flags") or []:
        k, _, v = ln.partition(":")
        flags[k.strip()] = v.strip()
    mapping = []
    for ln in value("mapping") or []:
        if ":" in ln:
            a, _, b = ln.partition(":")
            mapping.append((int(a), int(b)))
        else:
            mapping.append((int(ln), int(ln)))
    return LagDebugfs(state[0], (value("type") or [None])[0],
                      (value("port_sel_mode") or [None])[0], flags, mapping,
                      [check_pci(m) for m in value("members") or []])


_LOG = re.compile(r"^\[\s*(?P<t>\d+\.\d+)\]\s+(?:mlx5_core\s+(?P<pci>[0-9a-f:.]+):\s+)?(?P<msg>.*)$")


@dataclass(frozen=True)
class LagLogEvent:
    t: float
    pci: str | None
    kind: str          # "activated" "map" "modify" "single_fdb" "failed" "refused" "bond"
    detail: dict


@parser("the kernel log (mlx5 LAG)")
def parse_lag_log(text):
    """dmesg lines -> [LagLogEvent]: the LAG created (``shared_fdb:<n>
    mode:<m>``), each port map (``lag map active ports: 1, 2`` in hash mode,
    ``lag map: port 1:1 port 2:2`` or the older per-line form in queue
    affinity, printed again on every failover), single FDB, and the driver's
    refusals (``Failed to create LAG``, the TX type, VFs bound, too many VFs)."""
    out = []
    for line in text.splitlines():
        m = _LOG.match(line.strip())
        if not m:
            continue
        t, pci, msg = float(m["t"]), m["pci"], m["msg"].strip()
        if (a := re.match(r"shared_fdb:(\d) mode:(\w+)", msg)):
            out.append(LagLogEvent(t, pci, "activated", {"shared_fdb": a[1] == "1",
                                                           "mode": a[2]}))
        elif (a := re.match(r"lag map active ports: ([\d, ]+)$", msg)):
            out.append(LagLogEvent(t, pci, "map", {"ports": [int(x) for x in a[1].split(",")]}))
        elif (a := re.match(r"lag map:((?: port \d+:\d+)+)$", msg)):
            pairs = re.findall(r"port (\d+):(\d+)", a[1])
            out.append(LagLogEvent(t, pci, "map", {"ports": sorted({int(p) for _, p in pairs}),
                                                   "v2p": [(int(v), int(p)) for v, p in pairs]}))
        elif msg.startswith("modify lag map"):
            out.append(LagLogEvent(t, pci, "modify", {}))
        elif msg.startswith("Operation mode is single FDB"):
            out.append(LagLogEvent(t, pci, "single_fdb", {}))
        elif (a := re.match(r"Failed to create LAG \((-?\d+)\)", msg)):
            out.append(LagLogEvent(t, pci, "failed", {"err": int(a[1]), "text": msg}))
        elif any(s in msg for s in (MSG_TX_TYPE, MSG_VFS_BOUND, MSG_TOO_MANY_VFS,
                                    "Failed to activate VF LAG")):
            out.append(LagLogEvent(t, pci, "refused", {"text": msg}))
        elif (a := re.match(r"(\S+): \(slave (\S+)\): (.*)$", msg)):
            out.append(LagLogEvent(t, None, "bond", {"bond": a[1], "slave": a[2], "text": a[3]}))
    return out


PHY_COUNTERS = ("tx_packets_phy", "rx_packets_phy", "tx_bytes_phy", "rx_bytes_phy",
                "rx_discards_phy", "tx_discards_phy", "rx_vport_unicast_packets",
                "tx_vport_unicast_packets")


@parser("ethtool -S (mlx5 physical port counters)")
def parse_phy_counters(text):
    """``ethtool -S <pf>`` -> {counter: int} of the wire-level and vport
    counters (the ones that show which uplink carried a VF's traffic)."""
    out = {}
    for line in text.splitlines():
        k, sep, v = line.strip().partition(":")
        if sep and k in PHY_COUNTERS:
            out[k] = int(v.strip())
    if "tx_packets_phy" not in out or "rx_packets_phy" not in out:
        raise VfLagError("no tx_packets_phy / rx_packets_phy: not an mlx5 port's counters")
    return out


def uplink_shares(before, after, counter="tx_packets_phy"):
    """{pf: share of the ``counter`` delta} between two {pf: counters} reads:
    which uplink carried the traffic in between."""
    delta = {pf: after[pf][counter] - before[pf][counter] for pf in before}
    total = sum(delta.values())
    return {pf: (d / total if total else 0.0) for pf, d in delta.items()}


@parser("devlink -j port show")
def parse_devlink_ports(text):
    """``devlink -j port show`` -> [{"handle", "pci", "netdev", "flavour", "pfnum",
    "vfnum"}] (iproute2 prints one object per port handle under "port";
    ``flavour`` physical for an uplink, pcivf for a VF's representor)."""
    import json
    ports = json.loads(text)["port"]
    if not isinstance(ports, dict):
        raise VfLagError(f"devlink: 'port' is a {type(ports).__name__}, not an object")
    out = []
    for handle, p in ports.items():
        bus, _, rest = handle.partition("/")
        out.append({"handle": handle, "pci": rest.rpartition("/")[0] if bus == "pci" else None,
                    "netdev": p.get("netdev"), "flavour": p.get("flavour"),
                    "pfnum": p.get("pfnum"), "vfnum": p.get("vfnum")})
    return out


def vf_representors(ports, pci):
    """{vfnum: representor netdev} of the VFs of PF ``pci`` in switchdev mode."""
    return {p["vfnum"]: p["netdev"] for p in ports
            if p["pci"] == check_pci(pci) and p["flavour"] == "pcivf" and p["netdev"]}
