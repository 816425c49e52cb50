"""Bad input, fuzzed (hypothesis, fixed seed, bounded example counts; CI runs
these with the unit tests).

* Lab files: mutations of the shipped lab files (a key deleted, renamed or
  given a value of another type, a list emptied, the text cut short or given a
  junk line) and random YAML shapes: every one loads or gives a LabError naming
  the file, never a traceback from inside.
* Parsers of tool output, each fed mutations of real captured output
  (truncated, lines dropped, junk lines, bytes replaced, JSON fields dropped
  or retyped): each returns or raises a laghil error naming the tool and the
  node, never an IndexError / KeyError / TypeError from deep inside.

Each test prints how many examples it tried (``pytest -s``).
"""

import json
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from laghil.errors import LabError, LaghilError
from laghil.lab import load_lab

ROOT = Path(__file__).resolve().parent.parent
CAP = ROOT / "tests" / "data" / "captures"
SAMPLES = ROOT / "tests" / "data" / "samples"
LABS = sorted((ROOT / "labs").glob("*.yaml"))

FUZZ = settings(derandomize=True, database=None, deadline=None, max_examples=150,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])
TRIED = {}

scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**40, 2**40),
                    st.floats(allow_nan=True), st.text(max_size=20),
                    st.sampled_from(["", "eth1", "h1", "h1:eth1", "bond0;reboot", "$(id)",
                                     "../../etc/passwd", "9999999999", "-1", "yes", "null"]))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=8)


def _paths(obj, prefix=()):
    """Every key path in a YAML document."""
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, prefix + (i,))


def _mutate(doc, path, op, value):
    if not path:
        return value if op == "replace" else doc
    parent = doc
    for k in path[:-1]:
        parent = parent[k]
    k = path[-1]
    if op == "delete":
        del parent[k]
    elif op == "replace":
        parent[k] = value
    elif op == "rename" and isinstance(parent, dict):
        parent[f"{k}x"] = parent.pop(k)
    elif op == "empty":
        parent[k] = type(parent[k])() if isinstance(parent[k], (list, dict, str)) else None
    return doc


def _judge_lab(tmp_path, text, what):
    f = tmp_path / "mutant.yaml"
    f.write_text(text, encoding="utf-8")
    TRIED[what] = TRIED.get(what, 0) + 1
    try:
        load_lab(f)
    except LabError as e:
        assert str(f) in str(e) or "mutant.yaml" in str(e), f"LabError not naming the file: {e}"


@pytest.mark.parametrize("lab_file", LABS, ids=[p.stem for p in LABS])
@FUZZ
@given(data=st.data())
def test_mutated_lab_files_give_a_lab_error_naming_the_file(tmp_path, lab_file, data):
    doc = yaml.safe_load(lab_file.read_text())
    paths = list(_paths(doc))
    path = data.draw(st.sampled_from(paths))
    op = data.draw(st.sampled_from(["delete", "replace", "rename", "empty"]))
    value = data.draw(values)
    doc = _mutate(doc, path, op, value)
    text = yaml.safe_dump(doc, sort_keys=False) if op != "replace" or path else yaml.safe_dump(value)
    _judge_lab(tmp_path, text, f"lab {lab_file.stem} (tree)")


@pytest.mark.parametrize("lab_file", LABS, ids=[p.stem for p in LABS])
@FUZZ
@given(cut=st.floats(0, 1), junk=st.sampled_from(["", "\t- :", "{{", "key: [unclosed", ": :",
                                                  "&a *a", "!!python/object:os.system x",
                                                  "\x00", "hosts: 3"]))
def test_cut_or_junked_lab_text_gives_a_lab_error_naming_the_file(tmp_path, lab_file, cut, junk):
    text = lab_file.read_text()
    lines = text.splitlines()
    at = int(cut * len(text))
    mutant = text[:at] + ("\n" + junk + "\n" + "\n".join(lines[len(text[:at].splitlines()):])
                          if junk else "")
    _judge_lab(tmp_path, mutant, f"lab {lab_file.stem} (text)")


@FUZZ
@given(doc=values)
def test_random_yaml_shapes_give_a_lab_error_naming_the_file(tmp_path, doc):
    _judge_lab(tmp_path, yaml.safe_dump(doc), "random YAML shapes")


# ---- parsers ---------------------------------------------------------------------------
def cap(name, section=None):
    text = (CAP / name).read_text() if (CAP / name).exists() else (SAMPLES / name).read_text()
    return text if section is None else text.split("@@LAGHIL@@")[section]


def _parsers():
    from laghil.check import parse_tools
    from laghil.drivers.bond import parse_proc_bonding, parse_state_output
    from laghil.drivers.bond_config import parse_config
    from laghil.drivers.ibbond import parse_ibv_devinfo, parse_rdma_link
    from laghil.drivers.netdev import parse_preflight, parse_state
    from laghil.drivers.roce import parse_inventory as parse_rdma_inventory
    from laghil.drivers.switch import eos, nxos, onyx, sonic
    from laghil.drivers.switch.linux import parse_bridge_vlans, parse_fdb, parse_uptime_mark
    from laghil.drivers.switch.nos import parse_version
    from laghil.drivers.team import parse_port_link, parse_team_state
    from laghil.drivers.team_settings import parse_settings, parse_teamnl_options
    from laghil.drivers.vflag import (parse_devlink_ports, parse_eswitch, parse_lag_debugfs,
                                      parse_lag_log, parse_phy_counters)
    from laghil.inventory import parse_ethtool_i, parse_inventory
    from laghil.kevents import parse_dmesg
    from laghil.measure.agents import parse_sha256sum
    from laghil.measure.throughput import parse_iperf3, parse_perftest
    from laghil.netstate import parse_snapshot
    from laghil.node import parse_carriers
    from laghil.vlab.qemu import parse_qemu_version
    return [
        ("snapshot", parse_snapshot, cap("h1-snapshot-bond-rxe.txt"), ()),
        ("bond state", parse_state_output, cap("sw1-lag-state-8023ad.txt").rpartition("@@MAC")[0],
         ("lglag1",)),
        ("/proc/net/bonding", parse_proc_bonding, cap("h1-bond-ab.txt", 0), ()),
        ("bond options", parse_config, cap("h1-bond-ab.txt", 1), ("bond0",)),
        ("preflight", parse_preflight, cap("h1-preflight.txt"), ()),
        ("ip -j addr", parse_state, '[{"ifname":"eth1","address":"52:54:00:00:01:01","mtu":1500,'
                                    '"flags":["UP"],"addr_info":[{"local":"10.0.0.1",'
                                    '"prefixlen":24,"scope":"global"}]}]', ()),
        ("rdma inventory", parse_rdma_inventory, cap("h1-rdma-inventory-rxe-bond0.txt"), ()),
        ("teamdctl state", parse_team_state, cap("h1-teamdctl-team0-ab.json"), ()),
        ("team port link", parse_port_link, cap("h1-ip-d-j-eth3-team.json"), ()),
        ("teamdctl config", parse_settings, cap("h1-teamdctl-team1-config.json"), ()),
        ("teamnl options", parse_teamnl_options, cap("h1-teamnl-options-lacp.txt"), ()),
        ("ethtool -i", parse_ethtool_i, cap("h1-ethtool-i-eth3.txt"), ()),
        ("inventory", parse_inventory, cap("h1-inventory-bond-rxe.txt"), ()),
        ("tools", parse_tools, cap("h1-tools.txt"), ()),
        ("dmesg", parse_dmesg, cap("h1-kernel-log-bond-failover.txt"), ()),
        ("iperf3", parse_iperf3, cap("iperf3-P2-t4-O1.json"), ()),
        ("perftest", parse_perftest, cap("ib_write_bw-R-q2-D4-client.txt"), ()),
        ("fdb", parse_fdb, cap("sw1-fdb-lgbr0.json"), ()),
        ("bridge vlan", parse_bridge_vlans, cap("sw1-bridge-vlan.json"), ()),
        ("uptime", parse_uptime_mark, "1171.42 2210.10\n", ()),
        ("carriers", parse_carriers, "eth1 1\neth2 0\n", (["eth1", "eth2"],)),
        ("qemu version", parse_qemu_version, cap("qemu-version-10.txt"), ()),
        ("eos port-channel", eos.parse_portchannel_summary,
         cap("ntc-templates--arista_eos_show_port-channel_summary.raw"), ()),
        ("nxos port-channel", nxos.parse_portchannel_summary,
         cap("cisco-docs--nxos_show_port-channel_summary.json"), ()),
        ("onyx port-channel", onyx.parse_portchannel_summary,
         cap("ansible--onyx_port_channel_show.json"), ()),
        ("sonic portchannel", sonic.parse_portchannel_summary,
         cap("sonic-utilities--show_interfaces_portchannel.txt"), ()),
        ("show version", parse_version, cap("ntc-templates--arista_eos_show_version.raw"),
         (r"^Software image version:\s*(\S+)",)),
        ("devlink eswitch", parse_eswitch, cap("iproute2-doc--devlink_eswitch_show.json"), ()),
        ("mlx5 lag debugfs", parse_lag_debugfs,
         cap("kernel-doc--mlx5_lag_debugfs_qaff_failover.txt"), ()),
        ("mlx5 lag log", parse_lag_log, cap("linux-commit--mlx5_lag_kernel_log.txt"), ()),
        ("mlx5 ethtool -S", parse_phy_counters, cap("netdev-list--mlx5_ethtool_S_5.15.txt"), ()),
        ("ibv_devinfo -v", parse_ibv_devinfo,
         cap("rdma-core-format--mlx5_bond_0_ibv_devinfo_v.txt"), ()),
        ("devlink port", parse_devlink_ports,
         cap("iproute2-doc--devlink_port_show_switchdev.json"), ()),
        ("rdma link", parse_rdma_link, cap("iproute2-format--mlx5_bond_0_rdma_link.txt"), ()),
        ("sha256sum", parse_sha256sum, cap("sha256sum-agents.txt"), ()),
    ]


PARSERS = _parsers()
JUNK = ["", "}", "{", "[", "null", "-1", "eth1", "\x00\xff", "@@links", "@@LAGHIL@@",
        "Slave Interface: ", "Bonding Mode: ", '{"ifname": 3}', "nan", "ÿ", " " * 3]


def _json_mutants(draw, text):
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    paths = [p for p in _paths(doc) if p]
    if not paths:
        return None
    path = draw(st.sampled_from(paths))
    op = draw(st.sampled_from(["delete", "replace", "empty"]))
    return json.dumps(_mutate(doc, path, op, draw(values)))


@st.composite
def mutants(draw, text):
    how = draw(st.sampled_from(["truncate", "drop lines", "junk line", "replace", "json"]))
    lines = text.splitlines(keepends=True)
    if how == "truncate":
        return text[:draw(st.integers(0, max(0, len(text) - 1)))]
    if how == "drop lines" and lines:
        drop = set(draw(st.lists(st.integers(0, len(lines) - 1), max_size=max(1, len(lines) // 3))))
        return "".join(l for i, l in enumerate(lines) if i not in drop)
    if how == "junk line":
        at = draw(st.integers(0, len(lines)))
        return "".join(lines[:at] + [draw(st.sampled_from(JUNK)) + "\n"] + lines[at:])
    if how == "json":
        m = _json_mutants(draw, text)
        if m is not None:
            return m
    if not text:
        return draw(st.sampled_from(JUNK))
    a = draw(st.integers(0, len(text) - 1))
    b = draw(st.integers(a, min(len(text), a + 20)))
    return text[:a] + draw(st.sampled_from(JUNK)) + text[b:]


@pytest.mark.parametrize("name, fn, text, args", PARSERS, ids=[p[0] for p in PARSERS])
@settings(derandomize=True, database=None, deadline=None, max_examples=120)
@given(data=st.data())
def test_parsers_give_a_parse_error_naming_tool_and_node(name, fn, text, args, data):
    mutant = data.draw(mutants(text))
    TRIED[f"parser {name}"] = TRIED.get(f"parser {name}", 0) + 1
    try:
        fn(mutant, *args, node="h1")
    except LaghilError as e:
        assert str(e).startswith("h1: "), f"{name}: error does not name the node: {e}"
        tool = getattr(fn, "tool", None)
        assert tool and tool in str(e) or "parse" in str(e), f"{name}: names no tool: {e}"


def test_the_captured_inputs_parse_unmutated():
    for name, fn, text, args in PARSERS:
        fn(text, *args, node="h1")


def test_zz_how_many_examples_each_fuzzer_tried(capsys):
    with capsys.disabled():
        print("\nfuzz examples tried: " + ", ".join(f"{k}: {v}" for k, v in sorted(TRIED.items())))


def test_a_command_s_output_names_its_node_in_a_parse_error():
    from laghil.netstate import parse_snapshot
    from laghil.parsing import ParseError
    from laghil.transport.framing import Result
    r = Result("h2", "ip -j link", 0, "@@links\n[{\"ifname\": 3", "", 0.01)
    assert r.stdout.node == "h2" and r.stdout == "@@links\n[{\"ifname\": 3"
    with pytest.raises(ParseError, match=r"^h2: cannot parse the output of the network-state"):
        parse_snapshot(r.stdout)
