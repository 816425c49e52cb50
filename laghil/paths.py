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


def shipped_dir(name, env_var, env=None) -> Path:
    """A folder laghil ships (``labs``, ``profiles``, ``certs``): ``$env_var``,
    else the checkout's top-level ``name/`` beside the package, else the copy
    installed inside it (``pip install laghil``: laghil/<name>)."""
    env = os.environ if env is None else env
    if env.get(env_var):
        return Path(env[env_var])
    pkg = Path(__file__).resolve().parent
    checkout = pkg.parent / name
    return checkout if checkout.is_dir() else pkg / name
