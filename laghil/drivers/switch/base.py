"""The one interface every switch platform driver implements, and the
platform-neutral state its read methods return.

Mutating methods take ``defer`` keyword-only and register their undo on it
BEFORE they send anything (a contract test checks every driver). Read methods
return :class:`SwitchLag` / :class:`LagMember` / :class:`OffloadEvidence`, the
same words on every platform, so a suite never parses a NOS's output itself.
"""

import re
from dataclasses import dataclass, field

from ...errors import BadName, LaghilError

# The switch side a host's bond mode needs (NVIDIA Onyx manual, server
# configuration: modes 0, 2, 4 need a LAG on the switch; 1, 5, 6 must not have one).
PARTNER_MODE = {"balance-rr": "static", "balance-xor": "static", "802.3ad": "lacp",
                "active-backup": None, "balance-tlb": None, "balance-alb": None,
                "broadcast": None}

# LACP port state bits a member needs to carry traffic (802.1AX).
SYNC, COLLECTING, DISTRIBUTING = 0x08, 0x10, 0x20
IN_USE = SYNC | COLLECTING | DISTRIBUTING


class SwitchError(LaghilError):
    pass


# one word of a switch command: a port, a LAG or bond name (no space, quote,
# separator or newline can add a command, in a vendor CLI or a shell)
CLI_WORD = re.compile(r"^[A-Za-z][A-Za-z0-9/._:-]{0,63}$")


def check_cli_word(value, what):
    """``value`` if it can stand as one word of a switch command, else BadName."""
    if not isinstance(value, str) or not CLI_WORD.fullmatch(value):
        raise BadName(f"{what} {value!r} cannot be put into a switch command (1-64 of letters, "
                      "digits and / . _ : -, starting with a letter)")
    return value


class SwitchRefused(SwitchError):
    """The platform refused a LAG operation; ``reason`` is its own text (the
    kernel's extack, the NOS's error line), ``left`` what a check found left behind.
    ``capability``: set when the platform lacks what was asked (a mode or option
    it does not have at all, e.g. OVS's ``static_lag``), so a test skips naming it."""

    def __init__(self, message, reason="", left=(), capability=None):
        super().__init__(message)
        self.reason = reason
        self.left = list(left)
        self.capability = capability


@dataclass(frozen=True)
class LagMember:
    port: str
    oper_up: bool
    selected: bool                  # carrying the LAG's traffic (LACP: sync+collecting+distributing)
    actor_state: int | None = None  # LACP port state bits, None for a static LAG
    partner_state: int | None = None
    partner_system: str | None = None   # the partner's LACP system id (a MAC), lower case


@dataclass(frozen=True)
class SwitchLag:
    name: str
    mode: str                       # "lacp" | "static"
    oper_up: bool
    members: dict                   # port -> LagMember, in the LAG's order
    min_links: int = 0
    mac: str | None = None          # the LAG's own MAC (its LACP system id on Linux)

    @property
    def selected(self):
        return [p for p, m in self.members.items() if m.selected]


@dataclass(frozen=True)
class MadeLag:
    """What ``lag_create`` returns on every platform: the LAG laghil made (its
    undo is already registered); :meth:`destroy` removes it now, through the
    same removal as the undo (idempotent)."""
    switch: str
    name: str
    members: tuple
    mode: str                       # "static" | "lacp" (or the bond mode asked for)
    remove: object = field(default=None, repr=False, compare=False)

    def destroy(self):
        self.remove()


@dataclass(frozen=True)
class OffloadEvidence:
    """What a platform shows about whether a LAG is in hardware. ``verdict`` is
    "offloaded", "not_offloaded" (a software LAG: also the silent fallback of
    DSA) or "unknown" (no signal read): only "offloaded" passes an offload check."""
    lag: str
    verdict: str
    signals: dict = field(default_factory=dict)     # signal -> what was read
    missing: tuple = ()                             # capabilities that would have told

    def describe(self):
        sig = "; ".join(f"{k}: {v}" for k, v in self.signals.items()) or "no signal"
        return f"{self.lag}: {self.verdict} ({sig})"


class SwitchDriver:
    """A switch platform. Subclasses implement what their NOS can do; the rest
    raises :class:`SwitchError` naming the platform and the operation."""

    platform = None         # the name lab files give it (``platform:``)
    netdev_ports = False    # its ports are Linux netdevs (Linux interface name rules)
    # Does the platform give laghil a Linux shell (iproute2)? A switch without
    # one is read through :meth:`snapshot` at session start, in the baseline and
    # in a restore: no shell command is ever sent to it.
    has_shell = True
    # Does a member taken out of an LACP LAG tell the partner (a last LACPDU
    # out of sync), or does the partner only notice at its LACP timeout? The
    # bound of a member removal under traffic follows from it.
    lacp_leave_notifies = False

    def __init__(self, node):
        self.node = node

    port_word = "switch port"

    def _cannot(self, what):
        raise SwitchError(f"switch {self.node.name}: {what}: not driven by laghil's "
                          f"{self.platform} driver yet")

    # the platform's management port (a full-match regex, any case): never shut,
    # whatever the lab file says
    management_port = None

    def check_shut_port(self, port):
        """``port`` if laghil may shut it: one word, a port of this switch in the lab
        file, not the platform's management port and, on a switch with a Linux
        shell, not the interface its SSH session runs over. SwitchError naming
        switch and port otherwise, before any change. Checked once per port and
        driver (a fault injector checks when it is made, so the shutdown at the
        fault instant sends nothing more)."""
        ok = self.__dict__.setdefault("_may_shut", set())
        if port in ok:
            return port
        p = self._port(port)
        if self.management_port and re.fullmatch(self.management_port, p, re.IGNORECASE):
            raise SwitchError(f"switch {self.node.name}: refusing to shut {p}: it is the "
                              f"{self.platform} management port")
        if self.has_shell and self.netdev_ports:
            from ..netdev import NetdevRefused, check_not_management
            try:
                check_not_management(self.node, p, "shut")
            except NetdevRefused as e:
                raise SwitchError(f"switch {e}") from None
        ok.add(p)
        return p

    def _port(self, port):
        """``port`` if it is one word and a port of this switch in the lab file."""
        check_cli_word(port, self.port_word)
        if port not in self.node.spec.ports:
            raise SwitchError(f"switch {self.node.name}: port {port!r} is not in the lab file "
                              f"(ports: {', '.join(self.node.spec.ports)})")
        return port

    # ------------------------------------------------------------ ports
    def port_shutdown(self, port, *, defer):
        """Shut ``port`` (its no-shutdown registered first)."""
        self._cannot("shutting ports")

    def port_up_undo(self, port):
        """The undo of a port shutdown, with its journal record (laghil.journal):
        a later process brings the port up through this switch's driver."""
        from ...journal import Undo, UndoRecord
        return Undo(lambda: self.port_no_shutdown(port),
                    UndoRecord("switch", self.node.name, ("port_no_shutdown", [port])),
                    f"{self.node.name}: {port} up")

    def lag_remove_undo(self, name, ports):
        """The undo of :meth:`lag_create`, with its journal record: a later
        process removes the LAG through this switch's driver (:meth:`lag_remove`)."""
        from ...journal import Undo, UndoRecord
        ports = list(ports)
        return Undo(lambda: self.lag_remove(name, ports),
                    UndoRecord("switch", self.node.name, ("lag_remove", [name, ports]),
                               f"delete LAG {name}"), f"{self.node.name}: delete LAG {name}")

    def _l2_vlan(self):
        """The lab file's ``l2_vlan`` of this switch: laghil's untagged L2 domain
        on a platform whose bridge is shared or that has none (a NOS, Cumulus's
        br_default, SONiC)."""
        vid = getattr(self.node.spec, "l2_vlan", None)
        if vid is None:
            raise SwitchError(f"switch {self.node.name}: an untagged L2 domain on a "
                              f"{self.platform} switch needs the lab file's `l2_vlan` for it "
                              "(a VLAN no one else uses on the switch)")
        return int(vid)

    def _domain_vids(self, vlans):
        """(VLAN ids, tagged) of laghil's L2 domain: the test's ``vlans`` tagged,
        else the lab's ``l2_vlan`` untagged."""
        if vlans:
            return sorted({int(v) for v in vlans}), True
        return [self._l2_vlan()], False

    def _undo(self, method, args, what):
        """The undo that calls this driver's ``method(*args)`` now, and that a
        later process replays from its journal record (``method`` one of
        laghil.journal's SWITCH_UNDOS, each idempotent)."""
        from ...journal import Undo, UndoRecord
        args = list(args)
        return Undo(lambda: getattr(self, method)(*args),
                    UndoRecord("switch", self.node.name, (method, args), what),
                    f"{self.node.name}: {what}")

    def lag_remove(self, name, ports):
        """Remove LAG ``name`` laghil made over ``ports`` (idempotent)."""
        self._cannot("removing LAGs")

    def port_no_shutdown(self, port):
        self._cannot("bringing ports up")

    def member_blackhole(self, port, *, defer):
        """A seeded defect for negative controls: every data frame arriving on
        ``port`` dropped while its LACP (slow protocols) still runs, as a
        member whose forwarding died but whose control plane did not. Undo
        registered first."""
        self._cannot("blackholing a port's data frames")

    def port_oper_up(self, port):
        self._cannot("reading port state")

    # ------------------------------------------------------------ LAGs
    def lag_create(self, name, ports, mode, *, defer, **options):
        """A LAG over ``ports``: ``mode`` "static" or "lacp"; options the
        platform knows (lacp_rate, xmit_hash_policy, min_links). Its undo is
        registered on ``defer`` before the first change; returns a
        :class:`MadeLag` on every platform."""
        self._cannot("creating LAGs")

    def lag_state(self, name):
        """:class:`SwitchLag` read back from the switch."""
        self._cannot("reading LAG state")

    def left_behind(self, name, ports):
        """What a refused or deleted LAG ``name`` over ``ports`` left on the
        switch: ["dev ..." / "port ..." the LAG itself, "member <port>" still in a LAG]."""
        self._cannot("reading what a LAG left behind")

    def lag_member_remove(self, name, port, *, defer):
        self._cannot("removing LAG members")

    def lag_member_add(self, name, port, *, defer):
        self._cannot("adding LAG members")

    def lag_delete(self, name, *, defer):
        """Delete a LAG with whatever sits on it; the undo rebuilds both."""
        self._cannot("deleting LAGs")

    def offload_evidence(self, name):
        """:class:`OffloadEvidence` for LAG ``name``."""
        self._cannot("reading offload state")

    # ------------------------------------------------------------ L2
    def bridge_create(self, name, members, *, defer, vlans=()):
        """One L2 domain over ports and LAGs; ``vlans``: tagged VLAN ids on every
        member (a VLAN-aware bridge), none: untagged."""
        self._cannot("creating bridges")

    def bridge_member_remove(self, bridge, member, *, defer):
        self._cannot("remastering bridge members")

    def bridge_member_add(self, bridge, member, *, defer):
        self._cannot("remastering bridge members")

    def fdb(self, bridge):
        """[{"mac", "port", "vlan", "flags"}] the switch learned in ``bridge``."""
        self._cannot("reading the FDB")

    def fdb_on(self, bridge, members):
        """The entries of :meth:`fdb` on ``members``: ports of the lab file or
        LAGs by laghil's names (a NOS names a LAG its own way: its driver maps them)."""
        return [e for e in self.fdb(bridge) if e["port"] in members]

    # ------------------------------------------------------------ what it is
    def snapshot(self):
        """The switch's state as the session check and the lab baseline compare
        it, read through the driver (a switch without a shell): ``{"lags": {name:
        {"members": [port], "mode": ...}}, "unread": [what the driver does not
        read]}``."""
        self._cannot("reading its state")

    def describe(self):
        """{"platform", "version", "lag_limit"} for `laghil lab check`: the NOS
        version, and the LAG limit the platform lets laghil read ("unknown"
        where it does not)."""
        self._cannot("describing itself")

    # ------------------------------------------------------------ health
    def log_mark(self):
        """An opaque mark: :meth:`kernel_faults` reports what came after it."""
        self._cannot("reading its log")

    def kernel_faults(self, since):
        """[line] of WARNING / BUG / call trace / watchdog records after ``since``."""
        self._cannot("reading its log")
