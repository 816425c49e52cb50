"""Where laghil keeps what outlives a run on the controller: its cache
(downloads, builds) and its state (journal, baselines, the rack's files)."""

import os
from pathlib import Path


def cache_root(env=None) -> Path:
    """Downloads and builds that survive runs: ``$LAGHIL_CACHE_DIR`` or ``~/.cache/laghil``."""
    env = os.environ if env is None else env
    return Path(os.path.expanduser(env.get("LAGHIL_CACHE_DIR") or "~/.cache/laghil"))


def state_root(env=None) -> Path:
    """Run state (keys, pids, locks): ``$LAGHIL_STATE_DIR`` or ``~/.cache/laghil``."""
    env = os.environ if env is None else env
    return Path(os.path.expanduser(env.get("LAGHIL_STATE_DIR") or "~/.cache/laghil"))
