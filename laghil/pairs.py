"""Which two hosts a LAG test runs on, and over which path: chosen by what the
test needs (capabilities, a path, SR-IOV PFs, given ports) among the hosts that
declare it, never by a host's position in the lab file.

A path is two hosts and the cables between them that carry the LAG's members:
back to back (``b2b``: cables from one host to the other) or through a switch
(``switch``: each host cabled twice or more to the same switch; the switch side
is made by the LAG fixture as the mode needs). A host that declares no
capability (a jump host, a gateway) is never chosen. When nothing fits,
:class:`NoPair` says which hosts were considered and why each pair was not
chosen.

    path = choose_pair(lab, needs=("roce_lag",), via="any")
    path.a, path.b, path.via, path.switch, path.ports["srv1"], path.cables

``via``: ``"b2b"``, ``"switch"`` or ``"any"`` (back to back where the lab has
it, else through a switch). :func:`lab_paths` says which kinds of path a lab
has at all (the suites' cases are expanded over them).
"""

from dataclasses import dataclass, field
from itertools import permutations

from .errors import LaghilError

VIAS = ("b2b", "switch")
# what the hosts of a LAG must declare, by kind; modes that run LACP add "lacp"
KIND_CAPABILITY = {"bond": "bonding", "team": "team"}
LACP_MODES = ("802.3ad", "lacp")


def needs_of(kind, mode=None):
    """The capabilities a ``kind`` LAG in ``mode`` needs of both its hosts."""
    return (KIND_CAPABILITY[kind],) + (("lacp",) if mode in LACP_MODES else ())


def aggregate_ports(lab, mode=None):
    """{host: [member netdev]} of each host's first declared RDMA aggregate (of
    ``mode``): the ports an IB device bonding pair must use."""
    out = {}
    for h, spec in lab.hosts.items():
        d = next((a for a in spec.rdma_aggregates if mode in (None, a.mode)), None)
        if d is not None:
            out[h] = [m.netdev for m in d.members]
    return out


class NoPair(LaghilError):
    """No two hosts fit. ``capability`` is what the lab lacks (for the skip),
    ``detail`` the hosts considered and why none fit."""

    def __init__(self, capability, detail):
        self.capability, self.detail = capability, detail
        super().__init__(f"{capability}: {detail}")


@dataclass(frozen=True)
class Path:
    via: str                    # "b2b" | "switch"
    a: str                      # the sending host
    b: str
    ports: dict                 # host -> its ports on the path, in the host's port order
    cables: tuple               # the lab cables that carry them (a's first)
    switch: str = None          # via a switch: its name
    far: dict = field(default_factory=dict)     # via a switch: host -> the switch ports

    @property
    def hosts(self):
        return (self.a, self.b)

    def describe(self):
        where = f"through {self.switch}" if self.switch else "back to back"
        return (f"{self.a} and {self.b} {where} over "
                f"{', '.join(c.name for c in self.cables)}")


def _is_sriov(lab, host, port):
    return bool(getattr(lab.hosts[host].ports.get(port), "sriov", False))


def _pick(lab, host, ports, count, sriov, allowed):
    """``count`` of ``ports`` (a host's, on one path): SR-IOV PFs only with
    ``sriov``; otherwise the other ports first (the PFs stay for the VF suites
    where the host has enough others), then the PFs. None: too few."""
    if allowed is not None:
        ports = [p for p in ports if p in allowed]
    pfs = [p for p in ports if _is_sriov(lab, host, p)]
    if sriov:
        chosen = pfs
    else:
        chosen = [p for p in ports if p not in pfs]
        if len(chosen) < count:
            chosen += pfs
    return chosen[:count] if len(chosen) >= count else None


def _b2b(lab, a, b, count, sriov, allowed):
    cables = lab.cables_between(a, b)
    ends = {a: [], b: []}
    for c in cables:
        for ref in c.refs:
            ends[ref.node].append(ref.port)
    # in a's port order; b's ports are the far ends of a's
    order = [p for p in lab.hosts[a].ports if p in ends[a]]
    pick = _pick(lab, a, order, count, sriov, allowed and allowed.get(a))
    if pick is not None and allowed and allowed.get(b) is not None:
        if any(lab.far_end(a, p).port not in allowed[b] for p in pick):
            pick = None
    if pick is None:
        n = len(ends[a])
        return None, f"{n} back-to-back cable(s){' of the kind needed' if n else ''}, need {count}"
    cab = tuple(lab.cable_of(a, p) for p in pick)
    ports = {a: pick, b: [lab.far_end(a, p).port for p in pick]}
    return Path("b2b", a, b, ports, cab), None


def _via_switch(lab, a, b, count, sriov, allowed):
    seen = []
    for sw in lab.switches:
        picks = {h: _pick(lab, h, lab.ports_towards(h, sw), count, sriov,
                          allowed and allowed.get(h)) for h in (a, b)}
        if all(p is not None for p in picks.values()):
            cab = tuple(lab.cable_of(h, p) for h in (a, b) for p in picks[h])
            far = {h: [lab.far_end(h, p).port for p in picks[h]] for h in (a, b)}
            return Path("switch", a, b, picks, cab, switch=sw, far=far), None
        seen.append(f"{sw}: {a} {len(lab.ports_towards(a, sw))}, "
                    f"{b} {len(lab.ports_towards(b, sw))}")
    if not seen:
        return None, "no switch in the lab"
    return None, f"no switch with {count} usable cables to each ({'; '.join(seen)})"


def candidates(lab, needs=()):
    """(hosts that may be chosen, {host: why not} for the others)."""
    ok, why = [], {}
    for name, spec in lab.hosts.items():
        caps = set(spec.capabilities)
        missing = [c for c in needs if c not in caps]
        if not caps:
            why[name] = "declares no capabilities (not under test)"
        elif missing:
            why[name] = f"lacks {', '.join(missing)}"
        else:
            ok.append(name)
    return ok, why


def all_paths(lab, needs=(), via="any", count=2, sriov=False, ports=None, a=None, b=None):
    """(every path that fits, in the order they are preferred; {what: why not}).
    ``ports``: {host: [port]} the LAG must use (an aggregate's members)."""
    if via not in (*VIAS, "any"):
        raise ValueError(f"via must be one of {VIAS} or 'any', not {via!r}")
    hosts, why = candidates(lab, needs)
    if ports:
        for h in [h for h in hosts if h not in ports]:
            hosts.remove(h)
            why[h] = "declares none of the ports this test needs"
    for h, role in ((a, "sender"), (b, "peer")):
        if h is not None and h not in hosts:
            why.setdefault(h, f"asked for as the {role}")
    pairs = [(x, y) for x, y in permutations(hosts, 2)
             if (a is None or x == a) and (b is None or y == b)]
    # each unordered pair once (file order), unless a side was asked for
    if a is None and b is None:
        pairs = [(x, y) for x, y in pairs if hosts.index(x) < hosts.index(y)]
    found = []
    kinds = VIAS if via == "any" else (via,)
    for kind in kinds:
        for x, y in pairs:
            path, no = (_b2b if kind == "b2b" else _via_switch)(lab, x, y, count, sriov, ports)
            if path is not None:
                found.append(path)
            else:
                why[f"{x}-{y} {'back to back' if kind == 'b2b' else 'through a switch'}"] = no
    return found, why


def choose_pair(lab, needs=(), via="any", count=2, sriov=False, ports=None, a=None, b=None):
    """The path a LAG test uses (see the module doc); NoPair naming every host
    considered and why it was not chosen."""
    found, why = all_paths(lab, needs, via, count, sriov, ports, a, b)
    if found:
        return found[0]
    want = ("back-to-back pair" if via == "b2b" else "switch pair" if via == "switch"
            else "host pair")
    need = f" with {', '.join(needs)}" if needs else ""
    pf = " over SR-IOV PFs" if sriov else ""
    reasons = "; ".join(f"{k}: {v}" for k, v in why.items()) or "the lab has no hosts"
    raise NoPair(want, f"two hosts{need}{pf} with {count} cables each ({via}): considered "
                       f"{', '.join(lab.hosts) or 'none'}; {reasons}")


def lab_paths(lab, needs=()):
    """The kinds of path (``b2b``, ``switch``) the lab has for two hosts with ``needs``."""
    found, _ = all_paths(lab, needs)
    return tuple(v for v in VIAS if any(p.via == v for p in found))
