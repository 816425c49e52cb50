"""Where the virtual rack keeps its cache (kernel, initramfs) and per-lab state."""

from pathlib import Path

from ..names import check_name
from ..paths import cache_root, state_root  # noqa: F401 - the rack's roots are laghil's


def lab_state_dir(lab_name: str, env=None) -> Path:
    """Where the virtual rack of a lab keeps its SSH key, known_hosts and guest files."""
    return state_root(env) / "vlab" / check_name(lab_name, "lab name")
