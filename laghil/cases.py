"""The bond and team configurations the suites run, as data any suite can use:
one per mode / runner in CI, every option variant (``full``) with
--full-matrix. A case's ``key`` (``802.3ad.miimon_10``) names its allowances in
the certification profile (laghil.bounds: the bound is the configuration's
part plus the platform's allowance). The pytest plugin turns
a list of cases into parameters (``pytest_laghil.params``)."""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Case:
    kind: str                   # "bond" | "team"
    mode: str                   # bond mode or team runner
    options: dict = field(default_factory=dict)
    monitor: str = ""           # threshold family: miimon_10, miimon_100, arp_100, ethtool, ...
    via: str = None             # None: back to back; "switch": both hosts bonded to a switch
    full: bool = False          # a full-matrix variant (not in CI)

    @property
    def key(self):
        """``mode.monitor`` (``team-<runner>.<link watch>``), ``@switch`` appended
        through a switch: the profile's allowances may differ per path."""
        name = self.mode if self.kind == "bond" else f"team-{self.mode}"
        return f"{name}.{self.monitor}" + ("@switch" if self.via == "switch" else "")

    @property
    def lacp_fast(self):
        """802.3ad / team lacp: is the LACP rate fast?"""
        return self.options.get("lacp_rate") == "fast" or self.options.get("fast_rate") is True

    @property
    def hash_policy(self):
        if self.kind != "bond":
            return None
        if self.mode in ("balance-xor", "802.3ad") or str(self.options.get("tlb_dynamic_lb")) == "0":
            return self.options.get("xmit_hash_policy", "layer2")
        return None

    def id(self):
        opts = ",".join(f"{k}={v}" for k, v in self.options.items())
        where = "-via-switch" if self.via == "switch" else ""
        return f"{self.mode}{where}[{opts}]" if opts else f"{self.mode}{where}"


# tlb/alb receive on one member with its own MAC: they need a switch between the
# hosts (back to back, frames hashed to the other member reach a port whose MAC
# they do not carry)
NEEDS_SWITCH = ("balance-tlb", "balance-alb")


def bond(mode, full=False, via=None, **options):
    mon = (f"miimon_{options['miimon']}" if options.get("miimon")
           else f"arp_{options['arp_interval']}" if options.get("arp_interval") else "none")
    via = "switch" if mode in NEEDS_SWITCH else via
    return Case("bond", mode, options, mon, via, full)


L34 = {"xmit_hash_policy": "layer3+4"}

BOND_CASES = [
    # CI: one per mode, miimon 10 ms, hash policies that spread flows
    bond("balance-rr", miimon=10),
    bond("active-backup", miimon=10, primary=0),
    bond("balance-xor", miimon=10, **L34),
    bond("broadcast", miimon=10),
    bond("802.3ad", miimon=10, lacp_rate="fast", **L34),
    bond("802.3ad", via="switch", miimon=10, lacp_rate="fast", **L34),
    bond("balance-tlb", miimon=10, tlb_dynamic_lb=0, **L34),
    bond("balance-alb", miimon=10, tlb_dynamic_lb=0, **L34),
    # the full matrix: monitors, hash policies, LACP and tlb/alb variants
    bond("balance-rr", True, miimon=100, packets_per_slave=4),
    bond("active-backup", True, miimon=100, primary=0),
    bond("active-backup", True, miimon=10, fail_over_mac="active", num_grat_arp=3),
    bond("active-backup", True, miimon=10, downdelay=20, peer_notify_delay=50),
    # ARP monitoring validates backups by the ARP traffic they receive: through a
    # switch (back to back, a backup link carries nothing and is never up)
    bond("active-backup", True, via="switch", arp_interval=100, arp_ip_target="@peer",
         arp_validate="all"),
    bond("balance-xor", True, miimon=10, xmit_hash_policy="layer2"),
    bond("balance-xor", True, miimon=10, xmit_hash_policy="layer2+3"),
    bond("balance-xor", True, arp_interval=100, arp_ip_target="@peer", **L34),
    bond("broadcast", True, miimon=100),
    bond("802.3ad", True, miimon=100, lacp_rate="slow", **L34),
    bond("802.3ad", True, miimon=10, lacp_rate="fast", xmit_hash_policy="layer2+3", min_links=1),
    bond("802.3ad", True, miimon=10, lacp_rate="fast", ad_select="bandwidth", **L34),
    bond("802.3ad", True, miimon=10, lacp_rate="fast", ad_select="count", **L34),
    bond("balance-tlb", True, miimon=10),
    bond("balance-alb", True, miimon=10),
    bond("balance-alb", True, miimon=100, tlb_dynamic_lb=0, **L34),
    bond("active-backup", True, via="switch", miimon=10, primary=0),
    bond("balance-xor", True, via="switch", miimon=10, **L34),
    bond("balance-rr", True, via="switch", miimon=10),
]


def team(runner, full=False, link_watch="ethtool", via=None, **options):
    return Case("team", runner, dict(options, link_watch=link_watch), link_watch, via, full)


TX_L34 = {"tx_hash": ["eth", "ipv4", "l4"]}

TEAM_CASES = [
    team("broadcast"),
    team("roundrobin"),
    team("random"),
    team("activebackup"),
    team("loadbalance", **TX_L34),
    team("lacp", active=True, fast_rate=True, **TX_L34),
    # full matrix
    team("activebackup", True, link_watch="arp_ping", via="switch",
         link_watch_opts={"source_host": "@self", "target_host": "@peer", "interval": 100,
                          "missed_max": 3}),
    team("loadbalance", True, tx_hash=["eth", "ipv4"]),
    team("lacp", True, active=True, fast_rate=False, **TX_L34),
]


# Switch LAG: the host LAGs whose switch side a switch ASIC offloads (hash tx
# types: mlxsw, ocelot, qca8k take 802.3ad, balance-xor, team lacp and
# loadbalance; the others are refused at enslave time)
SWITCH_LAG_CASES = [
    bond("802.3ad", via="switch", miimon=10, lacp_rate="fast", **L34),
    bond("balance-xor", via="switch", miimon=10, **L34),
    team("lacp", via="switch", active=True, fast_rate=True, **TX_L34),
    team("loadbalance", True, via="switch", **TX_L34),
]
# the switch LAG modes with LACP (member steps and min-links need a protocol)
SWITCH_LACP_CASES = [c for c in SWITCH_LAG_CASES if c.mode in ("802.3ad", "lacp")]


# RoCE LAG: the options of each bond mode / team runner the RoCE suite runs
# (mlx5 offloads active-backup, balance-xor and 802.3ad, over a bond or a team)
ROCE_OPTIONS = {
    "active-backup": {"miimon": 10},
    "802.3ad": {"miimon": 10, "lacp_rate": "fast", "xmit_hash_policy": "layer3+4"},
    "balance-xor": {"miimon": 10, "xmit_hash_policy": "layer3+4"},
    # team runners
    "activebackup": {},
    "lacp": {"active": True, "fast_rate": True, "tx_hash": ["eth", "ipv4", "l4"]},
}


def roce_case(kind, mode, via=None):
    """The Case of a RoCE LAG mode or runner (its options from ROCE_OPTIONS);
    ``via="switch"``: through a switch (its allowances keyed ``@switch``)."""
    if kind == "bond":
        return bond(mode, via=via, **ROCE_OPTIONS[mode])
    return team(mode, via=via, **ROCE_OPTIONS[mode])
