"""`laghil lab check`: is every node reachable, with its tools, and every cable lit?

What a node must have depends on its role (:func:`required_tools`): a host under
test needs every tool below; a Linux switch (the ``linux`` switch driver) only
iproute2; a switch on another platform (Onyx, EOS...) has a vendor CLI, not a
shell, so only its reachability is checked; a jump host (a node that others are
reached through and that no cable touches, ``jump3`` in labs/rack3.yaml) is a
gateway, not a node under test: reachability only.
"""

from concurrent.futures import ThreadPoolExecutor

from .errors import LaghilError
from .lab.model import LINUX_SWITCH_PLATFORMS
from .parsing import parser

# tool on the node -> Debian package that brings it
TOOLS = {
    "ip": "iproute2", "ethtool": "ethtool", "iperf3": "iperf3", "ib_write_bw": "perftest",
    "teamd": "libteam-utils", "rdma": "rdma-core", "python3": "python3",
    "bridge": "iproute2", "tcpdump": "tcpdump",
    "pyverbs": "python3-pyverbs",       # a module, not a command: probed by importing it
}
# tools that are Python modules of the node's /usr/bin/python3 (the RDMA probe's)
PY_MODULES = {"pyverbs": "pyverbs.cmid"}
# What laghil.drivers.switch.LinuxSwitch runs on a Linux switch: ip (LAGs, ports),
# bridge (VLANs, FDB), tcpdump (tagged frames on members, the switch LAG suite).
LINUX_SWITCH_TOOLS = ("ip", "bridge", "tcpdump")


def jump_hosts(lab):
    """Nodes named as another node's ``management.jump`` that no cable touches."""
    named = {spec.management.jump for spec in [*lab.hosts.values(), *lab.switches.values()]
             if spec.management.jump}
    cabled = {ref.node for c in lab.cables for ref in c.refs}
    return named - cabled


def node_role(lab, name):
    """"host", "switch" or "jump" (a gateway to the rack, not under test)."""
    if name in jump_hosts(lab):
        return "jump"
    return "switch" if name in lab.switches else "host"


def required_tools(lab, name):
    """The tools (keys of TOOLS) node ``name`` must have, by its role."""
    role = node_role(lab, name)
    if role == "host":
        return tuple(TOOLS)
    if role == "switch" and lab.switches[name].platform in LINUX_SWITCH_PLATFORMS:
        return LINUX_SWITCH_TOOLS
    return ()


@parser('command -v (tools)')
def parse_tools(text, tools=tuple(TOOLS)):
    """Output of ``command -v`` probes ("tool yes|no" lines) -> {tool: bool} for ``tools``."""
    found = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] in tools:
            found[parts[0]] = parts[1] == "yes"
    return {t: found.get(t, False) for t in tools}


def _probe(t):
    if t in PY_MODULES:     # same shape: "command -v <tool>" first, then the import
        return (f"command -v {t} >/dev/null || /usr/bin/python3 -c 'import {PY_MODULES[t]}' "
                f"2>/dev/null && echo {t} yes || echo {t} no")
    return f"command -v {t} >/dev/null && echo {t} yes || echo {t} no"


def tools_command(tools):
    return "; ".join(_probe(t) for t in tools)


TOOLS_COMMAND = tools_command(TOOLS)


def check_node(node, tools=tuple(TOOLS), role=None):
    """{"node", "role", "reachable", "error", "tools": {tool: bool}} for the ``tools`` required."""
    row = {"node": node.name, "role": role or node.role, "reachable": False, "error": "",
           "tools": {}}
    try:
        if tools:
            row["tools"] = parse_tools(node.run(tools_command(tools), check=False).stdout, tools)
        else:
            node.session.connect()
        row["reachable"] = True
    except LaghilError as e:
        row["error"] = str(e)
    return row


def describe_switch(rt, name):
    """The switch reached through its platform driver: {"platform", "version",
    "lag_limit", "error"}."""
    from .drivers.switch import switch_driver
    platform = rt.lab.switches[name].platform
    try:
        d = dict(switch_driver(rt.node(name)).describe())
        d["error"] = ""
    except LaghilError as e:
        d = {"platform": platform, "version": None, "lag_limit": None,
             "error": f"through its {platform} driver: {e}"}
    return d


def check_lab(rt):
    """Check every node and cable of a LabRuntime; returns (node_rows, cable_rows, ok)."""
    nodes = rt.ssh_nodes
    with ThreadPoolExecutor(max_workers=max(1, len(nodes))) as ex:
        node_rows = list(ex.map(
            lambda n: check_node(n, required_tools(rt.lab, n.name), node_role(rt.lab, n.name)),
            nodes))
    reachable = {r["node"] for r in node_rows if r["reachable"]}
    for r in node_rows:
        if r["node"] in rt.lab.switches and r["reachable"]:
            r["switch"] = describe_switch(rt, r["node"])
    cable_rows = []
    for c in rt.lab.cables:
        ends = [e.split(":", 1) for e in c.ends]
        row = {"cable": c.name, "ends": list(c.ends), "carrier": {}, "error": ""}
        for node, port in ends:
            if node not in reachable:
                row["carrier"][f"{node}:{port}"] = None
                continue
            try:
                row["carrier"][f"{node}:{port}"] = rt.node(node).carrier(port)
            except LaghilError as e:
                row["error"] = str(e)
                row["carrier"][f"{node}:{port}"] = None
        cable_rows.append(row)
    ok = (all(r["reachable"] and all(r["tools"].values()) for r in node_rows)
          and not any(r.get("switch", {}).get("error") for r in node_rows)
          and all(v is True for r in cable_rows for v in r["carrier"].values()))
    return node_rows, cable_rows, ok


def format_check(node_rows, cable_rows):
    tools = list(TOOLS)
    lines = []
    head = ["node", "role", "ssh"] + tools
    rows = []
    for r in node_rows:
        cells = [r["node"], r["role"], "ok" if r["reachable"] else "FAIL"]
        for t in tools:
            if not r["reachable"]:
                cells.append("-")
            elif t not in r["tools"]:
                cells.append("n/a")     # not needed in this node's role
            else:
                cells.append("ok" if r["tools"][t] else f"MISSING ({TOOLS[t]})")
        rows.append(cells)
    lines += _table(head, rows)
    for r in node_rows:
        if r["error"]:
            lines.append(f"  {r['node']}: {r['error']}")
    for r in node_rows:
        sw = r.get("switch")
        if sw:
            lines.append(f"  {r['node']}: {sw['platform']} driver: "
                         + (f"FAIL {sw['error']}" if sw["error"] else
                            f"version {sw['version'] or 'unknown'}, LAG limit {sw['lag_limit']}"))
    lines.append("")
    crow = []
    for r in cable_rows:
        cells = [r["cable"]]
        for end, v in r["carrier"].items():
            cells.append(f"{end} {'carrier' if v else ('unknown' if v is None else 'NO CARRIER')}")
        crow.append(cells)
    lines += _table(["cable", "end A", "end B"], crow)
    for r in cable_rows:
        if r["error"]:
            lines.append(f"  {r['cable']}: {r['error']}")
    return "\n".join(lines)


def _table(head, rows):
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)] if rows else [len(h) for h in head]
    fmt = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return [fmt(head), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows]
