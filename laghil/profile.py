"""Certification profiles: versioned YAML files of thresholds (profiles/NAME.yaml)."""

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .errors import LaghilError
from .paths import shipped_dir


class ProfileError(LaghilError):
    pass


# the RC probes' local ACK timeout exponent where a profile does not say (67 ms)
DEFAULT_RC_ACK_TIMEOUT = 14


def default_profiles_dir():
    """``$LAGHIL_PROFILES_DIR``, else the checkout's ``profiles/``, else the copy installed
    inside the package (laghil/profiles)."""
    return shipped_dir("profiles", "LAGHIL_PROFILES_DIR")


@dataclass(frozen=True)
class Profile:
    name: str
    version: int
    source: str
    thresholds: dict
    allowances: dict = field(default_factory=dict)
    sections: dict = field(default_factory=dict)    # other top-level sections (switch_lag...)

    @property
    def label(self):
        return f"{self.name} v{self.version}"

    @property
    def platform(self):
        """Where its allowances were derived: {"lab", ...} (empty when it does not say)."""
        p = self.sections.get("platform")
        return p if isinstance(p, dict) else {}

    @property
    def rc_ack_timeout(self):
        """The local ACK timeout exponent (4.096 us x 2^n) the RC probes set on
        their QPs on this platform: ``rdma.ack_timeout``, else 14 (67 ms). It
        must stay above the platform's healthy round-trip tail, or the QPs
        resend what was delivered (spurious retries) and every gap grows."""
        sec = self.sections.get("rdma")
        if sec is None:
            return DEFAULT_RC_ACK_TIMEOUT
        v = sec.get("ack_timeout", DEFAULT_RC_ACK_TIMEOUT) if isinstance(sec, dict) else sec
        if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= 31:
            raise ProfileError(f"profile {self.label} ({self.source}): rdma.ack_timeout must be "
                               f"an exponent 1..31 (4.096 us x 2^n), not {v!r}")
        return v

    def allowance(self, kind, case_key, figure=None):
        """A platform allowance (ms) of ``kind`` (``switchover_ms``, ``detect_ms``,
        ``failback_ms``, ``rc_switchover_ms``, ``stall_ms``) for a case key such as
        ``active-backup.miimon_10``: the case's own, else its mode's
        (``active-backup``), else the kind's ``default``. A key through a switch
        (``team-lacp.ethtool@switch``) first tries its own and ``team-lacp@switch``.
        ``figure``: the allowance kind of the figure a ``stall_ms`` is for
        (``failback_ms``): a derived profile keeps one per figure
        (``failback_ms:802.3ad.miimon_10``), tried before the case's own."""
        table = self.allowances.get(kind)
        if not isinstance(table, dict):
            raise ProfileError(f"profile {self.label} ({self.source}) has no allowances.{kind}")
        key, at, path = case_key.partition("@")  # "team-lacp.ethtool@switch": through a switch
        mode = key.rsplit(".", 1)[0]             # 802.3ad.miimon_10 -> 802.3ad
        tries = ((case_key, f"{mode}@{path}") if at else ()) + (key, mode, "default")
        if figure:
            tries = tuple(f"{figure}:{k}" for k in tries[:-1]) + tries
        for k in tries:
            if k in table:
                v = table[k]
                if not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0:
                    raise ProfileError(f"profile {self.label}: allowances.{kind}.{k} is not a "
                                       f"number >= 0: {v!r}")
                return float(v)
        raise ProfileError(f"profile {self.label} ({self.source}): allowances.{kind} has "
                           f"none of {', '.join(repr(k) for k in tries)}")

    def threshold(self, key):
        """A threshold by its section and name, e.g. ``failover/active-backup.miimon_10.t_gap_ms``."""
        section, _, name = key.partition("/")
        try:
            value = self.thresholds[section][name]
        except (KeyError, TypeError):
            raise ProfileError(f"profile {self.label} ({self.source}) has no threshold "
                               f"{name!r} in section {section!r}") from None
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise ProfileError(f"profile {self.label}: threshold {key} is not a number: {value!r}")
        return float(value)


def profile_for_lab(lab):
    """The profile a run on ``lab`` is judged with when none is named: the
    lab's own (``profiles/<lab name>.yaml``, derived on it with `laghil profile
    derive --lab NAME`), else ``default``. A lab whose platform is not the
    default profile's (Open vSwitch instead of Linux bridging: its LACP and
    bond switch-over are its own) gets its allowances from its own runs."""
    name = getattr(lab, "name", None)
    if name and (default_profiles_dir() / f"{name}.yaml").exists():
        return name
    return "default"


def load_profile(name_or_path="default"):
    p = Path(name_or_path)
    if p.suffix not in (".yaml", ".yml") and "/" not in str(name_or_path):
        p = default_profiles_dir() / f"{name_or_path}.yaml"
    if not p.exists():
        have = sorted(x.stem for x in default_profiles_dir().glob("*.yaml"))
        raise ProfileError(f"unknown profile {str(name_or_path)!r}; available: {', '.join(have)}")
    try:
        d = yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        raise ProfileError(f"{p}: not valid YAML: {e}") from None
    problems = [f"{p}: missing {k!r}" for k in ("name", "version", "thresholds")
                if not isinstance(d, dict) or k not in d]
    if problems:
        raise ProfileError("; ".join(problems))
    allowances = d.get("allowances") or {}
    if not isinstance(allowances, dict):
        raise ProfileError(f"{p}: allowances must be a mapping of kind -> {{mode: ms}}")
    sections = {k: v for k, v in d.items()
                if k not in ("name", "version", "description", "thresholds", "allowances")}
    return Profile(str(d["name"]), int(d["version"]), str(p), dict(d["thresholds"]),
                   dict(allowances), sections)


_VERSION = re.compile(r"\d+(?:\.\d+)*")


def _same_version(a, b):
    """Do two version texts name the same version, one perhaps less precisely
    ("10 (TCG, bookworm-backports)" and "10.0.2 (TCG)": yes; "10" and "9.2": no)?"""
    ma, mb = _VERSION.search(str(a)), _VERSION.search(str(b))
    if not ma or not mb:
        return str(a).strip() == str(b).strip()
    pa, pb = ma[0].split("."), mb[0].split(".")
    n = min(len(pa), len(pb))
    return pa[:n] == pb[:n]


def platform_differences(platform, inventory):
    """How a run's inventory ({node: {"kernel", "ports": {port: {"driver",
    "version", "firmware"}}, "qemu"}}) differs from the platform a profile's
    allowances were derived on (:attr:`Profile.platform`): one line per
    difference, [] when everything the profile records matches. Only what the
    profile records is compared: a port by its node:port where the profile has
    it, else by its driver (a twin's igb ports against the virtual rack's igb
    ports); kernels and QEMU by version; a switch's platform and NOS version
    where the profile records that switch."""
    out = []
    kernels = [str(k) for k in platform.get("kernels") or []]
    pports = platform.get("ports") or {}
    drivers = {}
    for d in pports.values():
        if isinstance(d, dict) and d.get("driver"):
            drivers.setdefault(d["driver"], set()).add((str(d.get("version") or ""),
                                                        str(d.get("firmware") or "")))
    qemus = [str(q) for q in platform.get("qemu") or []]
    pswitches = platform.get("switches") or {}
    for node, inv in sorted((inventory or {}).items()):
        if not isinstance(inv, dict):
            continue
        if isinstance(inv.get("switch"), dict):
            sw, ps = inv["switch"], pswitches.get(node)
            if isinstance(ps, dict) and sw.get("version") and (
                    str(sw.get("platform")) != str(ps.get("platform"))
                    or str(sw["version"]) != str(ps.get("version"))):
                out.append(f"{node}: {sw.get('platform')} {sw['version']}; the profile's: "
                           f"{ps.get('platform')} {ps.get('version')}")
            continue
        if inv.get("error"):
            out.append(f"{node}: inventory not read ({inv['error']}): not compared")
            continue
        k = inv.get("kernel")
        if kernels and k and k not in kernels:
            out.append(f"{node}: kernel {k}; the profile's: {', '.join(kernels)}")
        q = inv.get("qemu")
        if qemus and q and not any(_same_version(q, p) for p in qemus):
            out.append(f"{node}: QEMU {q}; the profile's: {', '.join(qemus)}")
        for port, d in sorted((inv.get("ports") or {}).items()):
            if not isinstance(d, dict) or not d.get("driver"):
                continue
            where = f"{node}:{port}"
            have = (str(d.get("version") or ""), str(d.get("firmware") or ""))
            if where in pports and isinstance(pports[where], dict):
                pd = pports[where]
                for f in ("driver", "version", "firmware"):
                    if str(pd.get(f) or "") != str(d.get(f) or ""):
                        out.append(f"{where}: {f} {d.get(f) or '(none)'}; the profile's: "
                                   f"{pd.get(f) or '(none)'}")
            elif drivers and d["driver"] not in drivers:
                out.append(f"{where}: driver {d['driver']}, which the profile's platform does "
                           f"not have ({', '.join(sorted(drivers))})")
            elif drivers and have not in drivers[d["driver"]]:
                seen = "; ".join(f"version {v or '(none)'} firmware {f or '(none)'}"
                                 for v, f in sorted(drivers[d["driver"]]))
                out.append(f"{where}: {d['driver']} version {have[0] or '(none)'} firmware "
                           f"{have[1] or '(none)'}; the profile's: {seen}")
    return out


def foreign_profile(profile, lab):
    """Why ``profile``'s allowances are another platform's than ``lab``'s, or None.

    A physical lab is judged with a profile derived on that lab (its
    ``platform.lab``); a virtual lab, or the virtual twin of a physical one
    (the same emulated platform), with one derived on the virtual rack."""
    plab = profile.platform.get("lab")
    rack = lab.kind != "physical" or getattr(lab, "rack_backed", False)
    if rack:
        if plab is None or plab == "virtual" or plab == lab.name:
            return None
        return (f"profile {profile.label} ({profile.source}) was derived on lab {plab}, not on "
                f"the virtual rack that runs {lab.name}")
    if plab == lab.name:
        return None
    return (f"profile {profile.label} ({profile.source}) was derived on "
            f"{'lab ' + plab if plab else 'no named lab'}, not on {lab.name}: its allowances "
            f"are that platform's (a driver regression 10x slower than {lab.name}'s healthy "
            f"figures could pass them). Derive {lab.name}'s own from 3 healthy runs of its "
            f"failover suites: `laghil profile derive --lab {lab.name} reports/<run>...`, "
            f"then --profile {lab.name}")
