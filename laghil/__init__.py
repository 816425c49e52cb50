"""laghil: HA/LAG validation library (no pytest imports here; usable from scripts)."""

__version__ = "0.1.0"
