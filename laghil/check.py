"""`laghil lab check`: is every node reachable, with its tools, and every cable lit?"""

from concurrent.futures import ThreadPoolExecutor

from .errors import LaghilError

# tool on the node -> Debian package that brings it
TOOLS = {
    "ip": "iproute2", "ethtool": "ethtool", "iperf3": "iperf3", "ib_write_bw": "perftest",
    "teamd": "libteam-utils", "rdma": "rdma-core", "python3": "python3",
}


def parse_tools(text):
    """Output of ``command -v`` probes ("tool yes|no" lines) -> {tool: bool}."""
    found = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] in TOOLS:
            found[parts[0]] = parts[1] == "yes"
    return {t: found.get(t, False) for t in TOOLS}


TOOLS_COMMAND = "; ".join(f"command -v {t} >/dev/null && echo {t} yes || echo {t} no" for t in TOOLS)


def check_node(node):
    """{"node", "reachable", "error", "tools": {tool: bool}}."""
    row = {"node": node.name, "role": node.role, "reachable": False, "error": "", "tools": {}}
    try:
        row["tools"] = parse_tools(node.run(TOOLS_COMMAND, check=False).stdout)
        row["reachable"] = True
    except LaghilError as e:
        row["error"] = str(e)
    return row


def check_lab(rt):
    """Check every node and cable of a LabRuntime; returns (node_rows, cable_rows, ok)."""
    nodes = rt.ssh_nodes
    with ThreadPoolExecutor(max_workers=max(1, len(nodes))) as ex:
        node_rows = list(ex.map(check_node, nodes))
    reachable = {r["node"] for r in node_rows if r["reachable"]}
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
            cells.append("-" if not r["reachable"] else ("ok" if r["tools"].get(t) else
                                                         f"MISSING ({TOOLS[t]})"))
        rows.append(cells)
    lines += _table(head, rows)
    for r in node_rows:
        if r["error"]:
            lines.append(f"  {r['node']}: {r['error']}")
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
