"""Checks a suite asserts with, usable without pytest: each states what must
hold, with the numbers in its message. ``switch``: a LAG through a switch."""
