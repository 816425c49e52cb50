"""A bond's whole configuration against what it should be: every option that
affects failover or distribution, as the kernel reports it (``ip -d -j link``),
compared with the value the test configured or, where the test set nothing,
the driver's default for that mode (read once per kernel version from a fresh
bond). An option nobody set that differs (a downdelay set behind the suite's
back) is a mismatch naming the option, the expected and the read value.

Parsers are pure (tests/test_bond_config.py, on output captured in the rack).
"""

import json
from dataclasses import dataclass

from ..errors import LaghilError
from ..journal import node_undo
from ..names import qif
from ..parsing import parser
from .bond import MODES
from .netdev import check_can_create

# option (as laghil and iproute2 name it) -> key in `ip -d -j link` info_data
INFO_KEY = {"lacp_rate": "ad_lacp_rate", "lacp_active": "ad_lacp_active",
            "num_grat_arp": "num_peer_notif", "num_unsol_na": "num_peer_notif"}
# every option that changes how a bond detects a failure, fails over, fails
# back or spreads traffic
FAILOVER_OPTIONS = ("miimon", "updelay", "downdelay", "peer_notify_delay", "use_carrier",
                    "arp_interval", "arp_validate", "arp_all_targets", "arp_missed_max",
                    "primary_reselect", "fail_over_mac", "xmit_hash_policy", "lacp_rate",
                    "lacp_active", "ad_select", "min_links", "all_slaves_active",
                    "packets_per_slave", "tlb_dynamic_lb", "num_grat_arp")


class BondConfigError(LaghilError):
    pass


@dataclass(frozen=True)
class Mismatch:
    option: str
    expected: str
    read: str
    source: str         # "configured", or where the default came from ("driver default")

    def __str__(self):
        return (f"{self.option}: read {self.read}, expected {self.expected} "
                f"({self.source})")


def _norm(value):
    """info_data values as comparable strings (arp_validate null is "none")."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


@parser('ip -d -j link show (bond options)')
def parse_config(links, bond):
    """``ip -d -j link`` (a parsed list, or the JSON text) -> {option: value string}
    of ``bond`` for every FAILOVER_OPTIONS option the kernel reports (pure)."""
    if isinstance(links, str):
        links = json.loads(links)
    dev = next((d for d in links if d.get("ifname") == bond), None)
    info = (dev or {}).get("linkinfo") or {}
    if info.get("info_kind") != "bond":
        raise BondConfigError(f"{bond}: not a bond in `ip -d -j link`")
    data = info.get("info_data") or {}
    return {opt: _norm(data[INFO_KEY.get(opt, opt)]) for opt in FAILOVER_OPTIONS
            if INFO_KEY.get(opt, opt) in data}


def mismatches(read, configured, defaults):
    """Every option whose ``read`` value differs from ``configured`` (the test's,
    validated option strings) or, where not configured, from ``defaults``."""
    configured = {("num_grat_arp" if k == "num_unsol_na" else k): v for k, v in configured.items()}
    # the link monitors exclude each other: setting one turns the other off
    if "arp_interval" in configured and "miimon" not in configured:
        configured["miimon"] = "0"
    if "miimon" in configured and "arp_interval" not in configured:
        configured["arp_interval"] = "0"
    out = []
    for opt in FAILOVER_OPTIONS:
        if opt not in read:
            continue
        if opt in configured:
            want, source = str(configured[opt]), "configured"
        elif opt in defaults:
            want, source = defaults[opt], "driver default"
        else:
            continue
        if read[opt] != want:
            out.append(Mismatch(opt, want, read[opt], source))
    return out


_DEFAULTS = {}      # (kernel release, mode) -> {option: value}
_VERSIONS = {}      # (node, command) -> its output: asked once per node and session


def version_of(node, command):
    """What ``command`` (``uname -r``, ``teamd -v``) prints on ``node``, asked
    once per node in this process: the key of a defaults cache."""
    key = (node.name, command)
    if key not in _VERSIONS:
        _VERSIONS[key] = node.run(command, check=False).stdout.strip()
    return _VERSIONS[key]


def driver_defaults(node, mode, name, *, defer):
    """The bonding driver's defaults for ``mode`` on ``node``'s kernel, read from a
    fresh bond named ``name`` (refused if the name is taken; its removal
    registered first), once per kernel release and mode."""
    if mode not in MODES:
        raise BondConfigError(f"{node.name}: unknown bond mode {mode!r}")
    kernel = version_of(node, "uname -r")
    key = (kernel, mode)
    if key not in _DEFAULTS:
        check_can_create(node, "bond", name, [])
        b = qif(name)
        defer(node_undo(node, "link_delete", name=name, what=f"delete bond {name}"))
        text = node.run(f"ip link add name {b} type bond mode {mode} && "
                        f"ip -d -j link show dev {b}; r=$?; ip link del dev {b}; exit $r").stdout
        _DEFAULTS[key] = parse_config(text, name)
    return dict(_DEFAULTS[key])


def bond_mismatches(bond, *, defer):
    """:func:`mismatches` of a created Bond against its options and the driver's defaults."""
    read = parse_config(bond.node.run(f"ip -d -j link show dev {qif(bond.name)}").stdout,
                        bond.name)
    defaults = driver_defaults(bond.node, bond.mode, f"{bond.name}d", defer=defer)
    return mismatches(read, bond.options, defaults)
