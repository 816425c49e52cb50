"""What laghil knows of one RDMA provider under a LAG (bond or team): the lab
capability that declares it, the one device its LAG presents, the LAG modes
its hardware takes, what makes it refuse a LAG, whether laghil adds the
device itself (software providers) or the driver makes it when the LAG takes
its PFs, whether each QP's LAG port can be sampled, and its known defects.

One module per provider in this package, each defining ``PROVIDER``; a vendor
adds a provider by copying one module and its samples (tests/test_rdma.py)."""

import re
from dataclasses import dataclass
from typing import Callable, Optional

from ...errors import LaghilError


class RdmaError(LaghilError):
    pass


@dataclass(frozen=True)
class KnownDefect:
    """A defect of the provider recorded with its evidence (a test that meets
    it reports it as an expected failure, never a pass; --certify fails it)."""
    reason: str
    applies: Callable[[str, str], bool]                 # (LAG kind, mode) -> it can strike
    evidence: Callable[[object, object], Optional[str]]  # (probe result, sender) -> evidence


@dataclass(frozen=True, eq=False)       # one object per provider: compared by identity
class RdmaProvider:
    name: str                   # the kernel driver, as sysfs and `rdma` report it
    capability: str             # the lab capability that declares it on a host
    aggregate: str              # regex of the device a LAG presents; {lag}: the LAG's name
    example: str                # such a device's name, for people
    source: str                 # where these rules come from
    # {"bond": modes, "team": runners} whose LAG the hardware takes; None: any
    lag_modes: Optional[dict] = None
    bond_hashes: Optional[tuple] = None     # xmit_hash_policy values taken; None: any
    max_members: int = 2
    refuses_with_vfs: bool = False          # a member PF with VFs: no bond device
    add: Optional[Callable] = None          # software: add(node, lag, defer) -> device name
    lag_port_sampling: bool = False         # each QP's LAG port can be queried
    known_defects: tuple = ()

    @property
    def software(self):
        return self.add is not None

    def aggregate_re(self, lag):
        return re.compile(self.aggregate.format(lag=re.escape(lag)))

    def refusal(self, kind, mode, *, hash_policy=None, members=2, vfs=0):
        """Why a ``kind`` LAG in ``mode`` (with ``hash_policy``, ``members``
        lower netdevs, ``vfs`` VFs on them) gets no RoCE LAG device from this
        provider, or None when it should get one."""
        if self.lag_modes is not None:
            allowed = self.lag_modes.get(kind, ())
            if mode not in allowed:
                return (f"{self.name} RoCE LAG over a {kind} needs "
                        + (f"one of {', '.join(allowed)}" if allowed else f"no {kind}")
                        + f", not {mode!r} ({self.source})")
        if self.bond_hashes is not None and kind == "bond" and hash_policy \
                and hash_policy not in self.bond_hashes:
            return (f"{self.name} RoCE LAG takes xmit_hash_policy {', '.join(self.bond_hashes)}, "
                    f"not {hash_policy!r} ({self.source})")
        if members > self.max_members:
            return f"{self.name} RoCE LAG takes at most {self.max_members} ports, not {members}"
        if self.refuses_with_vfs and vfs:
            return f"{self.name} makes no bond device while a member PF has VFs ({vfs})"
        return None

    def known_defect(self, kind, mode):
        """The known defect that can strike a ``kind`` LAG in ``mode``, or None."""
        return next((d for d in self.known_defects if d.applies(kind, mode)), None)
