"""Drivers: they act on lab nodes (bonds, teams, shaping, switch ports)."""
