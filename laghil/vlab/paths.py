"""Where the virtual rack keeps its cache (kernel, initramfs) and per-lab state."""

import os
from pathlib import Path

from ..names import check_name


def cache_root(env=None) -> Path:
    """Downloads and builds that survive runs: ``$LAGHIL_CACHE_DIR`` or ``~/.cache/laghil``."""
    env = os.environ if env is None else env
    return Path(os.path.expanduser(env.get("LAGHIL_CACHE_DIR") or "~/.cache/laghil"))


def state_root(env=None) -> Path:
    """Run state (keys, pids, locks): ``$LAGHIL_STATE_DIR`` or ``~/.cache/laghil``."""
    env = os.environ if env is None else env
    return Path(os.path.expanduser(env.get("LAGHIL_STATE_DIR") or "~/.cache/laghil"))


def lab_state_dir(lab_name: str, env=None) -> Path:
    """Where the virtual rack of a lab keeps its SSH key, known_hosts and guest files."""
    return state_root(env) / "vlab" / check_name(lab_name, "lab name")
