"""The LAG interface: what every link aggregation laghil drives offers, so that
a suite (RoCE LAG, switch LAG, SR-IOV VF LAG, IB bonding) takes "a LAG" and
never asks whether it is a bond or a team.

    lag = make_lag(node, "bond", "802.3ad", ["eth1", "eth2"], name="lgbond0",
                   miimon=10, lacp_rate="fast")
    lag.create(defer=defer, address="192.168.201.1/24")
    wait_ready(lag)
    lag.active_member()

``mode`` is the bond mode or the teamd runner (one word for both). ``create``
takes ``defer`` as a keyword, refuses before any change when the name or a
member is not laghil's (:class:`~laghil.drivers.netdev.NetdevRefused`) and
registers ``destroy`` before the first change; ``destroy`` tries every step.
"""

from typing import Protocol, runtime_checkable

from ..wait import wait_until
from .bond import MODES, Bond
from .team import RUNNERS, Team

KINDS = {"bond": Bond, "team": Team}
MODES_OF = {"bond": MODES, "team": RUNNERS}
READY_TIMEOUT_S = 20.0
# modes / runners with one active member at a time (active_member() answers)
ONE_ACTIVE = ("active-backup", "balance-tlb", "balance-alb", "activebackup")


@runtime_checkable
class Lag(Protocol):
    node: object            # laghil.node.Node
    name: str
    kind: str               # "bond" | "team"
    mode: str               # bond mode or teamd runner
    members: list

    def create(self, *, defer, address=None) -> "Lag": ...

    def destroy(self) -> None: ...

    def ready(self) -> str | None:
        """None when ready for traffic, else what is still missing."""

    def active_member(self) -> str | None: ...

    def state(self): ...


def make_lag(node, kind, mode, members, *, name, **options):
    """A Bond or Team (not yet created) of ``kind`` over ``members``."""
    try:
        cls = KINDS[kind]
    except KeyError:
        raise ValueError(f"LAG kind {kind!r}: one of {', '.join(KINDS)}") from None
    return cls(node, name, mode, members, **options)


def describe(lag):
    return f"{lag.node.name}: {lag.kind} {lag.name} ({lag.mode})"


def wait_ready(lag, timeout=READY_TIMEOUT_S, error=None):
    """Wait (bounded) until ``lag.ready()`` is None; return the seconds it took."""
    return wait_until(lag.ready, timeout=timeout, interval=0.3, what=f"{describe(lag)} ready",
                      error=error)
