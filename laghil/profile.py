"""Certification profiles: versioned YAML files of thresholds (profiles/NAME.yaml)."""

import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from .errors import LaghilError


class ProfileError(LaghilError):
    pass


def default_profiles_dir():
    return Path(os.environ.get("LAGHIL_PROFILES_DIR") or Path(__file__).resolve().parents[1] / "profiles")


@dataclass(frozen=True)
class Profile:
    name: str
    version: int
    source: str
    thresholds: dict

    @property
    def label(self):
        return f"{self.name} v{self.version}"

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
    return Profile(str(d["name"]), int(d["version"]), str(p), dict(d["thresholds"]))
